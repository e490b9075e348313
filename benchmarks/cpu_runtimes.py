"""Completing on a CPU with models of several sizes, each runtime side by side in one process, one thread:
the numpy runtime, torch with float32 weights, and torch with int8 Linear weights (what `engine.py`
chooses from TORCH_CPU_FROM_PARAMS on). Tokens/s at batch 1 after a 16-token prompt, and the time to
the first token after a 1,000-token prompt. Weights are random but sized like trained ones.

python -m benchmarks --only cpu-runtimes
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np
import torch
from torch import nn

from copilot_repl.completion.runtime_numpy import NumpyGPT
from copilot_repl.completion.runtime_torch import TorchRuntime, int8
from copilot_repl.config import GPTConfig
from copilot_repl.model import GPT

SHAPES = ((4, 128, 4), (6, 256, 4), (8, 384, 6), (12, 640, 10))  # layers, width, heads: the shipped one first


def _model(layers: int, dim: int, heads: int) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=4096, block_size=1024, n_layer=layers, n_head=heads, n_embd=dim)).eval()
    for block in model.blocks:  # trained-like: zero projections would make every step trivially equal
        nn.init.normal_(block.attn.c_proj.weight, std=0.02)
        nn.init.normal_(block.mlp.c_proj.weight, std=0.02)
    return model


def _speed(runtime, new: int) -> float:
    runtime.prefill(np.arange(16)[None] % 4096)
    token, began = np.array([5]), time.perf_counter()
    for _ in range(new):
        token = runtime.step(token).argmax(-1)
    return new / (time.perf_counter() - began)


def _first_token(runtime, prompt: int, round_: int) -> float:
    """A different prompt each round: the numpy runtime would otherwise reuse the cached one."""
    began = time.perf_counter()
    runtime.prefill((np.arange(prompt)[None] * 7 + round_) % 4096)
    return time.perf_counter() - began


def cpu_runtimes(new: int = 48, prompt: int = 1000, rounds: int = 3) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result: dict = {}
    try:
        for layers, dim, heads in SHAPES:
            model = _model(layers, dim, heads)
            runtimes = {
                "numpy": NumpyGPT(model.config, {k: v.detach().numpy() for k, v in model.state_dict().items()}),
                "torch": TorchRuntime(model, threads=1),
                "int8": TorchRuntime(int8(copy.deepcopy(model)), threads=1),
            }
            name = f"{layers}x{dim}"
            result[f"{name}_params_m"] = round(model.num_params() / 1e6, 1)
            for label, runtime in runtimes.items():
                result[f"{name}_{label}_tok_s"] = round(statistics.median(_speed(runtime, new) for _ in range(rounds)), 1)
                first = min(_first_token(runtime, prompt, r) for r in range(rounds))
                result[f"{name}_{label}_first_token_1000_s"] = round(first, 3)
            result[f"{name}_int8_over_numpy"] = round(result[f"{name}_int8_tok_s"] / result[f"{name}_numpy_tok_s"], 2)
    finally:
        torch.set_num_threads(threads)
    return result
