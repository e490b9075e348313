"""Training and generation speed, side by side in one run: ours, the nanoGPT-style reference, and
HuggingFace transformers' GPT-2 at the same shape (when the `bench` extra is installed)."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn

from benchmarks.reference import RefGPT
from copilot_repl.completion.runtime_numpy import NumpyGPT
from copilot_repl.model import GPT, GPTConfig, KVCache

SHAPE = dict(vocab_size=256, block_size=128, layers=6, heads=4, dim=256)  # the peer shape: characters
BATCH = 16


def _hf_gpt2(vocab_size, block_size, layers, heads, dim):
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=block_size,
        n_layer=layers,
        n_head=heads,
        n_embd=dim,
        attn_pdrop=0.0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        bos_token_id=vocab_size - 1,  # GPT-2's own ids lie outside a small vocabulary
        eos_token_id=vocab_size - 1,
    )
    return GPT2LMHeadModel(config)


def builders(shape: dict) -> dict:
    ours = lambda: GPT(
        GPTConfig(
            vocab_size=shape["vocab_size"],
            block_size=shape["block_size"],
            n_layer=shape["layers"],  # noqa: E731
            n_head=shape["heads"],
            n_embd=shape["dim"],
        )
    )
    found = {"ours": ours, "nanogpt-style": lambda: RefGPT(**shape)}
    if _hf_gpt2(**shape) is not None:
        found["transformers"] = lambda: _hf_gpt2(**shape)
    return found


def _loss(model, x, y):
    out = model(x, labels=y) if model.__class__.__name__ == "GPT2LMHeadModel" else model(x, y)
    return out.loss if hasattr(out, "loss") else out[1]


def matmul_peak_flops(seconds: float = 2.0) -> float:
    """fp32 FLOP/s of a large square matmul: the ceiling that model FLOPs utilisation is measured against."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start)


def training(shape: dict = SHAPE, steps: int = 8, rounds: int = 3) -> dict:
    """Median tokens/s of a full training step (forward, backward, AdamW) for each model, interleaved;
    ours and the nanoGPT-style model also under torch.compile (its compilation happens in warm-up)."""
    made = {name: build() for name, build in builders(shape).items()}
    for name in ("ours", "nanogpt-style"):
        made[f"{name}_compiled"] = torch.compile(builders(shape)[name]())
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in made.items()}
    x = torch.randint(0, shape["vocab_size"], (BATCH, shape["block_size"]))
    times = {name: [] for name in made}
    for _ in range(rounds):
        for name, model in made.items():
            for i in range(steps + 2):
                if i == 2:
                    start = time.perf_counter()
                _loss(model, x, x).backward()
                optimizers[name].step()
                optimizers[name].zero_grad(set_to_none=True)
            times[name].append((time.perf_counter() - start) / steps)
    tokens = BATCH * shape["block_size"]
    result = {f"train_tok_s_{name}": tokens / statistics.median(t) for name, t in times.items()}
    peak = matmul_peak_flops()
    result["matmul_peak_gflops"] = peak / 1e9
    attention_flops = 12 * shape["layers"] * shape["dim"] * shape["block_size"]
    for name, model in made.items():  # every model's own parameter count (positions and biases included)
        flops_per_token = 6 * sum(p.numel() for p in model.parameters()) + attention_flops
        result[f"mfu_{name}"] = result[f"train_tok_s_{name}"] * flops_per_token / peak
    for name in made:
        if name not in ("ours", "ours_compiled"):
            for ours in ("ours", "ours_compiled"):
                result[f"train_speedup_{ours}_vs_{name}"] = result[f"train_tok_s_{ours}"] / result[f"train_tok_s_{name}"]
    return result


def _ours(runtime: NumpyGPT, prompt: torch.Tensor, new: int) -> None:
    """The path a completion takes on a CPU: the numpy runtime, prefill then one step per token, greedy."""
    logits = runtime.prefill(prompt.numpy())
    for _ in range(new):
        logits = runtime.step(logits.argmax(-1))


@torch.inference_mode()
def _ours_forward_cached(model: GPT, prompt: torch.Tensor, new: int) -> None:
    """Every new token through `GPT.forward` with the KV cache, in float32: the torch path (GPUs use it)."""
    cache = KVCache(model.config, 1, "cpu", torch.float32)
    logits, _ = model(prompt, cache=cache)
    for _ in range(new):
        token = logits[:, -1].argmax(-1, keepdim=True)
        logits, _ = model(token, cache=cache)


@torch.inference_mode()
def _ours_uncached(model: GPT, prompt: torch.Tensor, new: int) -> None:
    idx = prompt
    for _ in range(new):
        logits, _ = model(idx[:, -model.config.block_size :])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)


def _hf_generate(model, new: int):
    return lambda p: model.generate(p, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True, pad_token_id=0)


def generation(shape: dict | None = None, prompt_len: int = 16, new: int = 128, rounds: int = 3) -> dict:
    """Tokens/s at batch 1: our CPU path (the numpy runtime), the torch model with and without the KV
    cache, and transformers' generate() with float32 and float16 weights."""
    shape = shape or {**SHAPE, "block_size": 256}
    made = builders(shape)
    ours = made["ours"]().eval()
    for block in ours.blocks:  # trained-like weights: zero projections would make every step trivially equal
        nn.init.normal_(block.attn.c_proj.weight, std=0.02)
        nn.init.normal_(block.mlp.c_proj.weight, std=0.02)
    numpy_runtime = NumpyGPT(ours.config, {k: v.detach().numpy() for k, v in ours.state_dict().items()})
    runners = {
        "ours": lambda p: _ours(numpy_runtime, p, new),
        "forward_cached": lambda p: _ours_forward_cached(ours, p, new),
        "uncached": lambda p: _ours_uncached(ours, p, new),
    }
    if "transformers" in made:
        runners["transformers"] = _hf_generate(made["transformers"]().eval(), new)
        runners["transformers_fp16"] = _hf_generate(made["transformers"]().eval().half(), new)
    prompt = torch.randint(0, shape["vocab_size"], (1, prompt_len))
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(prompt)
            times[name].append(time.perf_counter() - start)
    result = {f"gen_tok_s_{name}": new / statistics.median(t) for name, t in times.items()}
    for name in runners:
        if name != "ours":
            result[f"gen_speedup_vs_{name}"] = result["gen_tok_s_ours"] / result[f"gen_tok_s_{name}"]
    return result
