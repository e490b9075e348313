"""Nothing saved is lost, and nothing loaded can run code."""

from __future__ import annotations

import errno
import pickle
import random
import shutil
import signal
import subprocess
import time

import pytest
import torch

from conftest import CLI, OUTSIDE, TINY_CLI, train_tiny
from copilot_repl import checkpoint, checkpoint_write
from copilot_repl.errors import CheckpointError
from copilot_repl.training.recipe import SCRATCH_LR


class Payload:
    """Unpickling this creates a marker file: proof that loading executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payloads_in_every_loaded_file_never_run(tiny_model, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    shutil.copytree(tiny_model, evil)
    payload = pickle.dumps(Payload(marker))
    (evil / checkpoint.OPTIMIZER).write_bytes(payload)
    with pytest.raises(CheckpointError):
        checkpoint_write.load_optimizer_state(evil)
    torch.save({"optimizer": Payload(marker)}, evil / checkpoint.OPTIMIZER)  # a payload inside a real torch file
    with pytest.raises(CheckpointError):
        checkpoint_write.load_optimizer_state(evil)
    (evil / checkpoint.WEIGHTS).write_bytes(payload)
    with pytest.raises(CheckpointError):
        checkpoint_write.load(evil)
    for name in [p.name for p in (evil / checkpoint.TOKENIZER_DIR).iterdir()]:
        (evil / checkpoint.TOKENIZER_DIR / name).write_bytes(payload)
    (evil / checkpoint.META).write_bytes(payload)
    with pytest.raises(CheckpointError):
        checkpoint_write.load(evil)
    assert not marker.exists()


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tiny_model, tmp_path, monkeypatch):
    target = tmp_path / "m"
    shutil.copytree(tiny_model, target)
    loaded = checkpoint_write.load(target)
    before = (target / checkpoint.WEIGHTS).read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device"):
        checkpoint_write.save(target, loaded.model, loaded.tokenizer, {"train": {}})
    assert (target / checkpoint.WEIGHTS).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left behind
    checkpoint_write.load(target)


def test_a_crash_between_the_two_renames_is_recovered(tiny_model, tmp_path):
    target = tmp_path / "m"
    shutil.copytree(tiny_model, target)
    target.rename(tmp_path / ".m.old")  # the moment after the old checkpoint was moved aside
    checkpoint_write.load(target)
    assert checkpoint.resolve(str(target)) == target


def test_two_trainings_into_one_name_are_refused(corpus_dir):
    with checkpoint_write.exclusive(checkpoint.paras_dir() / "busy"):
        with pytest.raises(CheckpointError, match="being trained by another process"):
            train_tiny(corpus_dir, "busy", steps=5)
    train_tiny(corpus_dir, "busy", steps=5)  # free again afterwards


def test_resume_continues_the_loss_where_it_was(corpus_dir):
    first = train_tiny(corpus_dir, "resume-loss", steps=80, eval_every=1000)
    last = checkpoint.read_meta(first.directory)["history"][-1]["loss"]
    again = train_tiny(corpus_dir, "resume-loss", steps=90, eval_every=1000, resume=True)
    resumed = [h for h in checkpoint.read_meta(again.directory)["history"] if h["step"] > 80]
    assert abs(resumed[0]["loss"] - last) < 0.3 * last  # no restart from the initial loss
    assert resumed[0]["lr"] < 0.5 * SCRATCH_LR  # the schedule continued into its cool-down, not from warm-up


def logits_of(directory):
    loaded = checkpoint_write.load(directory)
    idx = torch.arange(16).unsqueeze(0) % loaded.model.config.vocab_size
    return loaded.model(idx)[0]


def test_sigkill_at_random_moments_never_breaks_the_saved_checkpoint(corpus_dir):
    """A one-file corpus makes an epoch a few dozen steps, so checkpoints are written many times a
    second and some kills land in the middle of a write."""
    rng = random.Random(0)
    directory = checkpoint.paras_dir() / "killed"
    base = [
        *CLI,
        "train",
        "--corpus",
        str(corpus_dir / "bisect.py"),
        *TINY_CLI,
        "--tokenizer",
        "char",
        "--batch-size",
        "2",
        "--name",
        "killed",
    ]
    subprocess.run([*base, "--steps", "3"], check=True, capture_output=True, cwd=OUTSIDE)
    for _ in range(20):
        step_before, logits_before = checkpoint.read_meta(directory)["metrics"]["step"], logits_of(directory)
        proc = subprocess.Popen(
            [*base, "--steps", "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE
        )
        for line in proc.stderr:
            if line.startswith("training"):
                break
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        logits_after = logits_of(directory)  # loads: the previous checkpoint, or a complete newer one
        if checkpoint.read_meta(directory)["metrics"]["step"] == step_before:
            assert torch.equal(logits_after, logits_before)
    subprocess.run([*base, "--steps", "3"], check=True, capture_output=True, cwd=OUTSIDE)
    assert not list(directory.parent.glob(".killed.tmp-*"))  # what the kills left half-written is swept away
