"""Completing on a CPU with models of several sizes, each runtime side by side, one thread: the numpy
runtime, torch with float32 weights, torch with int8 Linear weights (what `engine.py` chooses from
TORCH_CPU_FROM_PARAMS on), and transformers' GPT-2 `generate()` at the same shape as the peer.

In one process: tokens/s at batch 1 after a 16-token prompt, and the time to the first token after a
1,000-token prompt. Then, for each shape saved as a real checkpoint: each runtime's start-up (imports,
loading, one token) and peak memory in a process of its own, and the real `copilot-repl --once --json`
(the runtime the engine chooses). Weights are random but sized like trained ones.

python -m benchmarks --only cpu-runtimes
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.throughput import _hf_gpt2
from copilot_repl import checkpoint, checkpoint_write
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


class _Generate:
    """transformers' GPT-2 behind the two calls the timings make."""

    def __init__(self, model):
        self.model = model.eval()

    def prefill(self, ids: np.ndarray):
        self.ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        return self._generate(1)

    def _generate(self, new: int):
        with torch.inference_mode():
            return self.model.generate(self.ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)


def _hf_speed(peer: _Generate, new: int) -> float:
    """generate() of `new` tokens after 16, less generate() of one: the steps alone, as `_speed` times them."""
    peer.ids = torch.arange(16)[None] % 4096
    began = time.perf_counter()
    peer._generate(1)
    one = time.perf_counter() - began
    began = time.perf_counter()
    peer._generate(new + 1)
    return new / (time.perf_counter() - began - one)


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
            peer = _hf_gpt2(4096, 1024, layers, heads, dim)
            if peer is not None:
                runtimes["transformers"] = _Generate(peer)
            name = f"{layers}x{dim}"
            result[f"{name}_params_m"] = round(model.num_params() / 1e6, 1)
            for label, runtime in runtimes.items():
                speed = _hf_speed if label == "transformers" else _speed
                result[f"{name}_{label}_tok_s"] = round(statistics.median(speed(runtime, new) for _ in range(rounds)), 1)
                first = min(_first_token(runtime, prompt, r) for r in range(rounds))
                result[f"{name}_{label}_first_token_1000_s"] = round(first, 3)
            result[f"{name}_int8_over_numpy"] = round(result[f"{name}_int8_tok_s"] / result[f"{name}_numpy_tok_s"], 2)
    finally:
        torch.set_num_threads(threads)
    return result


# A runtime's start-up in a process of its own: imports, reading the checkpoint, the first token.
_STARTUP = """
import sys, time
began = time.perf_counter()
from pathlib import Path
import numpy as np
from copilot_repl import checkpoint
kind, directory = sys.argv[1], Path(sys.argv[2])
opened = checkpoint.open_checkpoint(directory, weights=kind != "int8")
if kind == "numpy":
    from copilot_repl.completion.runtime_numpy import NumpyGPT
    runtime = NumpyGPT(opened.config, opened.weights)
else:
    from copilot_repl import checkpoint_write
    from copilot_repl.completion.runtime_torch import TorchRuntime, int8_from_file
    model = int8_from_file(opened.config, directory) if kind == "int8" else checkpoint_write.torch_model(opened)
    runtime = TorchRuntime(model, threads=1)
runtime.prefill(np.arange(16)[None])
print(time.perf_counter() - began)
"""


# Peak memory is read from a small launcher's child: a child forked from this process (which holds
# models) would count this process's pages, as the kernel carries the peak across exec.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _child(args: list[str]) -> tuple[str, float, float]:
    """stdout, wall seconds and peak memory (MB) of a process of its own."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if done.returncode:
        raise RuntimeError(f"{args[:3]} failed with {done.returncode}")
    return done.stdout, wall, int(done.stderr.split()[-1]) / 1024


def _checkpoint(layers: int, dim: int, heads: int, into: Path) -> Path:
    """The shape as a real checkpoint folder, with the shipped model's tokenizer."""
    tokenizer = checkpoint.open_checkpoint(checkpoint.shipped_default(), weights=False).tokenizer
    directory = into / f"{layers}x{dim}"
    checkpoint_write.save(directory, _model(layers, dim, heads), tokenizer, {})
    return directory


def end_to_end(rounds: int = 3) -> dict:
    """Start-up and peak memory of each runtime in its own process, and the real `--once --json`
    (64 tokens, greedy) with the runtime the engine chooses: the best of `rounds`."""
    result: dict = {}
    program = shutil.which("copilot-repl")
    with tempfile.TemporaryDirectory() as tmp:
        for layers, dim, heads in SHAPES:
            directory, name = _checkpoint(layers, dim, heads, Path(tmp)), f"{layers}x{dim}"
            for kind in ("numpy", "torch", "int8"):
                runs = [_child([sys.executable, "-c", _STARTUP, kind, str(directory)]) for _ in range(rounds)]
                result[f"{name}_{kind}_start_s"] = round(min(float(out) for out, _, _ in runs), 2)
                result[f"{name}_{kind}_peak_mb"] = round(min(mb for _, _, mb in runs))
            if program is None:
                continue
            once = [program, "--model", str(directory), "--once", "def f(", "--temperature", "0", "--max-tokens", "64"]
            runs = [_child([*once, "--json", "--stop-mode", "none"]) for _ in range(rounds)]
            best = max(runs, key=lambda run: json.loads(run[0])["tokens_per_second"])
            result[f"{name}_once_runtime"] = json.loads(best[0])["runtime"]
            result[f"{name}_once_tok_s"] = json.loads(best[0])["tokens_per_second"]
            result[f"{name}_once_wall_s"] = round(min(wall for _, wall, _ in runs), 2)
            result[f"{name}_once_peak_mb"] = round(min(mb for _, _, mb in runs))
    return result
