"""The real program, run as a subprocess the way a shell script runs it."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import CLI, OUTSIDE, TINY_CLI, run_cli
from copilot_repl import checkpoint


def test_once_prints_a_completion(tiny_model):
    r = run_cli("--once", "def f(x):", "--model", str(tiny_model), "--seed", "1", "--max-tokens", "20")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\n") and "\x1b" not in r.stdout + r.stderr  # not a terminal: no stats, no colour
    # on stderr at most the one line that says why nothing was completed
    assert r.stderr == "" if r.stdout.strip() else r.stderr.startswith("copilot-repl: nothing to complete: ")
    again = run_cli("--once", "def f(x):", "--model", str(tiny_model), "--seed", "1", "--max-tokens", "20")
    assert again.stdout == r.stdout


def test_once_reads_stdin_and_writes_json(tiny_model):
    r = run_cli("--once", "-", "--model", "tiny", "--json", "--temperature", "0", "--max-tokens", "8", stdin="import os\n")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tokens"] <= 8 and out["stop_reason"] in ("max tokens", "stop", "end of text") and out["prompt_tokens"] > 0


def test_default_model_is_used_without_model_flag(tmp_path):
    r = run_cli("--once", "def fib(n):", "--max-tokens", "16", "--seed", "1", "--json", env={"COPILOT_REPL_PARAS": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["model"] == str(checkpoint.shipped_default()) and record["tokens"] > 0


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["--once", "x", "--model", "no-such-model"], 1, "no checkpoint 'no-such-model'"),
        (["--once", "x", "--temperature", "-1"], 2, "temperature"),
        (["--once", "x", "--top-p", "2"], 2, "top_p"),
        (["--once", "x", "--max-tokens", "0"], 2, "max_tokens"),
        (["--once", "x", "--device", "cuda"], 1, "cuda"),
        (["--bogus-flag"], 2, "unrecognized arguments"),
        (["train", "--tokenizer", "nope", "--steps", "1"], 1, "unknown tokenizer 'nope'"),
        (["train", "--steps", "zero"], 2, "--steps"),
        (["train", "--dim", "30", "--heads", "4", "--steps", "1"], 2, "--dim 30"),
        (["train", "--corpus", "/no/such/dir", "--steps", "1"], 1, "does not exist"),
        (["eval", "--model", "no-such-model"], 1, "no checkpoint"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(args, code, fragment, tiny_model):
    r = run_cli(*args)
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert fragment in lines[-1] and lines[-1].startswith("copilot-repl: error:")
    assert sum("error" in line for line in lines) == 1 and "Traceback" not in r.stderr


def test_train_then_eval_through_the_cli(corpus_dir, tmp_path):
    r = run_cli(
        "train",
        "--corpus",
        str(corpus_dir),
        *TINY_CLI,
        "--tokenizer",
        "bpe",
        "--vocab-size",
        "300",
        "--steps",
        "15",
        "--name",
        "clitrain",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["step"] == 15 and result["val_bpb"] > 0
    assert "training" in r.stderr and "saved" in r.stderr  # progress as plain lines, on stderr
    r = run_cli("eval", "--model", "clitrain", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bits_per_byte"] > 0
    r = run_cli("eval", "--model", "clitrain", str(corpus_dir / "bisect.py"))
    assert r.returncode == 0 and "bits/byte" in r.stdout
    r = run_cli("models")
    assert "clitrain" in r.stdout and "bpe" in r.stdout
    assert any(line.startswith("default ") for line in r.stdout.splitlines())  # the shipped model, by its one name
    r = run_cli(stdin=":load clitrain\n:load default\n:show\n", env={})
    assert r.returncode == 0 and str(checkpoint.shipped_default()) in r.stdout, r.stderr  # back on the shipped model
    assert "loaded clitrain (" in r.stdout + r.stderr and "loaded default (" in r.stdout + r.stderr  # by name
    r = run_cli("show", "--model", "clitrain")
    assert r.returncode == 0 and "clitrain" in r.stdout, r.stderr


def test_tokenizers_lists_builtins():
    r = run_cli("tokenizers")
    assert r.returncode == 0
    assert {line.split()[0] for line in r.stdout.splitlines()} >= {"char", "bpe", "tiktoken"}


def test_output_to_a_closed_pipe_is_quiet(tiny_model):
    for command in (
        f"'{CLI[0]}' --once 'x' --model {tiny_model} --max-tokens 50 | head -c 1 > /dev/null",
        f"yes 'def f(x):' | head -200 | '{CLI[0]}' --model {tiny_model} --max-tokens 50 | head -c 1 > /dev/null",  # batch
    ):
        r = subprocess.run(command, shell=True, cwd=OUTSIDE, capture_output=True, text=True)
        assert "Traceback" not in r.stderr and "error" not in r.stderr, r.stderr


def test_ctrl_c_during_training_saves_and_exits_cleanly(corpus_dir):
    import signal
    import time

    from copilot_repl import checkpoint

    args = [
        *CLI,
        "train",
        "--corpus",
        str(corpus_dir),
        *TINY_CLI,
        "--tokenizer",
        "char",
        "--steps",
        "100000",
        "--name",
        "interrupted",
    ]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE)
    for line in proc.stderr:
        if line.startswith("training"):
            break
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted; saved" in err and "Traceback" not in err
    meta = checkpoint.read_meta(checkpoint.paras_dir() / "interrupted")
    assert 0 < meta["metrics"]["step"] < 100000
