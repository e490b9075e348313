"""A --time run sizes its model from measured speed; explicit shapes win; the caller's config is untouched."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from conftest import TINY
from copilot_repl import checkpoint, data
from copilot_repl.tokenizer import tokenizer_class
from copilot_repl.training import sizing
from copilot_repl.training.train import TrainConfig, train

# Two tiny shapes with made-up curves: "narrow" is better below a million tokens, "wide" above.
NARROW = sizing.Shape("narrow", 1, 2, 16, 4, ((1e4, 2.0), (1e6, 1.5)))
WIDE = sizing.Shape("wide", 1, 2, 32, 8, ((1e4, 2.4), (1e6, 1.4)))


def test_a_curve_is_read_in_log_tokens_and_its_ends_extend():
    assert NARROW.expected_bpb(1e5) == pytest.approx(1.75)
    assert NARROW.expected_bpb(1e7) == pytest.approx(1.25)  # the last segment goes on
    assert NARROW.expected_bpb(1e3) == pytest.approx(2.25)


@pytest.mark.parametrize(("rate", "chosen"), [(100.0, "narrow"), (1e5, "wide")])
def test_the_shape_follows_the_tokens_this_machine_will_process(monkeypatch, rate, chosen):
    monkeypatch.setattr(sizing, "SHAPES", (NARROW, WIDE))
    probed = []

    def probe(shape):
        probed.append(shape.name)
        return rate

    shape, record = sizing.choose(lambda: 600.0, probe)
    assert probed == ["narrow", "wide"] and shape.name == chosen == record["shape"]
    assert record["tokens_per_second"] == {"narrow": rate, "wide": rate}
    assert f"{rate:,.0f} training tokens/s" in record["reason"]
    short, record = sizing.choose(lambda: 30.0, probe)
    assert short.name == "narrow" and len(probed) == 2 and "under 60 s" in record["reason"]


def test_a_timed_run_records_its_sizing_and_leaves_the_callers_config_alone(corpus_dir, monkeypatch):
    monkeypatch.setattr(sizing, "SHAPES", (NARROW, WIDE))
    monkeypatch.setattr(sizing, "PROBED_FROM_SECONDS", 0)  # probe even in a test's few seconds
    shape_free = {k: v for k, v in TINY.items() if k not in ("layers", "heads", "dim", "batch_size")}
    config = TrainConfig(corpus=[str(corpus_dir)], tokenizer="char", name="sized", time=6.0, **shape_free)
    before = asdict(config)
    result = train(config, made_by={"command": "copilot-repl train --time 6s"})
    assert asdict(config) == before
    meta = checkpoint.read_meta(result.directory)
    assert meta["sizing"]["shape"] in ("narrow", "wide") and set(meta["sizing"]["tokens_per_second"]) == {"narrow", "wide"}
    chosen = NARROW if meta["sizing"]["shape"] == "narrow" else WIDE
    assert (meta["train"]["layers"], meta["train"]["dim"], meta["train"]["batch_size"]) == (1, chosen.dim, chosen.batch_size)
    assert meta["made_by"]["command"] == "copilot-repl train --time 6s"


def test_explicit_shapes_win_and_no_budget_means_the_default_shape(corpus_dir):
    explicit = train(TrainConfig(corpus=[str(corpus_dir)], tokenizer="char", name="explicit", time=3.0, **TINY))
    meta = checkpoint.read_meta(explicit.directory)
    assert "sizing" not in meta and meta["train"]["dim"] == TINY["dim"]
    config = TrainConfig(corpus=[str(corpus_dir)], tokenizer="char", name="plain", steps=2, block_size=64)
    assert config.sized(sizing.DEFAULT).layers == sizing.DEFAULT.layers
    assert config.layers is None  # sized() is a copy


def test_the_token_cache_streams_with_progress_and_the_corpus_holds_no_texts(corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_REPL_CACHE", str(tmp_path))
    corpus = data.gather([str(corpus_dir)])
    assert len(json.dumps(corpus.describe())) < 2000 and not hasattr(corpus, "train")
    tokenizer, where = data.cached_tokenizer(corpus, tokenizer_class("char"), None)
    seen: list[tuple[int, int]] = []
    splits = data.token_cache(corpus, tokenizer, tokenizer.fingerprint(where), lambda done, total: seen.append((done, total)))
    total = corpus.split_bytes("train") + corpus.split_bytes("val")
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    expected = data.encode_docs(tokenizer, corpus.texts("train"), splits.train.dtype)
    assert (splits.train == expected).all() and splits.val_bytes == corpus.split_bytes("val")
