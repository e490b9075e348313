"""The training loop. It knows nothing of terminals: progress goes to callbacks, as plain dicts."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from copilot_repl import checkpoint, data, distributed
from copilot_repl.devices import resolve_device
from copilot_repl.errors import CheckpointError, CorpusError, UsageError
from copilot_repl.evaluate import mean_loss
from copilot_repl.model import GPT, GPTConfig
from copilot_repl.plot import loss_png
from copilot_repl.scoring import bits_per_byte
from copilot_repl.tokenizer import tokenizer_class

WARMUP_SHARE = 0.05  # of a run: the warm-up never takes longer


@dataclass
class TrainConfig:
    corpus: list[str] = field(default_factory=lambda: ["stdlib"])
    tokenizer: str = "bpe"
    vocab_size: int | None = None  # None: the plugin's default (char: every character seen)
    epochs: float | None = None
    steps: int | None = None
    time: float | None = None  # seconds of training; the LR schedule follows elapsed time then
    device: str = "auto"
    batch_size: int = 16
    block_size: int = 256
    layers: int = 4
    heads: int = 4
    dim: int = 128
    lr: float = 1e-2  # measured best of 3e-3, 6e-3 and 1e-2 at a 3-minute budget (README)
    warmup: int = 100  # steps
    cooldown: float = 0.4  # final fraction of the run over which the LR decays linearly
    weight_decay: float = 0.1
    optimizer: str = "muon"  # 7% lower bits/byte than AdamW alone at 3 minutes, 3 seeds each (README)
    muon_lr: float = 0.01  # measured best of 0.005, 0.01, 0.02, 0.05
    grad_accum: int = 1  # micro-batches per optimizer step; gradients are all-reduced once per step
    fim_rate: float = 0.5  # share of windows rearranged for fill-in-the-middle; costs 0.7% left-to-right
    eval_every: int = 200  # steps
    eval_windows: int = 64  # context windows per periodic validation; the final one reads up to FINAL_EVAL_WINDOWS
    seed: int = 1337
    name: str = "model"
    paras: str | None = None
    resume: bool = False
    compile: bool = False  # fwd+bwd +20% on a CPU, but a whole step with Muon measured no faster: opt-in

    def check(self) -> None:
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise UsageError(f"--dim {self.dim} must split into --heads {self.heads} heads of even width")
        for flag in ("batch_size", "block_size", "layers", "heads", "dim"):
            if getattr(self, flag) < 1:
                raise UsageError(f"--{flag.replace('_', '-')} must be at least 1")
        if not (self.lr > 0 and self.muon_lr > 0):
            raise UsageError("--lr and --muon-lr must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.fim_rate <= 1:
            raise UsageError("--fim-rate must be between 0 and 1")
        if sum(x is not None for x in (self.epochs, self.steps, self.time)) > 1:
            raise UsageError("give only one of --epochs, --steps, --time")


@dataclass
class TrainResult:
    directory: Path
    step: int
    val_bpb: float
    tokens_per_second: float
    interrupted: bool
    model: GPT  # this rank's weights (under torchrun they are in sync on every rank)


Callback = Callable[[str, dict], None]


def lr_at(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, a flat middle, then linear decay over the last `cooldown` of the run.
    `progress` may come from steps or from elapsed time, so a time budget gets a full schedule. The
    warm-up ends after `warmup` steps or `WARMUP_SHARE` of the run, whichever comes first, so a short
    run (30 s here is 15 steps) still reaches its learning rate."""
    warm = min(1.0, max((step + 1) / config.warmup, progress / WARMUP_SHARE))
    decay = min(1.0, max(0.05, (1.0 - progress) / config.cooldown))
    return config.lr * warm * decay


OPTIMIZERS = ("adamw", "muon")


