"""The training loop. It knows nothing of terminals: progress goes to callbacks, as plain dicts.

A run is four plain steps: prepare the data, build the model and its optimizers, loop, save with metadata
from a pure function. `train()` never changes the caller's config: resuming and sizing make copies."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from copilot_repl import checkpoint, data, distributed, sizing
from copilot_repl.devices import resolve_device
from copilot_repl.errors import CheckpointError, CorpusError
from copilot_repl.evaluate import mean_loss
from copilot_repl.model import GPT
from copilot_repl.plot import loss_png
from copilot_repl.recipe import SHAPE_FIELDS, TrainConfig, lr_at, make_optimizers
from copilot_repl.retrieval_fit import GATE_POSITIONS, fit_retrieval, retrieval_features
from copilot_repl.scoring import bits_per_byte
from copilot_repl.tokenizer import tokenizer_class

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


# -- data ---------------------------------------------------------------------------------------------
def prepare_data(config: TrainConfig, world: distributed.World, emit: Callable[..., Any]):
    """Corpus, tokenizer and token cache. Rank 0 trains the tokenizer and fills the cache; the rest reuse them."""
    emit("status", message=f"reading corpus {' '.join(config.corpus)}")
    if not world.is_main:
        distributed.barrier(world)
    corpus = data.gather(config.corpus)
    emit("status", message=f"tokenizer {config.tokenizer}")
    tokenizer, tok_dir = data.cached_tokenizer(corpus, tokenizer_class(config.tokenizer), config.vocab_size)
    encoded = lambda done, total: emit("encode", done=done, total=total)  # noqa: E731
    splits = data.token_cache(corpus, tokenizer, tokenizer.fingerprint(tok_dir), encoded)
    if world.is_main:
        distributed.barrier(world)
    if len(splits.train) < config.block_size + 2:
        raise CorpusError(f"corpus too small: {len(splits.train)} training tokens for --block-size {config.block_size}")
    return corpus, tokenizer, splits


# -- the loop -----------------------------------------------------------------------------------------
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
        assert config.batch_size is not None, "size the config first"
        self.batch_size = config.batch_size
        self.tokens_per_step = self.batch_size * config.block_size * config.grad_accum * world.size
        self.step, self.start_step, self.history = step, step, list(history)
        self.smooth: float | None = None
        self.val_windows = max(1, (len(splits.val) - 1) // config.block_size)
        self.seconds_per_window = 0.0
        self.started = time.perf_counter()  # the loop's clock: tokens/s and elapsed time count from here

    def tokens_per_second(self) -> float:
        return (self.step - self.start_step) * self.tokens_per_step / max(time.perf_counter() - self.started, 1e-9)

    def validate(self, windows: int, progress: Callable[[int, int], None] | None = None) -> float:
        """Held-out bits per byte over `windows` windows; remembers what one window costs."""
        began = time.perf_counter()
        loss, _ = mean_loss(self.model, self.splits.val, self.batch_size, windows, progress)
        self.seconds_per_window = (time.perf_counter() - began) / min(windows, self.val_windows)
        return bits_per_byte(-loss * len(self.splits.val), self.splits.val_bytes)

    def _micro_step(self, last: bool) -> float:
        config = self.config
        arrays = data.batch(self.splits.train, self.batch_size, config.block_size, self.rng, self.tokenizer, config.fim_rate)
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


def _shaped(
    config: TrainConfig, tokenizer, splits, device: str, world, spent: Callable[[], float], emit
) -> tuple[TrainConfig, dict]:
    """The config with every shape field filled: what the user gave, else with --time the shape
    sizing.py chooses from this machine's measured speed (and its record), else sizing.DEFAULT."""
    if any(getattr(config, f) is not None for f in SHAPE_FIELDS) or not config.time:
        return config.sized(sizing.DEFAULT), {}
    emit("status", message="measuring this machine's training speed to size the model for --time")
    probe = lambda shape: _probe(config.sized(shape), tokenizer, splits, device)  # noqa: E731
    budget = config.time
    agree = lambda index: int(distributed.agree_max(world, index))  # noqa: E731
    shape, record = sizing.choose(lambda: 0.9 * (budget - spent()), probe, agree)  # a tenth: indexing, final evaluation
    emit("status", message=f"model shape {shape.name}: {record['reason']}")
    return config.sized(shape), record


