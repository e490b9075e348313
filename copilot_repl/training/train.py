"""A training run. It knows nothing of terminals: progress goes to callbacks, as plain dicts.

`Run` holds what the whole run reads (config, clock, budget, data, the loop of loop.py) and goes in
plain steps: prepare the data, size and build the model, take steps until the schedule or the budget is
done, evaluate, save with metadata from a pure function. `train()` never changes the caller's config:
resuming and sizing make copies."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from copilot_repl import checkpoint, checkpoint_write
from copilot_repl.devices import resolve_device
from copilot_repl.errors import UsageError
from copilot_repl.model import GPT
from copilot_repl.training import distributed
from copilot_repl.training.base import Base, open_base
from copilot_repl.training.loop import Loop
from copilot_repl.training.plot import loss_png
from copilot_repl.training.recipe import SHAPE_FIELDS, TrainConfig
from copilot_repl.training.retrieval_fit import GATE_POSITIONS, fit_retrieval, retrieval_features
from copilot_repl.training.starting import build_model, prepare_data, resumed, shaped

FINAL_EVAL_WINDOWS = 512  # the final validation reads at most this many windows (all of stdlib's held-out split)
FINAL_EVAL_SHARE = 0.1  # of a --time budget: a short run's final validation reads fewer windows
FINAL_EVAL_MIN_WINDOWS = 32  # but never fewer (8k tokens at context 256: under a second here)
RESERVE_SHARE = 0.5  # of a --time budget: a 20 s run spends about 9 s after its last step here
SAVE_SECONDS = 1.0  # writing the checkpoint (about 20 MB for the default shape, fsync'd)


@dataclass
class TrainResult:
    directory: Path
    step: int
    val_bpb: float
    tokens_per_second: float
    interrupted: bool
    model: GPT  # this rank's weights (under torchrun they are in sync on every rank)


Callback = Callable[[str, dict], None]


# -- the run ------------------------------------------------------------------------------------------
def checkpoint_meta(
    config: TrainConfig, device: str, device_reason: str, corpus: dict, metrics: dict, history: list, made_by: dict, extra: dict
) -> dict:
    """checkpoint.json's contents: what a checkpoint says about how it was made (pure)."""
    return {
        "train": asdict(config) | {"device": device},
        "corpus": corpus,
        "metrics": metrics,
        "made_by": made_by | {"device": device, "device_reason": device_reason},
        "history": history,
    } | extra


def train(
    config: TrainConfig, callbacks: Sequence[Callback] = (), started: float | None = None, made_by: dict | None = None
) -> TrainResult:
    """Train (or resume) a model and save it under paras/NAME; Ctrl-C saves before returning.
    Under torchrun every rank trains on its own batches; only rank 0 reports, evaluates and saves.
    `started` (a `time.perf_counter()` reading) is when the user's command began: --time counts from it.
    `made_by` (the command, say) is recorded in checkpoint.json as given."""
    world = distributed.world_from_env()
    out_dir = checkpoint.paras_dir(config.paras) / config.name
    config.check()
    base = open_base(config.init_from, config.paras) if config.init_from else None  # before anything is written
    if base is not None:
        if out_dir.resolve() == base.directory.resolve():
            raise UsageError(f"--name {config.name} would overwrite the base it starts from; choose another --name")
        config = base.on_base(config)
    with checkpoint_write.exclusive(out_dir) if world.is_main else contextlib.nullcontext():
        run_start = started if started is not None else time.perf_counter()
        return Run(config, callbacks, world, out_dir, made_by or {}, base).execute(run_start)


@dataclass
class Clock:
    """The run's time. `spent` is what --time budgets: from the user's command on, plus the training
    time of the runs it resumes; `trained` counts from the first step (the same earlier time added)."""

    before: float  # seconds trained by the runs this one resumes
    command_start: float
    loop_start: float | None = None

    def spent(self) -> float:
        return self.before + time.perf_counter() - self.command_start

    def trained(self) -> float:
        return self.before + time.perf_counter() - (self.loop_start or time.perf_counter())


