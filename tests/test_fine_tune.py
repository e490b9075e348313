"""Fine-tuning (`train --init-from`): a new model that starts from a base's weights, keeps its
tokenizer and shape, indexes the base's text and the project's, and is scored beside its base; and
`average`, which takes the mean of a fine-tuned model and its base (or of any runs of one shape)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, run_cli, stdlib_folder
from copilot_repl import checkpoint
from copilot_repl.errors import UsageError
from copilot_repl.training.average import open_sources, save_average
from copilot_repl.training.base import REPLAY_SHARE, open_base, weights_fingerprint
from copilot_repl.training.recipe import FINE_TUNE_LR
from copilot_repl.training.train import TrainConfig, train

PROJECT_MODULES = ["string.py", "copy.py", "calendar.py", "locale.py", "token.py", "reprlib.py"]
RUN = {k: v for k, v in TINY.items() if k not in ("layers", "heads", "dim", "block_size", "batch_size")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project the tiny base never saw: other standard-library modules."""
    return stdlib_folder(tmp_path_factory.mktemp("project"), PROJECT_MODULES)


def fine_tune(base: Path, project: Path, name: str, **overrides):
    return train(TrainConfig(corpus=[str(project)], init_from=str(base), name=name, **{"steps": 2, **RUN, **overrides}))


def test_a_fine_tuned_model_starts_from_its_base_and_keeps_its_tokenizer_and_shape(tiny_model, project):
    result = fine_tune(tiny_model, project, "ft-close", steps=1, lr=1e-7, muon_lr=1e-7)
    base, tuned = checkpoint.open_checkpoint(tiny_model), checkpoint.open_checkpoint(result.directory)
    assert tuned.config == base.config
    for path in (tiny_model / checkpoint.TOKENIZER_DIR).iterdir():
        assert (result.directory / checkpoint.TOKENIZER_DIR / path.name).read_bytes() == path.read_bytes()
    drift = max(float(np.abs(tuned.weights[k] - w).max()) for k, w in base.weights.items())
    assert drift < 1e-4  # one step at a tiny rate: the base's weights, not a new initialisation (~0.02 apart)
    record = tuned.meta["base"]
    assert record["path"] == str(tiny_model) and record["fingerprint"] == weights_fingerprint(tiny_model)
    assert tuned.meta["train"]["init_from"] == str(tiny_model) and tuned.meta["corpus"]["spec"] == [str(project)]


def test_the_new_index_holds_the_base_index_then_the_projects_files(tiny_model, project):
    result = fine_tune(tiny_model, project, "ft-index")
    base_tokens = np.load(tiny_model / "index" / "tokens.npy")
    tokens = np.load(result.directory / "index" / "tokens.npy")
    meta = checkpoint.read_meta(result.directory)
    assert np.array_equal(tokens[: len(base_tokens)], base_tokens)
    assert len(tokens) == len(base_tokens) + meta["corpus"]["tokens"]["train"] - meta["corpus"]["tokens"]["replayed"]
    assert meta["retrieval"]["fitted_on"]["split"] == "val"  # refitted on the project's held-out files
    assert meta["train"]["lr"] == meta["train"]["muon_lr"] == FINE_TUNE_LR  # the fine-tuning rate, not scratch's


def test_replay_takes_its_share_of_windows_from_all_over_the_base(tiny_model, project):
    from copilot_repl import data

    base = open_base(str(tiny_model), None)
    splits = data.TokenSplits(np.arange(30_000, dtype=np.uint16) % 50, np.zeros(10, np.uint16), 10, False, 30_000)
    replayed = base.with_replay(splits, "the project's fingerprint")
    inherited = base.index_tokens()
    extra = len(replayed.train) - len(splits.train)
    assert abs(extra / len(replayed.train) - REPLAY_SHARE) < 0.05
    assert replayed.unique_train == splits.unique_train and replayed.replayed == extra and replayed.inherited is not None
    assert np.array_equal(replayed.train[len(splits.train) : len(splits.train) + 100], inherited[:100])
    assert np.array_equal(replayed.train[-100:], inherited[-100:])  # the last piece ends where the base's text ends
    own = base.with_replay(splits, base.opened.meta["corpus"]["fingerprint"])  # trained longer on its own corpus
    assert own.inherited is None and np.array_equal(own.train, replayed.train)  # its text is indexed once, as its own
    spec = base.opened.meta["corpus"]["spec"]
    more = base.with_replay(splits, "another fingerprint", [*spec, "library.jsonl.gz"])  # its corpus and more
    assert more.inherited is None and np.array_equal(more.train, replayed.train)


def test_a_fine_tuned_model_resumes_with_its_bases_tokenizer(tiny_model, project):
    fine_tune(tiny_model, project, "ft-resume", steps=2)
    result = train(TrainConfig(name="ft-resume", resume=True, steps=4, **RUN))
    meta = checkpoint.read_meta(result.directory)
    assert result.step == 4 and meta["base"]["path"] == str(tiny_model)
    assert meta["tokenizer"] == checkpoint.read_meta(tiny_model)["tokenizer"]


def test_eval_scores_the_base_beside_the_fine_tuned_model(tiny_model, project):
    tuned = fine_tune(tiny_model, project, "ft-eval", steps=3).directory
    report = json.loads(run_cli("eval", "--model", str(tuned), "--json").stdout)
    assert report["data"].startswith("held-out split of") and report["base"]["name"] == str(tiny_model)
    assert report["base"]["changed"] is False
    for key in ("bits_per_byte", "bits_per_byte_with_retrieval"):
        assert 0 < report[key] < 10 and 0 < report["base"][key] < 10
    text = run_cli("eval", "--model", str(tuned))
    assert text.returncode == 0 and f"base {tiny_model}:" in text.stdout and "bits/byte than its base" in text.stdout


