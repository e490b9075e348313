"""Corpus gathering, train/validation split, fingerprints, the token cache and training batches."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from copilot_repl.errors import CorpusError
from copilot_repl.sources import documents

MAX_FILE_BYTES = 1_000_000  # larger files are mostly generated data, not code worth learning from
VAL_PER_MILLE = 50  # 5% of files, chosen by content hash so the split never depends on paths


def cache_dir() -> Path:
    """Where token caches and trained tokenizers live ($COPILOT_REPL_CACHE, else XDG's cache dir)."""
    if os.environ.get("COPILOT_REPL_CACHE"):
        return Path(os.environ["COPILOT_REPL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "copilot-repl"


@dataclass
class Corpus:
    train: list[str]
    val: list[str]
    fingerprint: str
    spec: list[str]
    skipped: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "fingerprint": self.fingerprint,
            "train_files": len(self.train),
            "val_files": len(self.val),
            "train_bytes": sum(len(t.encode("utf-8")) for t in self.train),
            "val_bytes": sum(len(t.encode("utf-8")) for t in self.val),
            "skipped": self.skipped,
        }


def _read_text(path: Path, skipped: dict[str, int]) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        skipped["unreadable"] = skipped.get("unreadable", 0) + 1
        return None
    if len(data) > MAX_FILE_BYTES:
        skipped["too_large"] = skipped.get("too_large", 0) + 1
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        skipped["not_utf8"] = skipped.get("not_utf8", 0) + 1
        return None
    return _checked(text, skipped)


def _checked(text: str, skipped: dict[str, int]) -> str | None:
    """The same checks for a file and for a dataset record: size, content, no NUL bytes."""
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_FILE_BYTES:
        skipped["too_large"] = skipped.get("too_large", 0) + 1
        return None
    if not text.strip() or "\x00" in text:
        skipped["empty_or_binary"] = skipped.get("empty_or_binary", 0) + 1
        return None
    return text


def gather(spec: list[str]) -> Corpus:
    """Read, check, de-duplicate and split the corpus; deterministic for the same file contents."""
    skipped: dict[str, int] = {}
    by_hash: dict[str, str] = {}
    for item in spec:
        for path, record in documents(item, skipped):
            text = _read_text(path, skipped) if record is None else _checked(record, skipped)
            if text is None:
                continue
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            if digest in by_hash:
                skipped["duplicate"] = skipped.get("duplicate", 0) + 1
            by_hash[digest] = text
    if not by_hash:
        raise CorpusError(f"no usable Python text in corpus {' '.join(spec)} (skipped: {skipped or 'nothing found'})")
    digests = sorted(by_hash)
    if len(digests) == 1:  # a single file: hold out its last tenth, cut at a line boundary
        lines = by_hash[digests[0]].splitlines(keepends=True)
        cut = max(1, len(lines) * 9 // 10)
        val_digests, train, val = [], ["".join(lines[:cut])], ["".join(lines[cut:]) or lines[-1]]
    else:
        val_digests = [d for d in digests if int(d[:8], 16) % 1000 < VAL_PER_MILLE] or [digests[0]]
        train = [by_hash[d] for d in digests if d not in val_digests]
        val = [by_hash[d] for d in val_digests]
    fingerprint = hashlib.sha256(("v1" + ",".join(digests) + "|" + ",".join(val_digests)).encode()).hexdigest()[:16]
    return Corpus(train, val, fingerprint, list(spec), skipped)


def atomic_dir(final: Path, fill) -> None:
    """Build a directory under a temporary name, then rename it into place in one step."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o755)
    try:
        fill(tmp)
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_tokenizer(corpus: Corpus, tokenizer_cls, vocab_size: int | None):
    """Train the tokenizer on the corpus, or reuse the one trained before on the same corpus."""
    directory = cache_dir() / "tokenizers" / f"{tokenizer_cls.name}-{vocab_size}-{corpus.fingerprint}"
    if not directory.is_dir():
        tokenizer = tokenizer_cls.train(corpus.train, vocab_size)
        atomic_dir(directory, tokenizer.save)
    return tokenizer_cls.load(directory), directory


@dataclass
class TokenSplits:
    train: np.ndarray
    val: np.ndarray
    val_bytes: int  # UTF-8 bytes behind the validation tokens, for bits per byte
    reused: bool


def encode_docs(tokenizer, texts: list[str], dtype) -> np.ndarray:
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    parts = []
    for start in range(0, len(texts), 256):
        for ids in tokenizer.encode_batch(texts[start : start + 256]):
            parts += [np.asarray(ids, dtype=dtype), eot]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def token_cache(corpus: Corpus, tokenizer, tokenizer_fingerprint: str) -> TokenSplits:
    """Tokens of both splits in memmaps keyed by corpus and tokenizer fingerprints, built once."""
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.uint32
    directory = cache_dir() / "tokens" / f"{corpus.fingerprint}-{tokenizer_fingerprint}"
    reused = (directory / "meta.json").is_file()
    if not reused:

        def fill(tmp: Path) -> None:
            for split, texts in (("train", corpus.train), ("val", corpus.val)):
                encode_docs(tokenizer, texts, dtype).tofile(tmp / f"{split}.bin")
            meta = {"dtype": np.dtype(dtype).name, "val_bytes": sum(len(t.encode("utf-8")) for t in corpus.val)}
            (tmp / "meta.json").write_text(json.dumps(meta))

        atomic_dir(directory, fill)
    meta = json.loads((directory / "meta.json").read_text())
    load = lambda split: np.memmap(directory / f"{split}.bin", dtype=meta["dtype"], mode="r")  # noqa: E731
    return TokenSplits(load("train"), load("val"), meta["val_bytes"], reused)


def batch(tokens: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator, fim=None, fim_rate: float = 0.0):
    """Random windows of `block_size + 1` tokens: inputs and next-token targets as int64 arrays.
    With a tokenizer as `fim`, a `fim_rate` share of windows is rearranged for fill-in-the-middle."""
    starts = rng.integers(0, len(tokens) - block_size - 1, size=batch_size)
    rows = [np.asarray(tokens[s : s + block_size + 1]) for s in starts]
    if fim is not None and fim_rate > 0:
        from copilot_repl.fim import fim_window

        rows = [fim_window(row, fim, rng) if rng.random() < fim_rate else row for row in rows]
    windows = np.stack(rows).astype(np.int64)
    return windows[:, :-1], windows[:, 1:]
