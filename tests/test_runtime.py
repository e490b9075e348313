"""The numpy runtime against the torch model (the two copies of the model's math), and the promise
that completing on a CPU never imports torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pexpect
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, spawn_repl
from copilot_repl import checkpoint, checkpoint_write
from copilot_repl.completion.generate import Engine, Request
from copilot_repl.completion.retrieval import MAX_MATCH, CorpusIndex, suffix_array
from copilot_repl.completion.runtime_numpy import NumpyGPT
from copilot_repl.completion.runtime_torch import TorchRuntime
from copilot_repl.completion.settings import Sampling
from copilot_repl.model import GPT, GPTConfig

NO_TORCH = {"PYTHONPATH": str(Path(__file__).parent / "no_torch")}


def random_model() -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=300, block_size=64, n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():  # the residual projections start at zero; make every weight matter
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model.eval()


def shipped_model() -> GPT:
    return checkpoint_write.load(checkpoint.shipped_default()).model


@pytest.mark.parametrize("make", [random_model, shipped_model], ids=["random", "shipped"])
def test_numpy_and_torch_give_the_same_logits_and_greedy_tokens(make):
    model = make()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    numpy_rt, torch_rt = NumpyGPT(model.config, weights), TorchRuntime(model)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, model.config.vocab_size, size=(2, 40))
    with torch.no_grad():
        expected = model(torch.from_numpy(ids))[0].numpy()
    assert np.abs(numpy_rt.logits(ids) - expected).max() < 1e-4
    assert np.abs(torch_rt.logits(ids) - expected).max() < 1e-4  # what training fits the gate with
    assert np.abs(numpy_rt.prefill(ids[:, :30]) - torch_rt.prefill(ids[:, :30])).max() < 1e-4
    for t in range(30, 40):
        assert np.abs(numpy_rt.step(ids[:, t]) - torch_rt.step(ids[:, t])).max() < 1e-4
    # greedy tokens through the whole runner, past the window's end
    from copilot_repl.tokenizer import tokenizer_class

    tokenizer = checkpoint.open_checkpoint(checkpoint.shipped_default()).tokenizer if make is shipped_model else None
    if tokenizer is None:
        tokenizer = tokenizer_class("bpe").train(["def f(x):\n    return x + 1\n" * 50], 300)
    sampling = Sampling(temperature=0, max_tokens=80, stop_mode="none", repeat_penalty=1.0)
    texts = [
        Engine(rt, tokenizer).complete(Request("def fib(n):", sampling=sampling)).finish().candidates[0]
        for rt in (NumpyGPT(model.config, weights), TorchRuntime(model))
    ]
    assert texts[0].text == texts[1].text and texts[0].tokens == texts[1].tokens


def test_once_never_imports_torch(tiny_model):
    blocked = run_cli("train", "--corpus", "stdlib", "--steps", "1", env=NO_TORCH)
    assert blocked.returncode != 0  # the block works: training does need torch
    r = run_cli("--once", "def f(x):", "--model", str(tiny_model), "--max-tokens", "8", env=NO_TORCH)
    assert r.returncode == 0, r.stderr
    r = run_cli("--once", "def fib(n):", "--max-tokens", "8", "--json", env=NO_TORCH)  # the shipped model and its index
    assert r.returncode == 0 and json.loads(r.stdout)["tokens"] > 0, r.stderr


@pytest.mark.parametrize("command", ["train", "eval", "serve", "show", "models", "tokenizers"])
def test_help_of_every_command_never_imports_torch(command):
    r = run_cli(command, "--help", env=NO_TORCH)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr


def test_the_repl_draws_its_prompt_and_completes_without_torch(tmp_path):
    child = spawn_repl("--no-history", env={**NO_TORCH, "XDG_STATE_HOME": str(tmp_path)}, dimensions=(40, 160))
    child.expect(">>> ")
    child.send("def add(a, b):\r")
    child.expect(r"\[\d+ tokens, \d+ tok/s, [a-z ]+, confidence [0-9.]+[^\]]*\]")
    child.expect(">>> ")
    child.send(":quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 70), min_size=1, max_size=60))
def test_the_suffix_array_sorts_every_suffix_by_its_first_tokens(tokens):
    stream = np.asarray(tokens, dtype=np.uint32)
    order = suffix_array(stream, depth=MAX_MATCH)
    keys = [tuple(tokens[i : i + MAX_MATCH]) for i in order]
    assert keys == sorted(keys) and sorted(order.tolist()) == list(range(len(tokens)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=2, max_size=80), st.integers(1, 6))
def test_the_index_finds_the_longest_match_and_its_followers(tokens, tail):
    """Against a brute-force search: the longest suffix of the query seen in the stream, and what followed."""
    index = CorpusIndex.build(np.asarray(tokens, dtype=np.uint16), 10)
    query = tokens[-tail:]
    found = index.match(query)
    best = 0
    for n in range(1, min(len(query), MAX_MATCH) + 1):
        if any(tokens[i : i + n] == query[-n:] for i in range(len(tokens) - n + 1)):
            best = n
    followers = sorted({tokens[i + best] for i in range(len(tokens) - best) if tokens[i : i + best] == query[-best:]})
    if not followers:  # the only occurrences end the stream: nothing follows them
        assert found is None or found.length <= best
        return
    assert found is not None and found.length == best and found.ids.tolist() == followers


def test_a_large_model_completes_on_a_cpu_through_torch_with_int8_weights(tiny_model, monkeypatch):
    """The choice by size (and numpy where torch is missing), and the int8 runtime through the real
    engine: the tiny model made to count as large."""
    from copilot_repl.completion import engine

    assert engine.cpu_runtime(1_300_000) == "numpy"  # the shipped model's size: no torch to import
    assert engine.cpu_runtime(engine.TORCH_CPU_FROM_PARAMS) == "torch int8"
    with monkeypatch.context() as patched:
        patched.setattr(engine.importlib.util, "find_spec", lambda name: None)
        assert engine.cpu_runtime(10**9) == "numpy"
    monkeypatch.setattr(engine, "TORCH_CPU_FROM_PARAMS", 0)
    loaded, opened = engine.load_engine(tiny_model)
    assert loaded.runtime.name == "torch int8"
    threads = torch.get_num_threads()
    stream = loaded.complete(Request("def f(x):", sampling=Sampling(max_tokens=8, temperature=0, stop_mode="none")))
    assert stream.finish().tokens > 0
    assert torch.get_num_threads() == threads  # a step runs on the threads it chose and puts torch's setting back


@pytest.mark.parametrize(("cores", "load", "threads"), [(2, 0.1, 2), (2, 1.2, 1), (2, 3.0, 1), (16, 0.0, 4), (8, 5.4, 3)])
def test_a_large_model_uses_the_cores_that_are_idle(monkeypatch, cores, load, threads):
    from copilot_repl.completion import runtime_torch

    monkeypatch.setattr(runtime_torch.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(runtime_torch.os, "getloadavg", lambda: (load, load, load))
    assert runtime_torch.idle_cores() == threads


def test_int8_weights_keep_the_shipped_models_predictions():
    """Teacher-forced on real code: the same next token almost everywhere, bits/byte within 1%."""
    import copy
    import sysconfig

    from copilot_repl.completion.runtime_torch import int8, int8_from_file
    from copilot_repl.completion.scoring import model_logprobs

    opened = checkpoint.open_checkpoint(checkpoint.shipped_default())
    model = checkpoint_write.torch_model(opened)
    floats, ints = TorchRuntime(model), TorchRuntime(int8(copy.deepcopy(model)))
    text = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")
    ids = np.array(opened.tokenizer.encode(text)[:2048])
    exact, quantized = model_logprobs(floats, ids).mean(), model_logprobs(ints, ids).mean()
    assert abs(quantized / exact - 1) < 0.01
    a, b = floats.logits(ids[None, :256])[0], ints.logits(ids[None, :256])[0]
    assert np.mean(a.argmax(-1) == b.argmax(-1)) > 0.9
    streamed = TorchRuntime(int8_from_file(opened.config, opened.directory))  # what the engine loads: a tensor at a time
    assert np.allclose(streamed.logits(ids[None, :256])[0], b, atol=1e-5)


def test_the_configs_parameter_count_is_the_models():
    config = GPTConfig(vocab_size=300, block_size=64, n_layer=3, n_head=2, n_embd=32)
    assert config.num_params() == GPT(config).num_params()