def build_model(config: TrainConfig, vocab_size: int, device: str, out_dir: Path, state: dict | None):
    """The model (new, or the saved one when resuming), its optimizers, and the step and history to go on from."""
    torch.manual_seed(config.seed)  # the same initial weights on every rank, probed or not
    model = checkpoint.load(out_dir).model if state is not None else GPT(config.model_config(vocab_size))
    model.to(device).train()
    optimizers = make_optimizers(model, config, device)
    if state is None:
        return model, optimizers, 0, []
    saved_states = state["optimizer"] if isinstance(state["optimizer"], list) else [state["optimizer"]]
    for optimizer, saved_state in zip(optimizers, saved_states):
        optimizer.load_state_dict(saved_state)
    return model, optimizers, int(state["step"]), checkpoint.read_meta(out_dir).get("history", [])


def _resumed(config: TrainConfig, out_dir: Path) -> tuple[TrainConfig, dict]:
    """The config to go on with (the saved run's shape and data) and the saved optimizer state."""
    if not (out_dir / checkpoint.META).is_file():
        raise CheckpointError(f"nothing to resume: {out_dir} is not a checkpoint")
    state = checkpoint.load_optimizer_state(out_dir)
    if state is None:
        raise CheckpointError(f"{out_dir} has no optimizer state to resume from")
    saved = checkpoint.read_meta(out_dir)["train"]
    keys = ("corpus", "tokenizer", "vocab_size", "block_size", "optimizer", *SHAPE_FIELDS)
    return replace(config, **{k: saved.get(k, getattr(config, k)) for k in keys}), state


def train(
    config: TrainConfig, callbacks: Sequence[Callback] = (), started: float | None = None, made_by: dict | None = None
) -> TrainResult:
    """Train (or resume) a model and save it under paras/NAME; Ctrl-C saves before returning.
    Under torchrun every rank trains on its own batches; only rank 0 reports, evaluates and saves.
    `started` (a `time.perf_counter()` reading) is when the user's command began: --time counts from it.
    `made_by` (the command, say) is recorded in checkpoint.json as given."""
    world = distributed.world_from_env()
    out_dir = checkpoint.paras_dir(config.paras) / config.name
    with checkpoint.exclusive(out_dir) if world.is_main else contextlib.nullcontext():
        run_start = started if started is not None else time.perf_counter()
        return _run(config, callbacks, world, out_dir, run_start, made_by or {})


