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

from copilot_repl.errors import TokenizerError
from copilot_repl.hookspecs import hookimpl
from copilot_repl.tokenizer import SPECIAL_TOKENS, Tokenizer

FILE = "char_vocab.json"


class CharTokenizer(Tokenizer):
    name = "char"

    def __init__(self, chars: list[str]):
        self.chars = chars
        self._offset = 256 + len(SPECIAL_TOKENS)
        self._ids = {c: i + self._offset for i, c in enumerate(chars)}
        self._bytes = [bytes([b]) for b in range(256)] + [b""] * len(SPECIAL_TOKENS)
        self._bytes += [c.encode("utf-8", "surrogatepass") for c in chars]

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> CharTokenizer:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        limit = None if vocab_size is None else vocab_size - 256 - len(SPECIAL_TOKENS)
        if limit is not None and limit < 0:
            raise TokenizerError(f"char needs --vocab-size >= {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
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

    @property
    def vocab_size(self) -> int:
        return self._offset + len(self.chars)

    @property
    def special_ids(self) -> dict[str, int]:
        return {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        out: list[int] = []
        for c in text:
            i = ids.get(c)
            if i is None:
                out.extend(c.encode("utf-8", "surrogatepass"))
            else:
                out.append(i)
        return out

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id]


@hookimpl
def register_tokenizers(register):
    register(CharTokenizer)
