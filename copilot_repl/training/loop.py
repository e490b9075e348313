"""Where a training run stands and how it takes one optimizer step; the loop knows nothing of
terminals, files or budgets (train.py's `Run` holds those)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from copilot_repl.completion.scoring import bits_per_byte
from copilot_repl.model import GPT
from copilot_repl.training import distributed
from copilot_repl.training.batches import batch
from copilot_repl.training.evaluate import mean_loss
from copilot_repl.training.recipe import TrainConfig, lr_at, make_optimizers


class Loop:
    """Where a run stands (step, smoothed loss, history) and how it takes one optimizer step."""

    def __init__(self, config: TrainConfig, model: GPT, optimizers, splits, tokenizer, device: str, world, step=0, history=()):
        self.config, self.model, self.optimizers, self.splits = config, model, optimizers, splits
        self.tokenizer, self.device, self.world = tokenizer, device, world
        self.cuda = device.startswith("cuda")
        self.wrapped: Any = (
            DistributedDataParallel(model, device_ids=[world.local_rank] if self.cuda else None) if world.enabled else model
        )
        self.forward: Callable = torch.compile(self.wrapped) if config.compile else self.wrapped
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()
        self.rng = np.random.default_rng([config.seed, step, world.rank])  # different batches on every rank
        assert config.batch_size and config.block_size, "fill and size the config first"
        self.batch_size, self.block_size = config.batch_size, config.block_size
        self.tokens_per_step = self.batch_size * self.block_size * config.grad_accum * world.size
        self.step, self.start_step, self.history = step, step, list(history)
        self.smooth: float | None = None
        self.val_windows = max(1, (len(splits.val) - 1) // self.block_size)
        self.started = time.perf_counter()  # the loop's clock: tokens/s count from here

    def tokens_per_second(self) -> float:
        return (self.step - self.start_step) * self.tokens_per_step / max(time.perf_counter() - self.started, 1e-9)

    def validate(self, windows: int, progress: Callable[[int, int], None] | None = None) -> tuple[float, float]:
        """(held-out bits per byte over `windows` windows, the seconds one window took)."""
        began = time.perf_counter()
        loss, _ = mean_loss(self.model, self.splits.val, self.batch_size, windows, progress)
        seconds_per_window = (time.perf_counter() - began) / min(windows, self.val_windows)
        return bits_per_byte(-loss * len(self.splits.val), self.splits.val_bytes), seconds_per_window

    def _micro_step(self, last: bool) -> float:
        config = self.config
        arrays = batch(self.splits.train, self.batch_size, self.block_size, self.rng, self.tokenizer, config.fim_rate)
        x, y = (
            torch.from_numpy(a).pin_memory().to(self.device, non_blocking=True) if self.cuda else torch.from_numpy(a)
            for a in arrays
        )
        sync = contextlib.nullcontext() if last or not self.world.enabled else self.wrapped.no_sync()
        with sync:
            with self.autocast:
                _, loss = self.forward(x, y)
            (loss / config.grad_accum).backward()
        return loss.item()

    def _gradients(self) -> float:
        """Accumulate one optimizer step's gradients; the mean loss of its micro-batches."""
        accum = self.config.grad_accum
        return sum(self._micro_step(i == accum - 1) for i in range(accum)) / accum

    def _first_gradients(self, emit) -> float:
        """The first compiled step compiles; if torch.compile fails here, say why in one line and go on without it."""
        emit("status", message="compiling the training step (torch.compile: 20-40 s the first time, cached after)")
        try:
            return self._gradients()
        except Exception as e:  # the compiler's failures have many types; the eager step below is the real test
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            emit("status", message=f"torch.compile failed ({reason}); training without it")
            self.forward, self.config = self.wrapped, replace(self.config, compile=False)
            self.model.zero_grad(set_to_none=True)
            return self._gradients()

    def train_step(self, progress: float, emit) -> dict:
        """One optimizer step at the schedule's learning rate for `progress`; its record."""
        lr = lr_at(self.config, self.step, progress)
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = group["peak_lr"] * lr / self.config.lr
        first_compiled = self.step == self.start_step and self.forward is not self.wrapped
        loss = self._first_gradients(emit) if first_compiled else self._gradients()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        for optimizer in self.optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.smooth = loss if self.smooth is None else 0.9 * self.smooth + 0.1 * loss
        return {"step": self.step, "loss": round(self.smooth, 4), "lr": lr}


def probe_speed(config: TrainConfig, tokenizer, splits, device: str) -> float:
    """Training tokens per second of `config`'s shape here: two real steps on real batches, the second timed."""
    config = replace(config, compile=False, grad_accum=1)
    model = GPT(config.model_config(tokenizer.vocab_size)).to(device).train()
    loop = Loop(config, model, make_optimizers(model, config, device), splits, tokenizer, device, distributed.World())
    sync = torch.cuda.synchronize if loop.cuda else lambda: None
    loop.train_step(0.5, lambda *a, **k: None)  # the first step allocates and warms up: not timed
    sync()
    began = time.perf_counter()
    loop.train_step(0.5, lambda *a, **k: None)
    sync()
    return loop.tokens_per_step / (time.perf_counter() - began)