def test_train_init_from_works_from_the_repl_too(tiny_model, project):
    r = run_cli(stdin=f":train --init-from {tiny_model} --corpus {project} --steps 1 --name ft-repl\n:show\n")
    assert r.returncode == 0, r.stderr
    assert checkpoint.read_meta(checkpoint.paras_dir() / "ft-repl")["base"]["path"] == str(tiny_model)


def test_a_deeper_model_grows_from_its_base_computing_the_same_function(tiny_model):
    import torch

    from copilot_repl.checkpoint_write import torch_model
    from copilot_repl.training.starting import deepened

    base = torch_model(checkpoint.open_checkpoint(tiny_model))
    grown = deepened(base, 2 * len(base.blocks) + 1)
    assert len(grown.blocks) == 2 * len(base.blocks) + 1
    ids = torch.randint(0, base.config.vocab_size, (2, 17))
    with torch.no_grad():
        assert torch.allclose(grown(ids)[0], base(ids)[0], atol=1e-5)
    assert any(p.abs().sum() > 0 for p in grown.blocks[1].attn.c_attn.parameters())  # a copy, trained inputs


def test_train_grows_a_base_deeper_and_says_so(tiny_model, project):
    layers = checkpoint.open_checkpoint(tiny_model).config.n_layer + 2
    result = fine_tune(tiny_model, project, "ft-deeper", layers=layers)
    grown = checkpoint.open_checkpoint(result.directory)
    assert grown.config.n_layer == layers and grown.meta["train"]["layers"] == layers
    assert grown.meta["base"]["fingerprint"] == weights_fingerprint(tiny_model)
    with pytest.raises(UsageError, match="contradicts the base"):  # it never shrinks
        open_base(str(result.directory), None).on_base(TrainConfig(layers=layers - 1))
    with pytest.raises(UsageError, match="differ in shape"):  # nor averages with its base
        open_sources([str(tiny_model), str(result.directory)], None, None)


def test_train_lets_a_base_read_further_back_with_its_own_weights(tiny_model, project):
    """A longer --block-size than the base's keeps every weight (rotary positions are computed): at one
    step at a tiny rate the new model reads a short window as the base does, and a window past the
    base's end at all."""
    import torch

    from copilot_repl.checkpoint_write import torch_model

    base = checkpoint.open_checkpoint(tiny_model)
    longer = 2 * base.config.block_size
    result = fine_tune(tiny_model, project, "ft-longer", steps=1, lr=1e-7, muon_lr=1e-7, block_size=longer)
    tuned = checkpoint.open_checkpoint(result.directory)
    assert tuned.config.block_size == longer and tuned.meta["train"]["block_size"] == longer
    ids = torch.randint(0, base.config.vocab_size, (1, base.config.block_size))
    with torch.no_grad():
        assert torch.allclose(torch_model(tuned)(ids)[0], torch_model(base)(ids)[0], atol=1e-3)
        assert torch_model(tuned)(torch.cat([ids, ids], dim=1))[0].shape[1] == longer
    with pytest.raises(UsageError, match="contradicts the base"):  # it never shrinks
        open_base(str(result.directory), None).on_base(TrainConfig(block_size=longer // 2))
    soup = save_average(open_sources([str(result.directory), str(tiny_model)], None, None), checkpoint.paras_dir() / "wide", {})
    assert checkpoint.open_checkpoint(soup).config.block_size == base.config.block_size  # the window both read


def test_an_average_holds_the_mean_of_its_models_weights_and_the_first_ones_tokenizer_and_index(tiny_model, project):
    tuned = fine_tune(tiny_model, project, "ft-soup", steps=3).directory
    soup = save_average(open_sources([str(tiny_model), str(tuned)], [1, 3], None), checkpoint.paras_dir() / "soup", {})
    base, ft, mean = (checkpoint.open_checkpoint(d) for d in (tiny_model, tuned, soup))
    assert any(not np.allclose(ft.weights[k], w) for k, w in base.weights.items())  # two models, one mean
    for name, weight in mean.weights.items():
        np.testing.assert_allclose(weight, 0.25 * base.weights[name] + 0.75 * ft.weights[name], rtol=0, atol=1e-6)
    for path in (tiny_model / checkpoint.TOKENIZER_DIR).iterdir():
        assert (soup / checkpoint.TOKENIZER_DIR / path.name).read_bytes() == path.read_bytes()
    assert (soup / "index" / "tokens.npy").read_bytes() == (tiny_model / "index" / "tokens.npy").read_bytes()
    assert [(s["path"], s["share"]) for s in mean.meta["averaged"]] == [(str(tiny_model), 0.25), (str(tuned), 0.75)]
    assert "history" not in mean.meta and "base" not in mean.meta  # one run's curve and base are not the mean's


def test_average_scores_its_models_beside_their_mean_and_makes_it_active(tiny_model, project):
    tuned = fine_tune(tiny_model, project, "ft-soup-cli", steps=3).directory
    r = run_cli("average", str(tiny_model), str(tuned), "--name", "soup-cli", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    scores = report["bits_per_byte"]
    assert list(scores) == [str(tiny_model), str(tuned), "soup-cli"] and report["best"] in scores
    assert all(0 < bpb < 10 for bpb in scores.values())
    shown = run_cli(stdin=f":average {tiny_model} {tuned} --name soup-repl\n:show\n")
    assert shown.returncode == 0 and "soup-repl" in shown.stdout, shown.stderr
    assert f"tokenizer, index, gate and confidence of {tiny_model}" in shown.stdout  # what the mean keeps, and whose
