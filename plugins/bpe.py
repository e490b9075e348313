"""`bpe`: byte-level BPE trained on the corpus with HF `tokenizers`.

Byte-level means every text round-trips exactly: the 256 bytes are in the alphabet from the start.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from copilot_repl.errors import TokenizerError
from copilot_repl.hookspecs import hookimpl
from copilot_repl.tokenizer import SPECIAL_TOKENS, ByteTableTokenizer

FILE = "bpe_tokenizer.json"


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
        self.hf.encode_special_tokens = True  # "<|endoftext|>" typed in a prompt is plain text
        decoder = _byte_decoder()
        vocab = hf_tokenizer.get_vocab()
        self._bytes = [b""] * len(vocab)
        for piece, i in vocab.items():
            if piece not in SPECIAL_TOKENS:
                self._bytes[i] = bytes(decoder[c] for c in piece)
        self._special = {tok: vocab[tok] for tok in SPECIAL_TOKENS}

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
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.20) skips the character offsets we never read
        encode = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        return [e.ids for e in encode(texts, add_special_tokens=False)]


@hookimpl
def register_tokenizers(register):
    register(BPETokenizer)
