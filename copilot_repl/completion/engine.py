"""From a checkpoint directory to an `Engine`: the runtime for the device, the tokenizer, and the
indexes completions may copy from. On a CPU nothing here imports torch for a small model; a large one
runs faster through torch with int8 weights than through numpy, enough to pay for importing torch."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from copilot_repl import checkpoint, checkpoint_write
from copilot_repl.completion.confidence import Confidence
from copilot_repl.completion.generate import Engine
from copilot_repl.completion.retrieval import SUFFIXES, TOKENS, CorpusIndex, Gate
from copilot_repl.errors import CheckpointError

INDEX_DIR = "index"
# On a CPU, one thread, tokens/s at batch 1 (numpy / torch with int8 Linear weights), measured side by
# side here: 4 x 128 (1.3M) 1073 / 930; 6 x 256 (5.8M) 251 / 553; 8 x 384 (15.7M) 68 / 340; 12 x 640
# (61.6M) 17 / 112. Importing torch costs about 1 s, more than numpy takes for 64 tokens below ~10M.
TORCH_CPU_FROM_PARAMS = 10_000_000


def cpu_runtime(params: int) -> str:
    """Which runtime completes on a CPU: "numpy", or "torch int8" for a large model where torch is installed."""
    if params < TORCH_CPU_FROM_PARAMS or importlib.util.find_spec("torch") is None:
        return "numpy"
    return "torch int8"


def runtime_for(opened: checkpoint.Opened, device: str):
    """The runtime for `device`; the float weights are read here unless int8 reads them itself."""
    from copilot_repl.completion.runtime_numpy import NumpyGPT

    if device == "cpu" and cpu_runtime(opened.config.num_params()) == "numpy":
        return NumpyGPT(opened.config, opened.weights or checkpoint.read_weights(opened.directory))
    from copilot_repl.completion.runtime_torch import TorchRuntime, idle_cores, int8_from_file
    from copilot_repl.devices import resolve_device

    if device == "cpu":
        return TorchRuntime(int8_from_file(opened.config, opened.directory), threads=idle_cores)
    opened.weights = opened.weights or checkpoint.read_weights(opened.directory)
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
    opened = checkpoint.open_checkpoint(directory, weights=False)  # read by the runtime it gets
    index = training_index(opened)
    gate = Gate.from_dict(opened.meta.get("retrieval"))
    confidence = Confidence.from_dict(opened.meta.get("confidence"))
    indexes = [index] if index is not None else []
    engine = Engine(runtime_for(opened, device), opened.tokenizer, indexes, gate=gate, confidence=confidence)
    return engine, opened
