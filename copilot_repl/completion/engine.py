"""From a checkpoint directory to an `Engine`: the runtime for the device, the tokenizer, and the
indexes completions may copy from. On a CPU nothing here imports torch."""

from __future__ import annotations

import hashlib
from pathlib import Path

from copilot_repl import checkpoint, checkpoint_write
from copilot_repl.completion.confidence import Confidence
from copilot_repl.completion.generate import Engine
from copilot_repl.completion.retrieval import SUFFIXES, TOKENS, CorpusIndex, Gate
from copilot_repl.errors import CheckpointError

INDEX_DIR = "index"


def runtime_for(opened: checkpoint.Opened, device: str):
    if device == "cpu":
        from copilot_repl.completion.runtime_numpy import NumpyGPT

        return NumpyGPT(opened.config, opened.weights)
    from copilot_repl.completion.runtime_torch import TorchRuntime
    from copilot_repl.devices import resolve_device

    return TorchRuntime(checkpoint_write.torch_model(opened, resolve_device(device)[0]))


def training_index(opened: checkpoint.Opened) -> CorpusIndex | None:
    """The index over the training split saved with the model. A checkpoint ships its tokens; the
    suffix array (twice their size) is built on first use and cached, unless it was saved too."""
    directory = opened.directory / INDEX_DIR
    if not (directory / TOKENS).is_file():
        return None
    from copilot_repl.data import atomic_dir, cache_dir

    stat = (directory / TOKENS).stat()  # the file's identity, cheaply: hashing 7 MB would cost each --once 20 ms
    key = f"{directory.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{opened.tokenizer.vocab_size}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    cached = cache_dir() / "index" / digest
    try:
        if (directory / SUFFIXES).is_file():
            return CorpusIndex.load(directory, opened.tokenizer.vocab_size)
        if (cached / SUFFIXES).is_file():
            return CorpusIndex.load(cached, opened.tokenizer.vocab_size)
        index = CorpusIndex.load(directory, opened.tokenizer.vocab_size)
        atomic_dir(cached, index.save)  # another process may cache it first: that one is kept
        return index
    except (OSError, ValueError) as e:
        raise CheckpointError(f"the retrieval index of {opened.directory} is unreadable: {e}") from None


def load_engine(directory: Path, device: str = "cpu") -> tuple[Engine, checkpoint.Opened]:
    opened = checkpoint.open_checkpoint(directory)
    index = training_index(opened)
    gate = Gate.from_dict(opened.meta.get("retrieval"))
    confidence = Confidence.from_dict(opened.meta.get("confidence"))
    indexes = [index] if index is not None else []
    engine = Engine(runtime_for(opened, device), opened.tokenizer, indexes, gate=gate, confidence=confidence)
    return engine, opened
