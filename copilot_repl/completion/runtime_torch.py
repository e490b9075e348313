"""The torch model behind the runtime interface (`prefill`, `step`), for `--device cuda|mps`, and on a
CPU for large models, with int8 Linear weights (engine.py says where the numpy runtime stops paying).

It runs the model's own forward pass with its KV cache, and hands logits back as numpy, so the same
sampler decides.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from copilot_repl.config import GPTConfig
from copilot_repl.model import GPT, KVCache


def int8(model: GPT) -> GPT:
    """The model with its Linear layers' weights as int8 (per tensor; activations quantized as they
    come), for a CPU: 4x less to read per token. tests/test_runtime.py holds it to the float model."""
    with warnings.catch_warnings():  # torch points at torchao for this API; the API is what ships with torch
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    quantized.int8 = True  # type: ignore[assignment]
    return quantized


def int8_from_file(config: GPTConfig, directory: Path) -> GPT:
    """The checkpoint's model with int8 Linear weights, read one tensor at a time and quantized as it
    comes, so that loading never holds the float model (a 60M-parameter model: 246 MB of floats, 62 MB
    as int8). The same numbers as `int8()` of the float model."""
    from copilot_repl.checkpoint import read_tensor
    from copilot_repl.model import Rotary

    with torch.device("meta"):
        model = GPT(config)
    model.wte.weight = nn.Parameter(read_tensor(directory, "wte.weight"), requires_grad=False)
    rotary = Rotary(config.n_embd // config.n_head, config.block_size, config.rope_base)
    for i, block in enumerate(model.blocks):
        block.attn.rotary = rotary  # type: ignore[union-attr]
        for owner, names in ((block.attn, ("c_attn", "c_proj")), (block.mlp, ("c_fc", "c_proj"))):  # type: ignore[union-attr]
            for name in names:
                weight = read_tensor(directory, f"blocks.{i}.{'attn' if owner is block.attn else 'mlp'}.{name}.weight")
                linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
                linear.weight = nn.Parameter(weight, requires_grad=False)
                setattr(owner, name, _quantized(linear))
    model.int8 = True  # type: ignore[assignment]
    return model.eval()


def _quantized(linear: nn.Linear) -> nn.Module:
    linear.qconfig = torch.ao.quantization.default_dynamic_qconfig  # type: ignore[assignment]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.nn.quantized.dynamic.Linear.from_float(linear)


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
