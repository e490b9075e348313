"""Quality per CPU-minute: held-out stdlib bits/byte after a fixed wall-clock budget, for our default
recipe and for a nanoGPT-style reference recipe, next to `xz -9e` on the same held-out text."""

from __future__ import annotations

import lzma
import math
import statistics
import time

import numpy as np
import torch

from benchmarks.reference import RefGPT
from copilot_repl import data
from copilot_repl.completion.scoring import bits_per_byte
from copilot_repl.tokenizer import tokenizer_class
from copilot_repl.training.batches import batch
from copilot_repl.training.evaluate import mean_loss
from copilot_repl.training.train import TrainConfig, train


def xz_bits_per_byte(texts: list[str]) -> float:
    raw = "".join(texts).encode("utf-8")
    return 8 * len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)) / len(raw)


def ours(budget_s: float, seed: int, **overrides) -> float:
    config = TrainConfig(corpus=["stdlib"], time=budget_s, seed=seed, device="cpu", name=f"bench-ours-{seed}", **overrides)
    return train(config).val_bpb


def reference(budget_s: float, seed: int) -> float:
    """nanoGPT's recipe: 6 x 256, batch 16, context 128, AdamW 1e-3 with warm-up and cosine decay (by time),
    on our byte-level BPE at 8,192."""
    torch.manual_seed(seed)
    corpus = data.gather(["stdlib"])
    tokenizer, tok_dir = data.cached_tokenizer(corpus, tokenizer_class("bpe"), 8192)
    splits = data.token_cache(corpus, tokenizer, tokenizer.fingerprint(tok_dir))
    model = RefGPT(tokenizer.vocab_size, 128, 6, 4, 256)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    rng, step, start = np.random.default_rng(seed), 0, time.perf_counter()
    while (progress := (time.perf_counter() - start) / budget_s) < 1:
        lr = 1e-3 * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = (torch.from_numpy(a) for a in batch(splits.train, 16, 128, rng))
        model(x, y)[1].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
    loss, _ = mean_loss(model, splits.val, 16)
    return bits_per_byte(-loss * len(splits.val), splits.val_bytes)


def quality(budget_s: float, seeds: list[int]) -> dict:
    torch.set_num_threads(2)
    result = {"budget_s": budget_s, "xz_9e_bpb": xz_bits_per_byte(list(data.gather(["stdlib"]).texts("val")))}
    for name, run in (("ours", ours), ("reference", reference)):
        scores = [run(budget_s, seed) for seed in seeds]
        result[f"{name}_bpb_mean"] = statistics.mean(scores)
        result[f"{name}_bpb_spread"] = max(scores) - min(scores)
        result[f"{name}_bpb_all"] = scores
    return result