def _run(
    config: TrainConfig, callbacks: Sequence[Callback], world, out_dir: Path, run_start: float, made_by: dict
) -> TrainResult:
    def emit(event: str, **info) -> None:
        for callback in callbacks if world.is_main else ():
            callback(event, info)

    config, state = _resumed(config, out_dir) if config.resume else (config, None)
    config.check()
    device, device_reason = resolve_device(config.device)
    device = distributed.start(world, device)
    corpus, tokenizer, splits = prepare_data(config, world, emit)
    config = replace(config, vocab_size=config.vocab_size or tokenizer.vocab_size)
    elapsed_before = float(state["elapsed"]) if state else 0.0
    spent = lambda: elapsed_before + time.perf_counter() - run_start  # noqa: E731  what --time budgets

    config, sized = _shaped(config, tokenizer, splits, device, world, spent, emit)
    model, optimizers, step, history = build_model(config, tokenizer.vocab_size, device, out_dir, state)
    if world.is_main:  # before "start": Ctrl-C here leaves nothing trained to save
        emit("status", message="indexing the training split for retrieval")
        gate_inputs = retrieval_features(splits, tokenizer)
    loop = Loop(config, model, optimizers, splits, tokenizer, device, world, step, history)
    steps_per_epoch = max(1, len(splits.train) // loop.tokens_per_step)
    total_steps = config.steps or (None if config.time else math.ceil((config.epochs or 1) * steps_per_epoch))
    emit(
        "start",
        params=model.num_params(),
        device=device,
        device_reason=device_reason + (f"; {world.size} processes" if world.enabled else ""),
        total_steps=total_steps,
        time=config.time,
        train_tokens=len(splits.train),
        val_tokens=len(splits.val),
        cache_reused=splits.reused,
        vocab_size=tokenizer.vocab_size,
        step=step,
        shape={f: getattr(config, f) for f in SHAPE_FIELDS},
    )

    def final_windows() -> int:
        """The whole held-out split up to FINAL_EVAL_WINDOWS, fewer (down to FINAL_EVAL_MIN_WINDOWS) where
        reading them would take more than FINAL_EVAL_SHARE of a --time budget."""
        fits = FINAL_EVAL_SHARE * config.time / loop.seconds_per_window if config.time and loop.seconds_per_window else math.inf
        return int(min(loop.val_windows, max(FINAL_EVAL_MIN_WINDOWS, min(FINAL_EVAL_WINDOWS, fits))))

    elapsed = lambda: elapsed_before + time.perf_counter() - loop.started  # noqa: E731

    def reserve() -> float:
        """Seconds the run needs after its last step: the final evaluation, the model's log-probabilities
        for the gate (about two window-reads per window of its tokens), the fit and saving; at most
        RESERVE_SHARE of the budget."""
        windows = final_windows() + 2 * GATE_POSITIONS / config.block_size
        after = loop.seconds_per_window * windows + (gate_inputs.fit_seconds if world.is_main else 0.0) + SAVE_SECONDS
        return min(after, RESERVE_SHARE * (config.time or 0.0))

    def progress() -> float:
        if total_steps:
            return loop.step / total_steps
        return distributed.agree_max(world, spent() / max((config.time or 1.0) - reserve(), 1e-9))

    def save(val_bpb: float, final: bool = False) -> None:
        files, extra = {"loss.png": loss_png(loop.history)}, {"sizing": sized} if sized else {}
        if final:  # completions copy from the training split, weighted by a gate fitted on the validation split
            emit("status", message="fitting the retrieval gate")
            extra["retrieval"], files["index/tokens.npy"] = fit_retrieval(model, splits, gate_inputs)
        metrics = {
            "val_bpb": val_bpb,
            "step": loop.step,
            "tokens_seen": loop.step * loop.tokens_per_step,
            "wall_time_s": round(elapsed(), 1),
            "run_s": round(spent(), 1),  # from reading the corpus on: what --time budgets
            "tokens_per_second": round(loop.tokens_per_second(), 1),
        }
        description = corpus.describe() | {"tokens": {"train": len(splits.train), "val": len(splits.val)}}
        meta = checkpoint_meta(loop.config, device, device_reason, description, metrics, loop.history, made_by, extra)
        opt_state = {"optimizer": [o.state_dict() for o in optimizers], "step": loop.step, "elapsed": elapsed()}
        checkpoint.save(out_dir, model, tokenizer, meta, opt_state, files=files)
        emit("saved", path=str(out_dir), step=loop.step, val_bpb=val_bpb)

    interrupted, val_bpb = False, float("nan")
    try:
        if config.time and world.is_main:
            loop.validate(1)  # a cold first forward pass would overstate the next measurement
            loop.validate(2)  # what a window of validation costs here, for the reserve
        next_quarter = 0.25  # a held-out figure at least at each quarter, in a short run too
        while (now := progress()) < 1.0:
            record = loop.train_step(now, emit) | {"elapsed": round(elapsed(), 2)}
            quarter = now >= next_quarter
            next_quarter += 0.25 * quarter
            if (loop.step % config.eval_every == 0 or quarter) and world.is_main:
                val_bpb = loop.validate(config.eval_windows)
                record["val_bpb"] = round(val_bpb, 4)
            if loop.step % 10 == 0 or "val_bpb" in record:
                loop.history.append(record)
            emit("step", **record, progress=now, tokens_per_second=loop.tokens_per_second())
            if loop.step % steps_per_epoch == 0 and world.is_main:  # a checkpoint per epoch, and one at the end
                save(val_bpb)
    except KeyboardInterrupt:
        interrupted = True
    emit("end", step=loop.step, interrupted=interrupted, history=loop.history)
    if interrupted:
        emit("status", message="interrupted: saving")
    if world.is_main:
        windows = final_windows()
        emit("status", message=f"final evaluation on {windows} of {loop.val_windows} validation windows")
        val_bpb = loop.validate(windows, lambda done, total: emit("evaluate", done=done, total=total))
        final = {"step": loop.step, "loss": round(loop.smooth or float("nan"), 4), "elapsed": round(elapsed(), 2)}
        loop.history.append(final | {"val_bpb": round(val_bpb, 4)})
        save(val_bpb, final=True)
    distributed.barrier(world)  # nobody leaves before the checkpoint is on disk
    distributed.stop(world)
    return TrainResult(out_dir, loop.step, val_bpb, loop.tokens_per_second(), interrupted, model)


def _probe(config: TrainConfig, tokenizer, splits, device: str) -> float:
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
