"""Corpus gathering, train/validation split, fingerprints, the token cache and training batches."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from copilot_repl.errors import CorpusError
from copilot_repl.sources import documents

MAX_FILE_BYTES = 1_000_000  # larger files are mostly generated data, not code worth learning from
VAL_PER_MILLE = 50  # 5% of files, chosen by content hash so the split never depends on paths
Progress = Callable[[int, int], None]  # (done, in all) of a long step, for a progress bar


def cache_dir() -> Path:
    """Where token caches and trained tokenizers live ($COPILOT_REPL_CACHE, else XDG's cache dir)."""
    if os.environ.get("COPILOT_REPL_CACHE"):
        return Path(os.environ["COPILOT_REPL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "copilot-repl"


@dataclass
class Corpus:
    """What a corpus holds, without its texts: `texts()` streams them from the sources again, so memory
    does not grow with the corpus (a digest and a size per document). Same contents, same split."""

    spec: list[str]
    fingerprint: str
    sizes: dict[str, int]  # content digest -> UTF-8 bytes, in source order
    val_digests: frozenset[str]
    skipped: dict[str, int] = field(default_factory=dict)
    single: bool = False  # one document: its last tenth (cut at a line) is held out
    weights: dict[str, int] = field(default_factory=dict)  # content digest -> times trained on, where above 1

    def texts(self, split: str = "all") -> Iterator[str]:
        """The split's documents ("train", "val" or "all"), read again and each given once, in source order."""
        for text, digest in self._documents():
            if split == "all":
                yield text
            elif self.single:
                yield _single_split(text)[split == "val"]
            elif (digest in self.val_digests) == (split == "val"):
                yield text

    def _documents(self) -> Iterator[tuple[str, str]]:
        """(text, digest) of each document gathered, once, in source order."""
        seen: set[str] = set()
        for text, digest, _ in _checked_documents(self.spec, {}):
            if digest not in seen and digest in self.sizes:  # not a duplicate, nor a file changed since gather()
                seen.add(digest)
                yield text, digest

    def repeats(self) -> Iterator[str]:
        """The training documents of weighted sources again, `weight - 1` more times: appended after the
        training split, so a random window lands in them `weight` times as often, and the index (which
        reads the split's first, once-through part) holds each document once."""
        if not self.weights or self.single:
            return
        for round_ in range(max(self.weights.values()) - 1):
            for text, digest in self._documents():
                if digest not in self.val_digests and self.weights.get(digest, 1) - 1 > round_:
                    yield text

    def split_bytes(self, split: str) -> int:
        if self.single:
            return sum(len(t.encode("utf-8")) for t in self.texts(split))
        return sum(n for d, n in self.sizes.items() if (d in self.val_digests) == (split == "val"))

    def repeated_bytes(self) -> int:
        return sum(n * (self.weights.get(d, 1) - 1) for d, n in self.sizes.items() if d not in self.val_digests)

    def describe(self) -> dict:
        val_files = 1 if self.single else len(self.val_digests)
        return {
            "spec": self.spec,
            "fingerprint": self.fingerprint,
            "train_files": len(self.sizes) - (0 if self.single else val_files),
            "val_files": val_files,
            "train_bytes": self.split_bytes("train"),
            "val_bytes": self.split_bytes("val"),
            "skipped": self.skipped,
        } | ({"repeated_bytes": self.repeated_bytes()} if self.weights else {})


def _single_split(text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    cut = max(1, len(lines) * 9 // 10)
    return "".join(lines[:cut]), "".join(lines[cut:]) or lines[-1]


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


WEIGHTED = re.compile(r"^(?P<source>.+):(?P<weight>[1-9][0-9]?)$")


def weighted(item: str) -> tuple[str, int]:
    """`SOURCE:N` trains on SOURCE's documents N times as often (`everyday.jsonl.gz:4 stdlib`): how a
    small corpus of the code people type outweighs a large one for breadth. A path that exists as
    written is never read as weighted."""
    match = WEIGHTED.match(item)
    if match is None or Path(item).expanduser().exists():
        return item, 1
    return match["source"], int(match["weight"])


def _checked_documents(spec: list[str], skipped: dict[str, int]) -> Iterator[tuple[str, str, int]]:
    """(text, content digest, weight) for every usable document of the corpus, one at a time."""
    for item in spec:
        source, weight = weighted(item)
        for path, record in documents(source, skipped):
            text = _read_text(path, skipped) if record is None else _checked(record, skipped)
            if text is not None:
                yield text, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), weight


def gather(spec: list[str], progress: Progress | None = None) -> Corpus:
    """Check, de-duplicate and split the corpus in one streaming pass; deterministic for the same
    contents. `progress` hears (documents read, characters read) now and then: the total is not known."""
    skipped: dict[str, int] = {}
    sizes: dict[str, int] = {}
    weights: dict[str, int] = {}
    read = 0
    for text, digest, weight in _checked_documents(spec, skipped):
        read += len(text)
        if progress and len(sizes) % 200 == 0:
            progress(len(sizes), read)
        if digest in sizes:
            skipped["duplicate"] = skipped.get("duplicate", 0) + 1
        else:
            sizes[digest] = len(text.encode("utf-8", "surrogatepass"))
            if weight > 1:
                weights[digest] = weight
    if progress:
        progress(len(sizes), read)
    if not sizes:
        raise CorpusError(f"no usable Python text in corpus {' '.join(spec)} (skipped: {skipped or 'nothing found'})")
    digests = sorted(sizes)
    single = len(digests) == 1
    val_digests = [] if single else [d for d in digests if int(d[:8], 16) % 1000 < VAL_PER_MILLE] or [digests[0]]
    weighting = "" if not weights else "|" + ",".join(f"{d}:{weights[d]}" for d in sorted(weights))
    fingerprint = hashlib.sha256(("v1" + ",".join(digests) + "|" + ",".join(val_digests) + weighting).encode()).hexdigest()[:16]
    return Corpus(list(spec), fingerprint, sizes, frozenset(val_digests), skipped, single, weights)


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


TOKENIZER_SAMPLE_BYTES = 100_000_000  # a tokenizer learns no more from gigabytes, only slower


def tokenizer_sample(corpus: Corpus, progress: Progress | None = None) -> Iterator[str]:
    """Every k-th training document, so that about TOKENIZER_SAMPLE_BYTES spread over the whole corpus;
    `progress` hears (bytes given, bytes to give, roughly) as the tokenizer reads them."""
    every = max(1, -(-corpus.split_bytes("train") // TOKENIZER_SAMPLE_BYTES))
    total, done = max(1, corpus.split_bytes("train") // every), 0
    for i, text in enumerate(corpus.texts("train")):
        if i % every == 0:
            yield text
            done += len(text.encode("utf-8", "surrogatepass"))
            if progress:
                progress(min(done, total - 1), total)
    if progress:
        progress(total, total)


def cached_tokenizer(corpus: Corpus, tokenizer_cls, vocab_size: int | None, progress: Progress | None = None):
    """Train the tokenizer on the corpus (streamed), or reuse the one trained before on the same corpus."""
    directory = cache_dir() / "tokenizers" / f"{tokenizer_cls.name}-{vocab_size}-{corpus.fingerprint}"
    if not directory.is_dir():
        tokenizer = tokenizer_cls.train(tokenizer_sample(corpus, progress), vocab_size)
        atomic_dir(directory, tokenizer.save)
    return tokenizer_cls.load(directory), directory


@dataclass
class TokenSplits:
    train: np.ndarray
    val: np.ndarray
    val_bytes: int  # UTF-8 bytes behind the validation tokens, for bits per byte
    reused: bool
    unique_train: int  # the first tokens of `train`, each training document once: what an index holds
    inherited: np.ndarray | None = None  # a fine-tuning base's index, held by the new index before `train`'s
    replayed: int = 0  # the last tokens of `train`: a fine-tuning base's text, replayed


ENCODE_CHUNK_CHARS = 2_000_000  # one encode_batch call: big enough for the tokenizer's threads, small in memory


def chunked(texts: Iterable[str], limit: int = ENCODE_CHUNK_CHARS) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for text in texts:
        chunk.append(text)
        size += len(text)
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def write_tokens(f: BinaryIO, tokenizer, texts: Iterable[str], dtype, progress: Callable[[int], None] = lambda n: None) -> None:
    """Each document's ids, then end-of-text, appended to `f` a chunk of documents at a time."""
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    for chunk in chunked(texts):
        for ids in tokenizer.encode_batch(chunk):
            f.write(np.asarray(ids, dtype=dtype).tobytes())
            f.write(eot.tobytes())
        progress(sum(len(t.encode("utf-8", "surrogatepass")) for t in chunk))


def encode_docs(tokenizer, texts: Iterable[str], dtype) -> np.ndarray:
    """Documents encoded in memory, for the few files of an index or an evaluation."""
    buffer = io.BytesIO()
    write_tokens(buffer, tokenizer, texts, dtype)
    return np.frombuffer(buffer.getbuffer(), dtype=dtype).copy()


def token_cache(corpus: Corpus, tokenizer, tokenizer_fingerprint: str, progress: Progress | None = None) -> TokenSplits:
    """Tokens of both splits in memmaps keyed by corpus and tokenizer fingerprints, built once by
    streaming the corpus through the tokenizer in chunks."""
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.uint32
    directory = cache_dir() / "tokens" / f"{corpus.fingerprint}-{tokenizer_fingerprint}"
    reused = (directory / "meta.json").is_file()
    if not reused:
        total, done = corpus.split_bytes("train") + corpus.repeated_bytes() + corpus.split_bytes("val"), [0]

        def advance(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], total)

        def fill(tmp: Path) -> None:
            with open(tmp / "train.bin", "wb") as f:
                write_tokens(f, tokenizer, corpus.texts("train"), dtype, advance)
                unique_train = f.tell() // np.dtype(dtype).itemsize
                write_tokens(f, tokenizer, corpus.repeats(), dtype, advance)
            with open(tmp / "val.bin", "wb") as f:
                write_tokens(f, tokenizer, corpus.texts("val"), dtype, advance)
            meta = {"dtype": np.dtype(dtype).name, "val_bytes": corpus.split_bytes("val"), "unique_train": unique_train}
            (tmp / "meta.json").write_text(json.dumps(meta))

        atomic_dir(directory, fill)
    meta = json.loads((directory / "meta.json").read_text())
    load = lambda split: np.memmap(directory / f"{split}.bin", dtype=meta["dtype"], mode="r")  # noqa: E731
    train = load("train")
    return TokenSplits(train, load("val"), meta["val_bytes"], reused, meta.get("unique_train", len(train)))
