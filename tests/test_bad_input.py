"""Every bad input gets one clear line and a non-zero exit, and changes nothing.

One table: add a row to cover a new case. Each row runs the real program as a subprocess.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import TINY_CLI, run_cli
from copilot_repl import checkpoint

USAGE, ERROR = 2, 1


@pytest.fixture(scope="module")
def broken(tiny_model, corpus_dir, tmp_path_factory):
    """Damaged copies of a good checkpoint, and corpora no model can learn from."""
    root = tmp_path_factory.mktemp("broken")

    def damaged(name, damage):
        target = root / name
        shutil.copytree(tiny_model, target)
        damage(target, json.loads((target / checkpoint.META).read_text()))
        return str(target)

    def rewrite(**changes):
        return lambda d, meta: (d / checkpoint.META).write_text(json.dumps({**meta, **changes}))

    paths = {
        "file": str(tiny_model / checkpoint.META),
        "empty_dir": str(root / "empty"),
        "truncated": damaged(
            "truncated", lambda d, m: (d / checkpoint.WEIGHTS).write_bytes((d / checkpoint.WEIGHTS).read_bytes()[:500])
        ),
        "not_json": damaged("not_json", lambda d, m: (d / checkpoint.META).write_text("{oops")),
        "future": damaged("future", rewrite(format=99)),
        "plugin": damaged("plugin", lambda d, m: rewrite(tokenizer={**m["tokenizer"], "name": "nonexistent"})(d, m)),
        "shapes": damaged("shapes", lambda d, m: rewrite(model={**m["model"], "n_layer": 3})(d, m)),
        "other_chars": damaged("other_chars", lambda d, m: swap_two_characters(d / checkpoint.TOKENIZER_DIR / "char_vocab.json")),
        "empty_corpus": str(root / "empty"),
        "no_py": str(root / "no_py"),
        "latin1": str(root / "latin1"),
        "good_corpus": str(corpus_dir),
        "tiny": str(tiny_model),
    }
    (root / "empty").mkdir()
    (root / "no_py").mkdir()
    (root / "no_py" / "notes.txt").write_text("hello")
    (root / "latin1").mkdir()
    (root / "latin1" / "a.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    return paths


def swap_two_characters(vocab) -> None:
    """Another tokenizer of the same size: two ids trade characters."""
    table = json.loads(vocab.read_text())
    table["chars"][1], table["chars"][2] = table["chars"][2], table["chars"][1]
    vocab.write_text(json.dumps(table))


ONCE = ["--once", "x = 1", "--max-tokens", "4"]
TRAIN = ["train", *TINY_CLI, "--steps", "2", "--tokenizer", "char"]
FINE_TUNE = ["train", "--steps", "2", "--corpus", "{good_corpus}", "--name", "tuned"]
CASES = [
    # id, arguments ({name} is a path from the `broken` fixture), exit code, text the one error line holds
    ("unknown command", ["bogus"], USAGE, "unrecognized arguments: bogus"),
    ("unknown flag", [*ONCE, "--hot"], USAGE, "unrecognized arguments: --hot"),
    ("missing flag value", [*ONCE, "--temperature"], USAGE, "expected one argument"),
    ("wrong type", [*ONCE, "--top-k", "many"], USAGE, "expected an integer"),
    ("temperature < 0", [*ONCE, "--temperature", "-0.5"], USAGE, "out of range"),
    ("top_p 0", [*ONCE, "--top-p", "0"], USAGE, "out of range"),
    ("top_p > 1", [*ONCE, "--top-p", "1.01"], USAGE, "out of range"),
    ("top_k < 0", [*ONCE, "--top-k", "-3"], USAGE, "out of range"),
    ("max_tokens 0", ["--once", "x", "--max-tokens", "0"], USAGE, "out of range"),
    ("max_tokens huge", ["--once", "x", "--max-tokens", "10000000"], USAGE, "out of range"),
    ("seed not an integer", [*ONCE, "--seed", "1.5"], USAGE, "expected an integer"),
    ("stop mode", [*ONCE, "--stop-mode", "sometimes"], USAGE, "not one of"),
    ("model missing", [*ONCE, "--model", "/no/such/dir"], ERROR, "no checkpoint"),
    ("model is a file", [*ONCE, "--model", "{file}"], ERROR, "is a file"),
    ("model empty folder", [*ONCE, "--model", "{empty_dir}"], ERROR, "not a checkpoint"),
    ("weights truncated", [*ONCE, "--model", "{truncated}"], ERROR, "corrupt or truncated"),
    ("json not json", [*ONCE, "--model", "{not_json}"], ERROR, "not JSON"),
    ("future format", [*ONCE, "--model", "{future}"], ERROR, "newer copilot-repl"),
    ("plugin not installed", [*ONCE, "--model", "{plugin}"], ERROR, "unknown tokenizer 'nonexistent'"),
    ("shapes differ", [*ONCE, "--model", "{shapes}"], ERROR, "do not match the config"),
    ("corpus empty", [*TRAIN, "--corpus", "{empty_corpus}"], ERROR, "no usable Python text"),
    ("corpus without .py", [*TRAIN, "--corpus", "{no_py}"], ERROR, "no usable Python text"),
    ("corpus not UTF-8", [*TRAIN, "--corpus", "{latin1}"], ERROR, "not_utf8"),
    ("corpus /dev/zero", [*TRAIN, "--corpus", "/dev/zero"], ERROR, "not a regular file"),
    ("no cuda", [*TRAIN, "--corpus", "stdlib", "--device", "cuda"], ERROR, "no CUDA GPU"),
    ("no mps", [*TRAIN, "--corpus", "stdlib", "--device", "mps"], ERROR, "Metal"),
    ("generation on missing cuda", [*ONCE, "--device", "cuda"], ERROR, "no CUDA GPU"),
    (
        "vocab below bytes",
        [*TRAIN, "--corpus", "{good_corpus}", "--tokenizer", "bpe", "--vocab-size", "100"],
        ERROR,
        "vocab-size >= 260",
    ),
    ("dim not divisible", ["train", "--dim", "30", "--heads", "4"], USAGE, "--dim 30"),
    ("name with a path", [*TRAIN, "--name", "../escape"], USAGE, "plain name"),
    ("three lengths", [*TRAIN, "--epochs", "1", "--time", "1m"], USAGE, "not allowed with argument"),
    ("bad duration", [*TRAIN, "--time", "soon"], USAGE, "invalid duration"),
    ("unknown optimizer", [*TRAIN, "--optimizer", "sgd"], USAGE, "invalid choice: 'sgd'"),
    ("muon lr 0", [*TRAIN, "--muon-lr", "0"], USAGE, "must be positive"),
    ("base missing", [*FINE_TUNE, "--init-from", "/no/such/model"], ERROR, "no checkpoint"),
    ("base tokenizer unloadable", [*FINE_TUNE, "--init-from", "{plugin}"], ERROR, "unknown tokenizer 'nonexistent'"),
    ("base weights truncated", [*FINE_TUNE, "--init-from", "{truncated}"], ERROR, "corrupt or truncated"),
    ("shape against the base", [*FINE_TUNE, "--init-from", "{tiny}", "--dim", "64"], USAGE, "--dim 64 contradicts the base"),
    ("tokenizer against the base", [*FINE_TUNE, "--init-from", "{tiny}", "--tokenizer", "bpe"], USAGE, "contradicts the base"),
    ("resume and init-from", [*FINE_TUNE, "--init-from", "{tiny}", "--resume"], USAGE, "not allowed with argument"),
    ("fine-tune over the base", [*FINE_TUNE, "--init-from", "tiny", "--name", "tiny"], USAGE, "would overwrite the base"),
    ("average of one", ["average", "{tiny}", "--name", "soup"], USAGE, "two models or more"),
    ("average, shares", ["average", "{tiny}", "{tiny}", "--weights", "1", "--name", "soup"], USAGE, "1 share for 2 models"),
    ("average, tokenizers", ["average", "{tiny}", "{other_chars}", "--name", "soup"], USAGE, "different tokenizers"),
    ("average, unreadable", ["average", "{tiny}", "{truncated}", "--name", "soup"], ERROR, "corrupt or truncated"),
    ("average, no name", ["average", "{tiny}", "{tiny}"], USAGE, "--name"),
    ("average, name with a path", ["average", "{tiny}", "{tiny}", "--name", "../x"], USAGE, "plain name"),
    ("average over a source", ["average", "{tiny}", "tiny", "--name", "tiny"], USAGE, "would overwrite a model it averages"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_an_exit_code(case, broken, tiny_model):
    _, args, code, fragment = case
    paras = checkpoint.paras_dir()
    before = sorted(paras.iterdir()) if paras.is_dir() else []
    r = run_cli(*[a.format(**broken) for a in args])
    lines = [line for line in r.stderr.strip().splitlines() if line]
    assert r.returncode == code, r.stderr
    assert lines and lines[-1].startswith("copilot-repl: error:") and fragment in lines[-1], lines
    assert "Traceback" not in r.stderr and r.stdout == ""
    if "--init-from" in args or "average" in args:  # a bad model is found out before anything is written
        assert sorted(paras.iterdir()) == before


PROMPTS = {
    "empty": "",
    "whitespace": "   \n\t ",
    "one megabyte": "x = 1\n" * 175_000,
    "unseen characters": "名前 = 'ünïcødé ☃ 🐍'",
    "control characters": "\x00\x01\x1b[31m\x7f",
}


@pytest.mark.parametrize("name", PROMPTS)
def test_odd_prompts_complete(name, tiny_model):
    r = run_cli("--once", "-", "--model", str(tiny_model), "--max-tokens", "4", stdin=PROMPTS[name])
    assert r.returncode == 0, r.stderr


def test_invalid_utf8_and_surrogates_on_stdin(tiny_model):
    for raw in (b"x = '\xff\xfe'", "s = '\udcff'".encode("utf-8", "surrogatepass")):
        r = run_cli("--once", "-", "--model", str(tiny_model), "--max-tokens", "3", stdin=raw)
        assert r.returncode == 0, r.stderr


def test_batch_mode_keeps_going_and_fails_at_the_end(tiny_model):
    script = ":set temperature -1\n:bogus\n:set nope 1\n:load /no/such\nx = 1\n:set max_tokens 0\ny = 2\n"
    r = run_cli("--model", str(tiny_model), "--max-tokens", "3", "--json", stdin=script)
    errors = [line for line in r.stderr.splitlines() if line.startswith("copilot-repl: error:")]
    assert r.returncode == 1 and len(errors) == 5
    answers = [json.loads(line) for line in r.stdout.splitlines()]  # a completion may hold newlines; JSON lines never do
    assert len(answers) == 2 and all(a["tokens"] <= 3 and "completion" in a for a in answers)
