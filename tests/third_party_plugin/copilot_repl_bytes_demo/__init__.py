"""A tokenizer plugin as a third party would write one: it imports only copilot_repl's public API."""

from pathlib import Path

from copilot_repl.hookspecs import hookimpl
from copilot_repl.tokenizer import SPECIAL_TOKENS, Tokenizer


class BytesTokenizer(Tokenizer):
    name = "bytes-demo"

    @classmethod
    def train(cls, texts, vocab_size=None):
        return cls()

    @classmethod
    def load(cls, directory: Path):
        assert (directory / "bytes_demo.txt").read_text() == "v1"
        return cls()

    def save(self, directory: Path) -> None:
        (directory / "bytes_demo.txt").write_text("v1")

    @property
    def vocab_size(self) -> int:
        return 256 + len(SPECIAL_TOKENS)

    @property
    def special_ids(self):
        return {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}

    def encode(self, text: str):
        return list(text.encode("utf-8", "surrogatepass"))

    def token_bytes(self, token_id: int) -> bytes:
        return bytes([token_id]) if token_id < 256 else b""


@hookimpl
def register_tokenizers(register):
    register(BytesTokenizer)