def _optimizers(model: GPT, config: TrainConfig, device: str) -> list[torch.optim.Optimizer]:
    """AdamW for everything, or Muon (torch.optim.Muon) for the block matrices and AdamW for the
    embedding, which Muon's orthogonalisation does not suit. Each group remembers its peak LR."""
    hidden = [p for p in model.blocks.parameters() if p.dim() == 2] if config.optimizer == "muon" else []
    taken = {id(p) for p in hidden}
    decay = [p for p in model.parameters() if p.dim() >= 2 and id(p) not in taken]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "peak_lr": config.lr},
        {"params": rest, "weight_decay": 0.0, "peak_lr": config.lr},
    ]
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=device.startswith("cuda"))
    ]
    if hidden:
        muon = torch.optim.Muon(hidden, lr=config.muon_lr, weight_decay=config.weight_decay)
        muon.param_groups[0]["peak_lr"] = config.muon_lr
        optimizers.append(muon)
    return optimizers


GATE_POSITIONS = 16384  # validation tokens the retrieval gate is fitted on (a few seconds)
FINAL_EVAL_WINDOWS = 512  # the final validation reads at most this many windows (all of stdlib's held-out split)
FINISH_SECONDS = 2.0  # fitting the gate's four numbers and saving, beyond reading windows


def retrieval_features(splits: data.TokenSplits, tokenizer):
    """What the two predictors offer at each fitting position of the validation split. It does not
    depend on the model, so it is computed before training and counted in a --time budget."""
    from copilot_repl.retrieval import CorpusIndex
    from copilot_repl.scoring import Features

    val = np.concatenate([[tokenizer.eot_id], np.asarray(splits.val[:GATE_POSITIONS], dtype=np.int64)])
    index = CorpusIndex.build(np.asarray(splits.train), tokenizer.vocab_size)
    return val, Features.compute(val, np.arange(1, len(val)), index, tokenizer.eot_id)


def fit_retrieval(model: GPT, splits: data.TokenSplits, val: np.ndarray, features) -> tuple[dict, bytes]:
    """The gate fitted to the trained model (for checkpoint.json) and the training tokens to index."""
    import io

    from copilot_repl.runtime_numpy import NumpyGPT
    from copilot_repl.scoring import fit_gate, mixed_logprobs, model_logprobs

    runtime = NumpyGPT(model.config, {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()})
    model_lp = model_logprobs(runtime, val)
    gate = fit_gate(model_lp, features, steps=150)
    scale = splits.val_bytes * (len(val) - 1) / max(len(splits.val), 1)  # bytes behind the fitted tokens, roughly
    gate.fitted_on = {
        "split": "val",
        "positions": len(val) - 1,
        "bits_per_byte_model": round(bits_per_byte(model_lp.sum(), scale), 4),
        "bits_per_byte_mixed": round(bits_per_byte(mixed_logprobs(model_lp, features, gate).sum(), scale), 4),
    }
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(splits.train))
    return gate.to_dict(), buffer.getvalue()


def train(config: TrainConfig, callbacks: Sequence[Callback] = (), started: float | None = None) -> TrainResult:
    """Train (or resume) a model and save it under paras/NAME; Ctrl-C saves before returning.
    Under torchrun every rank trains on its own batches; only rank 0 reports, evaluates and saves.
    `started` (a `time.perf_counter()` reading) is when the user's command began: --time counts from it."""
    world = distributed.world_from_env()
    out_dir = checkpoint.paras_dir(config.paras) / config.name
    with checkpoint.exclusive(out_dir) if world.is_main else contextlib.nullcontext():
        return _train(config, callbacks, world, out_dir, started if started is not None else time.perf_counter())


