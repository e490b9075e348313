"""`char`: one id per character seen in the corpus.

Layout: ids 0-255 are raw bytes, then the special tokens, then the corpus characters by frequency.
A character never seen in training is encoded as its UTF-8 bytes (byte fallback), so any text
round-trips exactly and nothing unseen can crash encoding.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from copilot_repl.errors import TokenizerError
from copilot_repl.hookspecs import hookimpl
from copilot_repl.tokenizer import MIN_VOCAB_SIZE, SPECIAL_TOKENS, ByteTableTokenizer

FILE = "char_vocab.json"


class CharTokenizer(ByteTableTokenizer):
    name = "char"

    def __init__(self, chars: list[str]):
        self.chars = chars
        self._ids = {c: i + MIN_VOCAB_SIZE for i, c in enumerate(chars)}
        self._bytes = [bytes([b]) for b in range(256)] + [b""] * len(SPECIAL_TOKENS)
        self._bytes += [c.encode("utf-8", "surrogatepass") for c in chars]
        self._special = {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}
        # code point -> id (-1: not in the vocabulary), so whole texts are looked up by numpy at once
        top = max((ord(c) for c in chars), default=0) + 1
        self._table = np.full(top, -1, dtype=np.int32)
        self._table[[ord(c) for c in chars]] = np.arange(MIN_VOCAB_SIZE, MIN_VOCAB_SIZE + len(chars))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> CharTokenizer:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        cls.check_vocab_size(vocab_size)
        limit = None if vocab_size is None else vocab_size - MIN_VOCAB_SIZE
        chars = [c for c, _ in counts.most_common(limit)]
        return cls(chars)

    @classmethod
    def load(cls, directory: Path) -> CharTokenizer:
        try:
            data = json.loads((directory / FILE).read_text(encoding="utf-8"))
            return cls(list(data["chars"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise TokenizerError(f"cannot read the char vocabulary in {directory}: {e}") from None

    def save(self, directory: Path) -> None:
        (directory / FILE).write_text(json.dumps({"chars": self.chars}, ensure_ascii=False), encoding="utf-8")

    def encode(self, text: str) -> list[int]:
        ids = self._lookup(text)
        return ids.tolist() if ids is not None else self._encode_with_fallback(text)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray | list[int]]:
        """Arrays where every character is in the vocabulary: turning them into lists costs more than the lookup."""
        return [ids if (ids := self._lookup(text)) is not None else self._encode_with_fallback(text) for text in texts]

    def _lookup(self, text: str) -> np.ndarray | None:
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = self._table[np.minimum(points, len(self._table) - 1)]
        ids[points >= len(self._table)] = -1
        return ids if (ids >= 0).all() else None

    def _encode_with_fallback(self, text: str) -> list[int]:
        ids = self._ids
        out: list[int] = []
        for c in text:
            i = ids.get(c)
            if i is None:
                out.extend(c.encode("utf-8", "surrogatepass"))
            else:
                out.append(i)
        return out


@hookimpl
def register_tokenizers(register):
    register(CharTokenizer)
