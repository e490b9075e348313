"""Several processes, one model: DistributedDataParallel when launched by torchrun.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them everything here is a no-op, so the
single-process path stays the plain one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]))


def start(world: World, device: str) -> str:
    """Join the process group (nccl on CUDA, gloo otherwise); the device this rank uses."""
    if not world.enabled:
        return device
    if device == "cuda":
        torch.cuda.set_device(world.local_rank)
        device = f"cuda:{world.local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return device


def barrier(world: World) -> None:
    if world.enabled:
        dist.barrier()


def agree_max(world: World, value: float) -> float:
    """The largest of every rank's value, so that all ranks take the same decision (when to stop)."""
    if not world.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor)


def stop(world: World) -> None:
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()
