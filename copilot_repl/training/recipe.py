"""What a training run is asked to do: the config with the measured recipe as its defaults, the
learning-rate schedule, and the optimizers. Importing it needs no torch, so `train --help` is quick."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from copilot_repl.config import GPTConfig
from copilot_repl.errors import UsageError
from copilot_repl.training import sizing

if TYPE_CHECKING:
    import torch

    from copilot_repl.model import GPT

SCRATCH_LR = 1e-2  # peak AdamW and Muon rates: measured best of 3e-3, 6e-3 and 1e-2 at 3 minutes (README)
FINE_TUNE_LR = 1e-3  # from a trained model: the best of 3e-4 to 1e-2 that forgets at most 5% (docs/benchmarks.md)
WARMUP_SHARE = 0.05  # of a run: the warm-up never takes longer
SHAPE_FIELDS = ("layers", "heads", "dim", "batch_size")
OPTIMIZERS = ("adamw", "muon")


@dataclass
class TrainConfig:
    corpus: list[str] = field(default_factory=lambda: ["stdlib"])
    tokenizer: str | None = None  # None: "bpe", or the base's when fine-tuning (and so for the three below)
    vocab_size: int | None = None  # None: the plugin's default (char: every character seen)
    epochs: float | None = None
    steps: int | None = None
    time: float | None = None  # seconds for the whole run; the LR schedule follows elapsed time then
    device: str = "auto"
    batch_size: int | None = None  # None for these four: sized to --time by sizing.py, else sizing.DEFAULT
    block_size: int | None = None  # None: 256
    layers: int | None = None
    heads: int | None = None
    dim: int | None = None
    lr: float | None = None  # None: SCRATCH_LR, or FINE_TUNE_LR from a base
    warmup: int = 100  # steps
    cooldown: float = 0.4  # final fraction of the run over which the LR decays linearly
    weight_decay: float = 0.1
    optimizer: str = "muon"  # 7% lower bits/byte than AdamW alone at 3 minutes, 3 seeds each (README)
    muon_lr: float | None = None  # None: as lr's (not --lr's)
    grad_accum: int = 1  # micro-batches per optimizer step; gradients are all-reduced once per step
    fim_rate: float = 0.5  # share of windows rearranged for fill-in-the-middle; costs 0.7% left-to-right
    eval_every: int = 200  # steps
    eval_windows: int = 64  # context windows per periodic validation; the final one reads up to FINAL_EVAL_WINDOWS
    seed: int = 1337
    name: str = "model"
    paras: str | None = None
    resume: bool = False
    init_from: str | None = None  # a model (NAME, folder, or default) to start from instead of random weights
    compile: bool = False  # fwd+bwd +20% on a CPU, but a whole step with Muon measured no faster: opt-in

    def check(self) -> None:
        for flag in ("block_size", *SHAPE_FIELDS):
            if getattr(self, flag) is not None and getattr(self, flag) < 1:
                raise UsageError(f"--{flag.replace('_', '-')} must be at least 1")
        if self.dim and self.heads and (self.dim % self.heads or (self.dim // self.heads) % 2):
            raise UsageError(f"--dim {self.dim} must split into --heads {self.heads} heads of even width")
        if any(lr is not None and not lr > 0 for lr in (self.lr, self.muon_lr)):
            raise UsageError("--lr and --muon-lr must be positive")
        if self.resume and self.init_from:
            raise UsageError("--resume goes on with paras/NAME's own weights; --init-from starts a new model: give one")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.fim_rate <= 1:
            raise UsageError("--fim-rate must be between 0 and 1")
        if sum(x is not None for x in (self.epochs, self.steps, self.time)) > 1:
            raise UsageError("give only one of --epochs, --steps, --time")

    def filled(self, fine_tuning: bool = False) -> TrainConfig:
        """A copy with the tokenizer, context and learning rates the user left open taken from the
        recipe (a fine-tuning run has its base's tokenizer and context already, and a lower rate)."""
        lr = FINE_TUNE_LR if fine_tuning else SCRATCH_LR
        tokenizer, block_size = self.tokenizer or "bpe", self.block_size or 256
        return replace(self, tokenizer=tokenizer, block_size=block_size, lr=self.lr or lr, muon_lr=self.muon_lr or lr)

    def sized(self, shape: sizing.Shape) -> TrainConfig:
        """A copy with every shape field the user left open taken from `shape`."""
        return replace(self, **{f: getattr(shape, f) if getattr(self, f) is None else getattr(self, f) for f in SHAPE_FIELDS})

    def model_config(self, vocab_size: int) -> GPTConfig:
        assert self.layers and self.heads and self.dim and self.block_size, "fill and size the config first"
        return GPTConfig(
            vocab_size=vocab_size, block_size=self.block_size, n_layer=self.layers, n_head=self.heads, n_embd=self.dim
        )


def lr_at(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, a flat middle, then linear decay over the last `cooldown` of the run.
    `progress` may come from steps or from elapsed time, so a time budget gets a full schedule. The
    warm-up ends after `warmup` steps or `WARMUP_SHARE` of the run, whichever comes first, so a short
    run (30 s here is 15 steps) still reaches its learning rate."""
    assert config.lr, "fill the config first"
    warm = min(1.0, max((step + 1) / config.warmup, progress / WARMUP_SHARE))
    decay = min(1.0, max(0.05, (1.0 - progress) / config.cooldown))
    return config.lr * warm * decay


def make_optimizers(model: GPT, config: TrainConfig, device: str) -> list[torch.optim.Optimizer]:
    """AdamW for everything, or Muon (torch.optim.Muon) for the block matrices and AdamW for the
    embedding, which Muon's orthogonalisation does not suit. Each group remembers its peak LR."""
    import torch

    assert config.lr and config.muon_lr, "fill the config first"
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
