"""Two CPU processes under torchrun (gloo): DistributedDataParallel end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import OUTSIDE, TINY_CLI, run_cli
from copilot_repl import checkpoint, checkpoint_write


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=OUTSIDE)


def test_two_ranks_stay_in_sync_and_rank0_saves(corpus_dir, tmp_path):
    r = torchrun(str(Path(__file__).parent / "ddp_worker.py"), str(corpus_dir), str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [load_file(tmp_path / f"rank{i}.safetensors") for i in (0, 1)]  # both ranks ran to the end
    loaded = checkpoint_write.load(checkpoint.paras_dir() / "ddp")
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, ranks[1][name]), name  # the saved weights are what rank 1 holds
        assert torch.equal(ranks[0][name], ranks[1][name])
    history = checkpoint.read_meta(loaded.directory)["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    meta = checkpoint.read_meta(loaded.directory)
    assert meta["metrics"]["tokens_seen"] == 30 * 8 * 32 * 2 * 2  # steps x batch x block x accumulation x ranks


def test_the_cli_under_torchrun_writes_an_ordinary_checkpoint(corpus_dir):
    args = [*TINY_CLI, "--tokenizer", "char", "--steps", "12", "--batch-size", "8", "--name", "ddpcli"]
    r = torchrun("-m", "copilot_repl", "train", "--corpus", str(corpus_dir), *args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("saved") >= 1 and "2 processes" in r.stderr
    once = run_cli("--once", "def f(", "--model", "ddpcli", "--max-tokens", "5")
    assert once.returncode == 0, once.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_bf16_and_compile(corpus_dir):
    tiny = "--tokenizer char --steps 20 --layers 1 --dim 64 --heads 2 --block-size 64 --name cuda --device cuda --compile"
    r = run_cli("train", "--corpus", str(corpus_dir), *tiny.split(), "--json")
    assert r.returncode == 0, r.stderr
    meta = checkpoint.read_meta(checkpoint.paras_dir() / "cuda")
    assert meta["train"]["device"].startswith("cuda")
    assert not any(k.startswith("_orig_mod") for k in load_file(checkpoint.paras_dir() / "cuda" / "model.safetensors"))
