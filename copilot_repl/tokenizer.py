"""The contract every tokenizer plugin implements, and the lookup of plugins by name.

Token ids are laid out the same way by every plugin so that the model and the data code never need to
know which tokenizer they run with: the ids of the special tokens come from `special_ids`, and
`token_bytes` lets the generator decode a stream of ids incrementally, byte-exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from copilot_repl.errors import TokenizerError

EOT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
# Reserved by every tokenizer from the start, so adding fill-in-the-middle never changes the format.
SPECIAL_TOKENS = (EOT, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX)
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # every byte, so that any text can be encoded


class Tokenizer:
    """Base class of tokenizer plugins; subclasses fill in the methods that raise NotImplementedError."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    default_vocab_size: ClassVar[int | None] = None

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> Tokenizer:
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def special_ids(self) -> dict[str, int]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Encode plain text; special-token strings inside it are treated as ordinary text."""
        raise NotImplementedError

    def token_bytes(self, token_id: int) -> bytes:
        """The UTF-8 bytes one id stands for (special tokens give b""), for incremental decoding."""
        raise NotImplementedError

    # -- shared behaviour ------------------------------------------------------------------------
    @property
    def eot_id(self) -> int:
        return self.special_ids[EOT]

    def encode_batch(self, texts: list[str]) -> list[Sequence[int]]:
        """One id sequence per text: a list, or a 1-D integer numpy array where that is cheaper."""
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def fingerprint(self, directory: Path) -> str:
        """Hash of the saved files: two tokenizers with the same files encode the same way."""
        h = hashlib.sha256(self.name.encode())
        for path in sorted(directory.iterdir()):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()[:16]


class ByteTableTokenizer(Tokenizer):
    """A tokenizer whose ids index a table of byte strings (special tokens map to b"")."""

    _bytes: list[bytes]
    _special: dict[str, int]

    @classmethod
    def check_vocab_size(cls, vocab_size: int | None) -> None:
        if vocab_size is not None and vocab_size < MIN_VOCAB_SIZE:
            raise TokenizerError(f"{cls.name} needs --vocab-size >= {MIN_VOCAB_SIZE} (bytes + special tokens)")

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    @property
    def special_ids(self) -> dict[str, int]:
        return dict(self._special)

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id]


def tokenizer_class(name: str) -> type[Tokenizer]:
    """The registered plugin class called `name`, or a TokenizerError listing what is installed."""
    from copilot_repl.plugins import registered_tokenizers

    found = registered_tokenizers()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise TokenizerError(f"unknown tokenizer {name!r}; installed: {known}")
    return found[name]
