from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import STDLIB, run_cli, session_dirs, train_tiny
from copilot_repl import checkpoint
from copilot_repl.completion.engine import load_engine
from copilot_repl.completion.fim import fim_window, infill_prompt
from copilot_repl.completion.generate import Request
from copilot_repl.completion.settings import Sampling
from copilot_repl.completion.syntax import syntax_ok
from copilot_repl.tokenizer import EOT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, tokenizer_class

TEXT = (STDLIB / "bisect.py").read_text()


@pytest.fixture(scope="module")
def bpe():
    return tokenizer_class("bpe").train([TEXT], 400)


def test_fim_window_rearranges_at_characters_and_keeps_the_length(bpe):
    window = np.asarray(bpe.encode(TEXT)[200:329], dtype=np.uint16)
    special = bpe.special_ids
    orders = set()
    for seed in range(40):
        out = fim_window(window, bpe, np.random.default_rng(seed))
        assert len(out) == len(window) and out.dtype == window.dtype
        ids = out.tolist()
        assert ids[0] == special[FIM_PREFIX] and ids.count(special[FIM_MIDDLE]) == 1
        orders.add("SPM" if ids[1] == special[FIM_SUFFIX] else "PSM")
        if special[EOT] in ids:  # the whole middle fit: the three pieces hold exactly the original text
            p, s, m = (ids.index(special[t]) for t in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE))
            body = ids[: ids.index(special[EOT])]
            if ids[1] == special[FIM_SUFFIX]:
                pieces = [body[m + 1 :], body[s + 1 : m]]
            else:
                pieces = [body[p + 1 : s], body[m + 1 :], body[s + 1 : m]]
            assert "".join(bpe.decode(x) for x in pieces) in (bpe.decode(window), bpe.decode(window).replace("\ufffd", ""))
    assert orders == {"PSM", "SPM"}


def test_fim_never_crosses_a_file_boundary(bpe):
    window = np.asarray(bpe.encode("x = 1\n") + [bpe.eot_id] + bpe.encode("y = 2\n"), dtype=np.uint16)
    assert np.array_equal(fim_window(window, bpe, np.random.default_rng(0)), window)


def test_infill_prompt_keeps_the_text_next_to_the_gap(bpe):
    ids, cropped = infill_prompt(bpe, "a = 1\n" * 200, "b = 2\n" * 200, 64)
    special = bpe.special_ids
    assert len(ids) == 64 and cropped > 0
    assert ids[0] == special[FIM_PREFIX] and ids[-1] == special[FIM_MIDDLE]
    assert bpe.decode(ids[1 : ids.index(special[FIM_SUFFIX])]).endswith("a = 1\n")
    assert bpe.decode(ids[ids.index(special[FIM_SUFFIX]) + 1 : -1]).startswith("b = 2\n")


@pytest.fixture(scope="module")
def fim_model(corpus_dir, tmp_path_factory):
    with session_dirs(tmp_path_factory):
        return train_tiny(corpus_dir, "fim", tokenizer="bpe", vocab_size=300, steps=40, fim_rate=0.5).directory.resolve()


def test_fim_training_and_infill_from_the_shell(fim_model):
    assert checkpoint.read_meta(fim_model)["train"]["fim_rate"] == 0.5
    r = run_cli(
        "--once",
        "def f(x):\n    ",
        "--suffix",
        "\n    return y\n",
        "--model",
        str(fim_model),
        "--max-tokens",
        "12",
        "--seed",
        "1",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stop_reason"] in ("end of middle", "max tokens")
    assert "not trained with --fim-rate" not in r.stderr


def test_best_of_n_ranks_valid_candidates_first(tiny_model):
    engine = load_engine(tiny_model)[0]
    result = engine.complete(Request("x = (", sampling=Sampling(seed=3, max_tokens=10, temperature=1.0, n=6))).finish()
    candidates = result.candidates
    assert len(candidates) == 6 and result.text == candidates[0].text
    flags = [c.syntax_ok for c in candidates]
    assert flags == sorted(flags, reverse=True)  # valid ones first
    for group in (True, False):
        scores = [c.confidence for c in candidates if c.syntax_ok is group]
        assert scores == sorted(scores, reverse=True)


def test_greedy_best_of_n_opens_each_row_differently_and_repeats_itself(tiny_model):
    """At temperature 0 the rows would all be one answer: row i opens with the model's i-th choice instead."""
    engine = load_engine(tiny_model)[0]
    request = Request("x = ", sampling=Sampling(max_tokens=6, temperature=0, n=4, stop_mode="none"))
    texts = [sorted(c.text for c in engine.complete(request).finish().candidates) for _ in range(2)]
    assert len(set(texts[0])) == 4 and texts[0] == texts[1]
    greedy = engine.complete(replace(request, sampling=replace(request.sampling, n=1))).finish().text
    assert greedy in texts[0]


def test_best_of_n_from_the_shell_lists_candidates(tiny_model):
    r = run_cli("--once", "def f(x):", "--model", str(tiny_model), "--n", "4", "--max-tokens", "8", "--seed", "1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["candidates"]) == 4 and out["completion"] == out["candidates"][0]["completion"]


def test_syntax_check_compiles_but_never_runs(tmp_path):
    marker = tmp_path / "ran"
    assert syntax_ok(f"open({str(marker)!r}, 'w').write('x')\n")
    assert not marker.exists()
    assert syntax_ok("def f(x):\n    return (x")  # unfinished is fine
    assert not syntax_ok("def f(x):\n    return x +* 2\n")
