"""The torch model behind the runtime interface (`prefill`, `step`), for `--device cuda|mps`, and on a
CPU for large models, with int8 Linear weights (engine.py says where the numpy runtime stops paying).

It runs the model's own forward pass with its KV cache, and hands logits back as numpy, so the same
sampler decides.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

from copilot_repl.model import GPT, KVCache


def int8(model: GPT) -> GPT:
    """The model with its Linear layers' weights as int8 (per tensor; activations quantized as they
    come), for a CPU: 4x less to read per token. tests/test_runtime.py holds it to the float model."""
    with warnings.catch_warnings():  # torch points at torchao for this API; the API is what ships with torch
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    quantized.int8 = True  # type: ignore[assignment]
    return quantized


class TorchRuntime:
    def __init__(self, model: GPT, threads: int | None = None):
        """`threads`: the torch threads a step uses (then put back): at batch 1 on a shared CPU, one
        (more only contend); None leaves torch's own setting (a GPU)."""
        self.model, self.config, self.threads = model, model.config, threads
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
        if self.threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
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
        with self._threads():
            logits, _ = self.model(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device))
        return logits.float().cpu().numpy()

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self.cache = KVCache(self.config, len(ids), self.device, self.dtype)
        return self._run(ids)

    def step(self, tokens: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(tokens)[:, None])