def _train(config: TrainConfig, callbacks: Sequence[Callback], world: distributed.World, out_dir: Path, run_start: float):
    """--time budgets the whole run, from `run_start` (the command's start) to the saved checkpoint."""
    emit = lambda event, **info: [cb(event, info) for cb in callbacks if world.is_main]  # noqa: E731
    state = None
    if config.resume:
        if not (out_dir / checkpoint.META).is_file():
            raise CheckpointError(f"nothing to resume: {out_dir} is not a checkpoint")
        state = checkpoint.load_optimizer_state(out_dir)
        if state is None:
            raise CheckpointError(f"{out_dir} has no optimizer state to resume from")
        saved = checkpoint.read_meta(out_dir)["train"]
        for key in ("corpus", "tokenizer", "vocab_size", "batch_size", "block_size", "layers", "heads", "dim", "optimizer"):
            setattr(config, key, saved.get(key, getattr(config, key)))
    config.check()
    device, device_reason = resolve_device(config.device)
    device = distributed.start(world, device)
    torch.manual_seed(config.seed)  # the same initial weights on every rank

    emit("status", message=f"reading corpus {' '.join(config.corpus)}")
    if not world.is_main:  # rank 0 trains the tokenizer and fills the token cache; the rest reuse them
        distributed.barrier(world)
    corpus = data.gather(config.corpus)
    emit("status", message=f"tokenizer {config.tokenizer}")
    tokenizer, tok_dir = data.cached_tokenizer(corpus, tokenizer_class(config.tokenizer), config.vocab_size)
    config.vocab_size = config.vocab_size or tokenizer.vocab_size
    splits = data.token_cache(corpus, tokenizer, tokenizer.fingerprint(tok_dir))
    if world.is_main:
        distributed.barrier(world)
    if len(splits.train) < config.block_size + 2:
        raise CorpusError(f"corpus too small: {len(splits.train)} training tokens for --block-size {config.block_size}")

    model_config = GPTConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=config.block_size,
        n_layer=config.layers,
        n_head=config.heads,
        n_embd=config.dim,
    )
    model = checkpoint.load(out_dir).model if config.resume else GPT(model_config)
    model.to(device).train()
    cuda = device.startswith("cuda")
    optimizers = _optimizers(model, config, device)
    step, elapsed_before, history = 0, 0.0, []
    if state is not None:
        saved_states = state["optimizer"] if isinstance(state["optimizer"], list) else [state["optimizer"]]
        for optimizer, saved_state in zip(optimizers, saved_states):
            optimizer.load_state_dict(saved_state)
        step, elapsed_before = int(state["step"]), float(state["elapsed"])
        history = checkpoint.read_meta(out_dir).get("history", [])
    eager_model: Any = DistributedDataParallel(model, device_ids=[world.local_rank] if cuda else None) if world.enabled else model
    step_model: Callable = torch.compile(eager_model) if config.compile else eager_model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    tokens_per_step = config.batch_size * config.block_size * config.grad_accum * world.size
    steps_per_epoch = max(1, len(splits.train) // tokens_per_step)
    total_steps = config.steps or (None if config.time else math.ceil((config.epochs or 1) * steps_per_epoch))
    rng = np.random.default_rng([config.seed, step, world.rank])  # different batches on every rank
    if world.is_main:  # before "start": Ctrl-C here leaves nothing trained to save
        emit("status", message="indexing the training split for retrieval")
        gate_inputs = retrieval_features(splits, tokenizer)
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
    )

    val_windows = max(1, (len(splits.val) - 1) // config.block_size)
    final_windows = min(val_windows, FINAL_EVAL_WINDOWS)
    timing = {"per_window": 0.0}

    def validate(windows: int) -> float:
        began = time.perf_counter()
        loss, _ = mean_loss(model, splits.val, config.batch_size, windows)
        timing["per_window"] = (time.perf_counter() - began) / min(windows, val_windows)
        return bits_per_byte(-loss * len(splits.val), splits.val_bytes)

    def reserve() -> float:
        """Seconds the run needs after its last step: the final evaluation, the model's log-probabilities
        for the gate (about two window-reads per window of its tokens), the fit and saving; at most a
        quarter of the budget."""
        windows = final_windows + 2 * GATE_POSITIONS / config.block_size
        return min(timing["per_window"] * windows + FINISH_SECONDS, 0.25 * (config.time or 0.0))

    def save(val_bpb: float, final: bool = False) -> None:
        files = {"loss.png": loss_png(history)}
        retrieval: dict = {}
        if final:  # completions copy from the training split, weighted by a gate fitted on the validation split
            emit("status", message="fitting the retrieval gate")
            retrieval, files["index/tokens.npy"] = fit_retrieval(model, splits, *gate_inputs)
        meta = {
            "train": asdict(config) | {"device": device},
            "corpus": corpus.describe() | {"tokens": {"train": len(splits.train), "val": len(splits.val)}},
            "metrics": {
                "val_bpb": val_bpb,
                "step": step,
                "tokens_seen": step * tokens_per_step,
                "wall_time_s": round(elapsed(), 1),
                "run_s": round(spent(), 1),  # from reading the corpus on: what --time budgets
                "tokens_per_second": round(tps(), 1),
            },
            "made_by": {"command": " ".join(["copilot-repl", *sys.argv[1:]]), "device": device, "device_reason": device_reason},
            "history": history,
        }
        if retrieval:
            meta["retrieval"] = retrieval
        opt_state = {"optimizer": [o.state_dict() for o in optimizers], "step": step, "elapsed": elapsed()}
        checkpoint.save(out_dir, model, tokenizer, meta, opt_state, files=files)
        emit("saved", path=str(out_dir), step=step, val_bpb=val_bpb)

    start, start_step = time.perf_counter(), step
    elapsed = lambda: elapsed_before + time.perf_counter() - start  # noqa: E731
    tps = lambda: (step - start_step) * tokens_per_step / max(time.perf_counter() - start, 1e-9)  # noqa: E731
    interrupted, smooth, val_bpb = False, None, float("nan")

    def compile_or_fall_back() -> float:
        """The first step compiles; if torch.compile fails here, say why in one line and go on without it."""
        nonlocal step_model
        emit("status", message="compiling the training step (torch.compile: 20-40 s the first time, cached after)")
        try:
            return gradients()
        except Exception as e:  # the compiler's failures have many types; the eager step below is the real test
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            emit("status", message=f"torch.compile failed ({reason}); training without it")
            step_model, config.compile = eager_model, False
            model.zero_grad(set_to_none=True)
            return gradients()

    def micro_step(last: bool) -> float:
        arrays = data.batch(splits.train, config.batch_size, config.block_size, rng, tokenizer, config.fim_rate)
        x, y = (torch.from_numpy(a).pin_memory().to(device, non_blocking=True) if cuda else torch.from_numpy(a) for a in arrays)
        sync = contextlib.nullcontext() if last or not world.enabled else eager_model.no_sync()
        with sync:
            with autocast:
                _, loss = step_model(x, y)
            (loss / config.grad_accum).backward()
        return loss.item()

    def gradients() -> float:
        """Accumulate one optimizer step's gradients; the mean loss of its micro-batches."""
        return sum(micro_step(i == config.grad_accum - 1) for i in range(config.grad_accum)) / config.grad_accum

    spent = lambda: elapsed_before + time.perf_counter() - run_start  # noqa: E731
    try:
        if config.time and world.is_main:
            validate(2)  # what a window of validation costs here, for the reserve
        while True:
            budget = max((config.time or 1.0) - reserve(), 1e-9)
            progress = step / total_steps if total_steps else distributed.agree_max(world, spent() / budget)
            if progress >= 1.0:
                break
            lr = lr_at(config, step, progress)
            for optimizer in optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = group["peak_lr"] * lr / config.lr
            loss_value = compile_or_fall_back() if config.compile and step == start_step else gradients()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for optimizer in optimizers:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step += 1
            smooth = loss_value if smooth is None else 0.9 * smooth + 0.1 * loss_value
            record = {"step": step, "loss": round(smooth, 4), "lr": lr, "elapsed": round(elapsed(), 2)}
            if step % config.eval_every == 0 and world.is_main:
                val_bpb = validate(config.eval_windows)
                record["val_bpb"] = round(val_bpb, 4)
            if step % 10 == 0 or "val_bpb" in record:
                history.append(record)
            emit("step", **record, progress=progress, tokens_per_second=tps())
            if step % steps_per_epoch == 0 and world.is_main:  # a checkpoint per epoch, and one at the end
                save(val_bpb)
    except KeyboardInterrupt:
        interrupted = True
    emit("end", step=step, interrupted=interrupted, history=history)
    if interrupted:
        emit("status", message="interrupted: saving")
    if world.is_main:
        emit("status", message=f"final evaluation on {final_windows} of {val_windows} validation windows")
        val_bpb = validate(final_windows)
        final = {"step": step, "loss": round(smooth or float("nan"), 4), "elapsed": round(elapsed(), 2)}
        history.append(final | {"val_bpb": round(val_bpb, 4)})
        save(val_bpb, final=True)
    distributed.barrier(world)  # nobody leaves before the checkpoint is on disk
    distributed.stop(world)
    return TrainResult(out_dir, step, val_bpb, tps(), interrupted, model)
