"""The torch model behind the runtime interface (`prefill`, `step`), for `--device cuda|mps`, and on a
CPU for large models, with int8 Linear weights (engine.py says where the numpy runtime stops paying).

It runs the model's own forward pass with its KV cache, and hands logits back as numpy, so the same
sampler decides.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from copilot_repl.config import GPTConfig
from copilot_repl.model import GPT, KVCache

LINEARS = (("attn", "c_attn"), ("attn", "c_proj"), ("mlp", "c_fc"), ("mlp", "c_proj"))  # each block's matrices


def int8(model: GPT, read: Callable[[str], torch.Tensor] | None = None) -> GPT:
    """The model with each block's Linear weights as int8 (a scale per output channel; activations
    quantized as they come), in place, for a CPU: 4x less to read per token. With `read`, each weight
    is read by its name as it is quantized, for a model built without weights. tests/test_runtime.py
    holds it to the float model."""
    for i, block in enumerate(model.blocks):
        for part, name in LINEARS:
            owner = getattr(block, part)
            linear = getattr(owner, name)
            if read is not None:  # the meta weight becomes the real one
                linear.weight = nn.Parameter(read(f"blocks.{i}.{part}.{name}.weight"), requires_grad=False)
            linear.qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
            with warnings.catch_warnings():  # torch points at torchao for this API; the API is what ships with torch
                warnings.simplefilter("ignore")
                setattr(owner, name, torch.ao.nn.quantized.dynamic.Linear.from_float(linear))
    model.int8 = True  # type: ignore[assignment]
    return model.eval()


def int8_from_file(config: GPTConfig, directory: Path) -> GPT:
    """The checkpoint's model with int8 Linear weights, read one tensor at a time and quantized as it
    comes, so that loading never holds the float model (a 60M-parameter model: 246 MB of floats, 62 MB
    as int8)."""
    from copilot_repl.checkpoint import read_tensor

    model = GPT.without_weights(config)
    model.wte.weight = nn.Parameter(read_tensor(directory, "wte.weight"), requires_grad=False)
    return int8(model, lambda name: read_tensor(directory, name))


MAX_THREADS = 4  # at batch 1 a step reads every weight once: past a few threads, memory is the limit


def idle_cores() -> int:
    """The cores other work leaves free now (the last minute's load average against the cores), at
    least one. At batch 1 two threads on two idle cores make a 12 x 640 int8 model 1.6x faster (103 ->
    156-173 tokens/s), while threads that contend with other work collapse; a completing process's own
    recent work counts as load too, so a busy session settles on one thread."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average (Windows): the safe choice
        return 1
    return max(1, min(MAX_THREADS, round((os.cpu_count() or 1) - load)))


class TorchRuntime:
    def __init__(self, model: GPT, threads: int | Callable[[], int] | None = None):
        """`threads`: the torch threads a completion uses (then put back), or a function that chooses
        them as each completion starts (`idle_cores`); None leaves torch's own setting (a GPU)."""
        self.model, self.config, self.threads = model, model.config, threads
        self.step_threads = threads if isinstance(threads, int) else None
        self.name = "torch int8" if getattr(model, "int8", False) else "torch"
        self.block_size, self.vocab_size = model.config.block_size, model.config.vocab_size
        weights = next(model.parameters())
        self.device, self.dtype = weights.device, weights.dtype
        self.cache: KVCache | None = None

    @property
    def length(self) -> int:
        return self.cache.length if self.cache is not None else 0

    def num_params(self) -> int:
        return self.model.num_params()

    @contextlib.contextmanager
    def _threads(self):
        if self.step_threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.step_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)  # training in the same process keeps its threads

    @torch.inference_mode()
    def _run(self, ids: np.ndarray) -> np.ndarray:
        with self._threads():
            logits, _ = self.model(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device), cache=self.cache)
        return logits[:, -1].float().cpu().numpy()

    @torch.inference_mode()
    def logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits at every position of `ids` (rows, T), for scoring text; no cache."""
        self.cache = None
        self._choose_threads()
        with self._threads():
            logits, _ = self.model(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device))
        return logits.float().cpu().numpy()

    def _choose_threads(self) -> None:
        """As a completion starts: a function's choice holds for all its steps."""
        if callable(self.threads):
            self.step_threads = self.threads()

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self._choose_threads()
        self.cache = KVCache(self.config, len(ids), self.device, self.dtype)
        return self._run(ids)

    def step(self, tokens: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(tokens)[:, None])
