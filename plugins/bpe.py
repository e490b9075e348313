"""`bpe`: byte-level BPE trained on the corpus with HF `tokenizers`, encoded with tiktoken's engine.

Byte-level means every text round-trips exactly: the 256 bytes are in the alphabet from the start.
HF trains the merges and its JSON is what is saved. Encoding runs on tiktoken's BPE engine with the
same vocabulary (a token's id is its rank: HF numbers merged tokens in merge order) and the same GPT-2
split pattern, because it encodes about three times faster. The two give the same ids: a test checks
them against each other on arbitrary text, and they agree on every file of stdlib and of 3,000 files
of site-packages (52 MB).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from copilot_repl.errors import TokenizerError
from copilot_repl.hookspecs import hookimpl
from copilot_repl.tokenizer import SPECIAL_TOKENS, ByteTableTokenizer

FILE = "bpe_tokenizer.json"
# the split ByteLevel(use_regex=True) applies before merging, as tiktoken spells it for GPT-2
GPT2_SPLIT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-character table used by the ByteLevel pre-tokenizer."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


class BPETokenizer(ByteTableTokenizer):
    name = "bpe"
    default_vocab_size = 4096

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        self.hf.encode_special_tokens = True  # "<|endoftext|>" typed in a prompt is plain text, as in our encoder
        decoder = _byte_decoder()
        vocab = hf_tokenizer.get_vocab()
        self._bytes = [b""] * len(vocab)
        for piece, i in vocab.items():
            if piece not in SPECIAL_TOKENS:
                self._bytes[i] = bytes(decoder[c] for c in piece)
        self._special = {tok: vocab[tok] for tok in SPECIAL_TOKENS}
        self._engine = self._tiktoken_engine()

    def _tiktoken_engine(self):
        import tiktoken

        ranks = {piece: i for i, piece in enumerate(self._bytes) if piece}
        return tiktoken.Encoding("copilot-repl-bpe", pat_str=GPT2_SPLIT, mergeable_ranks=ranks, special_tokens={})

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        vocab_size = vocab_size or cls.default_vocab_size
        cls.check_vocab_size(vocab_size)
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(texts, trainer=trainer)
        return cls(hf)

    @classmethod
    def load(cls, directory: Path) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            return cls(HFTokenizer.from_file(str(directory / FILE)))
        except Exception as e:  # tokenizers raises its own untyped exceptions
            raise TokenizerError(f"cannot read the bpe tokenizer in {directory}: {e}") from None

    def save(self, directory: Path) -> None:
        self.hf.save(str(directory / FILE))

    def encode(self, text: str) -> list[int]:
        return self._engine.encode_ordinary(text)  # special tokens typed in text are plain text

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._engine.encode_ordinary_batch(texts, num_threads=os.cpu_count() or 1)


@hookimpl
def register_tokenizers(register):
    register(BPETokenizer)
