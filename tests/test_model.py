from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from conftest import TINY, train_tiny
from copilot_repl import checkpoint, checkpoint_write
from copilot_repl.errors import CheckpointError
from copilot_repl.model import GPT, GPTConfig, KVCache
from copilot_repl.training.train import TrainConfig, train


def small_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=32))
    for p in model.parameters():  # leave the zero-initialised projections non-trivial
        torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def test_kv_cache_matches_full_forward():
    model = small_model()
    idx = torch.randint(0, 97, (2, 20))
    full, _ = model(idx)
    cache = KVCache(model.config, 2, "cpu", torch.float32, room=4)
    prefix, _ = model(idx[:, :12], cache=cache)  # more than its room: grows to fit
    steps = [model(idx[:, t : t + 1], cache=cache)[0] for t in range(12, 16)]  # doubles once
    chunk, _ = model(idx[:, 16:], cache=cache)  # several tokens after a cached prefix
    assert cache.room == 24 and cache.length == 20
    incremental = torch.cat([prefix, *steps, chunk], dim=1)
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=1e-4)


def test_attention_is_causal():
    model = small_model()
    a = torch.randint(0, 97, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 97
    torch.testing.assert_close(model(a)[0][:, :10], model(b)[0][:, :10])


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_short_training_lowers_the_loss(corpus_dir, optimizer):
    result = train_tiny(corpus_dir, f"lowers-{optimizer}", steps=60, optimizer=optimizer)
    meta = checkpoint.read_meta(result.directory)
    losses = [h["loss"] for h in meta["history"]]
    assert losses[-1] < losses[0] - 0.5
    assert meta["metrics"]["val_bpb"] < 6.0


def test_save_load_reproduces_logits_exactly(tiny_model, tmp_path):
    loaded = checkpoint_write.load(tiny_model)
    idx = torch.randint(0, loaded.model.config.vocab_size, (1, 30))
    checkpoint_write.save(tmp_path / "copy", loaded.model, loaded.tokenizer, {"train": {}})
    again = checkpoint_write.load(tmp_path / "copy")
    assert torch.equal(loaded.model(idx)[0], again.model(idx)[0])
    assert again.tokenizer.encode("def f(x):") == loaded.tokenizer.encode("def f(x):")


def test_saving_over_a_checkpoint_replaces_it_whole(tiny_model, tmp_path):
    loaded = checkpoint_write.load(tiny_model)
    target = tmp_path / "m"
    checkpoint_write.save(target, loaded.model, loaded.tokenizer, {"train": {}, "metrics": {"val_bpb": 1}})
    checkpoint_write.save(target, loaded.model, loaded.tokenizer, {"train": {}, "metrics": {"val_bpb": 2}})
    assert checkpoint.read_meta(target)["metrics"]["val_bpb"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp or old folders left


def test_resume_continues_step_count_and_optimizer(corpus_dir):
    first = train_tiny(corpus_dir, "resumable", steps=20, optimizer="muon")
    assert first.step == 20
    again = train_tiny(corpus_dir, "resumable", steps=30, resume=True)  # the saved optimizer choice is kept
    assert again.step == 30 and checkpoint.read_meta(again.directory)["train"]["optimizer"] == "muon"
    state = checkpoint_write.load_optimizer_state(again.directory)
    assert len(state["optimizer"]) == 2 and state["optimizer"][1]["state"]  # AdamW and Muon, both with momentum
    meta = checkpoint.read_meta(again.directory)
    steps = [h["step"] for h in meta["history"]]
    assert steps == sorted(steps) and 10 in steps and steps[-1] == 30  # one history, carried across the resume


@pytest.mark.parametrize("damage", ["no_meta", "bad_json", "future", "truncated", "shape", "plugin"])
def test_damaged_checkpoints_are_refused_clearly(tiny_model, tmp_path, damage):
    import shutil

    target = tmp_path / "broken"
    shutil.copytree(tiny_model, target)
    meta_path = target / checkpoint.META
    meta = json.loads(meta_path.read_text())
    if damage == "no_meta":
        meta_path.unlink()
    elif damage == "bad_json":
        meta_path.write_text("{not json")
    elif damage == "future":
        meta_path.write_text(json.dumps({**meta, "format": 99}))
    elif damage == "truncated":
        weights = target / checkpoint.WEIGHTS
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "shape":
        meta_path.write_text(json.dumps({**meta, "model": {**meta["model"], "n_embd": 64}}))
    elif damage == "plugin":
        meta_path.write_text(json.dumps({**meta, "tokenizer": {**meta["tokenizer"], "name": "not-installed"}}))
    with pytest.raises(CheckpointError):
        checkpoint_write.load(target)


def test_a_failing_compile_says_why_and_trains_without_it(corpus_dir, monkeypatch):
    def broken_compile(module, **kwargs):
        def step(*args, **kwargs):
            raise RuntimeError("InductorError: no working C++ compiler\n(a long traceback)")

        return step

    monkeypatch.setattr(torch, "compile", broken_compile)
    messages = []
    config = TrainConfig(corpus=[str(corpus_dir)], tokenizer="char", name="fallback", steps=5, compile=True, **TINY)
    result = train(config, [lambda event, info: messages.append(info.get("message"))])
    assert result.step == 5 and math.isfinite(result.val_bpb)
    assert "torch.compile failed (InductorError: no working C++ compiler); training without it" in messages
    assert checkpoint.read_meta(result.directory)["train"]["compile"] is False


@pytest.mark.skipif(not shutil.which("g++"), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_training_step_trains_and_saves_plain_weights(corpus_dir):
    result = train_tiny(corpus_dir, "compiled", steps=20, compile=True)
    meta = checkpoint.read_meta(result.directory)
    assert meta["train"]["compile"] is True
    losses = [h["loss"] for h in meta["history"]]
    assert losses[-1] < losses[0]
    assert checkpoint_write.load(result.directory).model.num_params() == result.model.num_params()


def test_a_short_run_reaches_its_learning_rate():
    from copilot_repl.training.recipe import TrainConfig, lr_at

    config = TrainConfig(warmup=100).filled()
    assert lr_at(config, 0, 0.0) < config.lr / 50  # a long run warms up over its first 100 steps
    assert lr_at(config, 2, 0.06) == config.lr  # a 15-step run is warm after 5% of it
    assert lr_at(config, 99, 0.01) == config.lr


def test_a_model_built_for_its_checkpoints_weights_imports_no_sympy():
    """On the meta device, arange and init.normal_ run Python kernels that import sympy: 82 MB held by
    every int8 completion of a large model. In a fresh process, as `--once` builds it."""
    import subprocess
    import sys

    code = (
        "import sys; from copilot_repl.model import GPT; from copilot_repl.config import GPTConfig; "
        "GPT.without_weights(GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=32)); "
        "assert 'sympy' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
