"""Run by torchrun in test_distributed.py: train briefly, then record what this rank holds."""

import sys
from pathlib import Path

from safetensors.torch import save_file

from copilot_repl.training.distributed import world_from_env
from copilot_repl.training.train import TrainConfig, train

corpus, out = sys.argv[1], Path(sys.argv[2])
config = TrainConfig(
    corpus=[corpus],
    tokenizer="char",
    steps=30,
    layers=1,
    heads=2,
    dim=32,
    block_size=32,
    batch_size=8,
    eval_every=10,
    eval_windows=4,
    warmup=5,
    grad_accum=2,
    device="cpu",
    name="ddp",
)
result = train(config)
rank = world_from_env().rank
save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, out / f"rank{rank}.safetensors")