class Run:
    """One training run from its config to a saved checkpoint, holding what every part of it reads:
    the config (the loop's, which drops torch.compile when it fails), the clock and budget, the data,
    the loop, and the cost of a validation window, which sizes the time kept for after the last step."""

    def __init__(
        self, config: TrainConfig, callbacks: Sequence[Callback], world, out_dir: Path, made_by: dict, base: Base | None
    ):
        self.callbacks, self.world, self.out_dir, self.made_by, self.base = callbacks, world, out_dir, made_by, base
        self.given = config
        self.sized: dict = {}
        self.seconds_per_window = 0.0

    def emit(self, event: str, **info) -> None:
        for callback in self.callbacks if self.world.is_main else ():
            callback(event, info)

    @property
    def config(self) -> TrainConfig:
        return self.loop.config

    def execute(self, command_start: float) -> TrainResult:
        self._prepare(command_start)
        interrupted, val_bpb = False, float("nan")
        try:
            val_bpb = self._steps()
        except KeyboardInterrupt:
            interrupted = True
        loop = self.loop
        self.emit("end", step=loop.step, interrupted=interrupted, history=loop.history)
        if interrupted:
            self.emit("status", message="interrupted: saving")
        if self.world.is_main:
            windows = self.final_windows()
            self.emit("status", message=f"final evaluation on {windows} of {loop.val_windows} validation windows")
            val_bpb, _ = loop.validate(windows, lambda done, total: self.emit("evaluate", done=done, total=total))
            final = {"step": loop.step, "loss": round(loop.smooth or float("nan"), 4), "elapsed": round(self.clock.trained(), 2)}
            loop.history.append(final | {"val_bpb": round(val_bpb, 4)})
            self.save(val_bpb, final=True)
        distributed.barrier(self.world)  # nobody leaves before the checkpoint is on disk
        distributed.stop(self.world)
        return TrainResult(self.out_dir, loop.step, val_bpb, loop.tokens_per_second(), interrupted, loop.model)

    def _prepare(self, command_start: float) -> None:
        """Data, shape, model and loop; the "start" report."""
        world = self.world
        self.state: dict | None = None
        config = self.given
        if config.resume:
            config, self.state, self.base = resumed(config, self.out_dir)
        config.check()
        config = config.filled()
        device, self.device_reason = resolve_device(config.device)
        self.device = device = distributed.start(world, device)
        self.corpus, self.tokenizer, self.splits = prepare_data(config, world, self.emit, self.base)
        config = replace(config, vocab_size=config.vocab_size or self.tokenizer.vocab_size)
        self.clock = Clock(float(self.state["elapsed"]) if self.state else 0.0, command_start)
        config, self.sized = shaped(config, self.tokenizer, self.splits, device, world, self.clock.spent, self.emit)
        model, optimizers, step, history = build_model(
            config, self.tokenizer.vocab_size, device, self.out_dir, self.state, self.base
        )
        if world.is_main:  # before "start": Ctrl-C here leaves nothing trained to save
            indexed = lambda done, total: self.emit("index", done=done, total=total)  # noqa: E731
            self.gate_inputs = retrieval_features(self.splits, self.tokenizer, indexed)
        self.loop = loop = Loop(config, model, optimizers, self.splits, self.tokenizer, device, world, step, history)
        self.clock.loop_start = loop.started
        self.steps_per_epoch = max(1, len(self.splits.train) // loop.tokens_per_step)
        self.total_steps = config.steps or (None if config.time else math.ceil((config.epochs or 1) * self.steps_per_epoch))
        self.emit(
            "start",
            params=model.num_params(),
            device=device,
            device_reason=self.device_reason + (f"; {world.size} processes" if world.enabled else ""),
            total_steps=self.total_steps,
            time=config.time,
            train_tokens=len(self.splits.train),
            val_tokens=len(self.splits.val),
            cache_reused=self.splits.reused,
            vocab_size=self.tokenizer.vocab_size,
            step=step,
            shape={f: getattr(config, f) for f in SHAPE_FIELDS},
        )

    def _steps(self) -> float:
        """Optimizer steps until the schedule or the budget is done; the last held-out bits/byte."""
        loop, config, val_bpb = self.loop, self.config, float("nan")
        if config.time and self.world.is_main:
            loop.validate(1)  # a cold first forward pass would overstate the next measurement
            _, self.seconds_per_window = loop.validate(2)  # what a window of validation costs here
        next_quarter = 0.25  # a held-out figure at least at each quarter, in a short run too
        while (now := self.progress()) < 1.0:
            record = loop.train_step(now, self.emit) | {"elapsed": round(self.clock.trained(), 2)}
            quarter = now >= next_quarter
            next_quarter += 0.25 * quarter
            if (loop.step % config.eval_every == 0 or quarter) and self.world.is_main:
                val_bpb, self.seconds_per_window = loop.validate(config.eval_windows)
                record["val_bpb"] = round(val_bpb, 4)
            if loop.step % 10 == 0 or "val_bpb" in record:
                loop.history.append(record)
            self.emit("step", **record, progress=now, tokens_per_second=loop.tokens_per_second())
            if loop.step % self.steps_per_epoch == 0 and self.world.is_main:  # a checkpoint per epoch, and one at the end
                self.save(val_bpb)
        return val_bpb

    def final_windows(self) -> int:
        """The whole held-out split up to FINAL_EVAL_WINDOWS, fewer (down to FINAL_EVAL_MIN_WINDOWS) where
        reading them would take more than FINAL_EVAL_SHARE of a --time budget."""
        budget, per_window = self.config.time, self.seconds_per_window
        fits = FINAL_EVAL_SHARE * budget / per_window if budget and per_window else math.inf
        return int(min(self.loop.val_windows, max(FINAL_EVAL_MIN_WINDOWS, min(FINAL_EVAL_WINDOWS, fits))))

    def reserve(self) -> float:
        """Seconds the run needs after its last step: the final evaluation, the model's log-probabilities
        for the gate (about two window-reads per window of its tokens), the fit and saving; at most
        RESERVE_SHARE of the budget. (Sizing, before any window is read, keeps a tenth instead.)"""
        windows = self.final_windows() + 2 * GATE_POSITIONS / self.loop.block_size
        fit = self.gate_inputs.fit_seconds if self.world.is_main else 0.0
        return min(self.seconds_per_window * windows + fit + SAVE_SECONDS, RESERVE_SHARE * (self.config.time or 0.0))

    def progress(self) -> float:
        if self.total_steps:
            return self.loop.step / self.total_steps
        budget = (self.config.time or 1.0) - self.reserve()
        return distributed.agree_max(self.world, self.clock.spent() / max(budget, 1e-9))

    def save(self, val_bpb: float, final: bool = False) -> None:
        loop = self.loop
        files, extra = {"loss.png": loss_png(loop.history)}, {"sizing": self.sized} if self.sized else {}
        if final:  # completions copy from the training split, weighted by a gate fitted on the validation split
            start = self.base.opened.meta.get("retrieval") if self.base else None
            fitted = lambda done, total: self.emit("gate", done=done, total=total)  # noqa: E731
            extra["retrieval"], files["index/tokens.npy"] = fit_retrieval(
                loop.model, self.splits, self.gate_inputs, start, fitted
            )
        if self.base is not None:  # the base's confidence fits its completions; until one is fitted to these
            extra["base"] = self.base.record()
            extra |= {k: self.base.opened.meta[k] for k in ("confidence", "generation") if k in self.base.opened.meta}
        metrics = {
            "val_bpb": val_bpb,
            "step": loop.step,
            "tokens_seen": loop.step * loop.tokens_per_step,
            "wall_time_s": round(self.clock.trained(), 1),
            "run_s": round(self.clock.spent(), 1),  # from reading the corpus on: what --time budgets
            "tokens_per_second": round(loop.tokens_per_second(), 1),
        }
        tokens = {"train": len(self.splits.train), "val": len(self.splits.val)}
        description = self.corpus.describe() | {"tokens": tokens | ({"replayed": self.splits.replayed} if self.base else {})}
        meta = checkpoint_meta(
            self.config, self.device, self.device_reason, description, metrics, loop.history, self.made_by, extra
        )
        opt_state = {"optimizer": [o.state_dict() for o in loop.optimizers], "step": loop.step, "elapsed": self.clock.trained()}
        checkpoint_write.save(self.out_dir, loop.model, self.tokenizer, meta, opt_state, files=files)
        self.emit("saved", path=str(self.out_dir), step=loop.step, val_bpb=val_bpb)
