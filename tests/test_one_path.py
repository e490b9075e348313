"""Every face goes through the one runner: the same request gives the same record from each."""

from __future__ import annotations

import json

from conftest import OUTSIDE, run_cli

VOLATILE = ("seconds", "tokens_per_second")


def stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def test_batch_json_and_once_json_give_the_same_record(tiny_model):
    flags = ["--model", str(tiny_model), "--seed", "4", "--max-tokens", "12", "--json"]
    for n in ("1", "4"):
        once = json.loads(run_cli("--once", "def f(x):", "--n", n, *flags).stdout)
        batch = run_cli("--n", n, *flags, stdin="def f(x):\n")
        assert batch.returncode == 0, batch.stderr
        assert stable(json.loads(batch.stdout)) == stable(once)
        assert ("candidates" in once) == (n == "4")


def test_batch_session_is_the_context_until_reset(tiny_model):
    script = "def f(x):\n:context\n:reset\n:context\n"
    r = run_cli("--model", str(tiny_model), "--max-tokens", "5", "--seed", "1", stdin=script)
    assert r.returncode == 0, r.stderr
    first, _, second = r.stdout.partition("(empty")
    assert "def f(x):" in first and "the next prompt starts a file" in second
    assert "fresh context (1 prompt forgotten)" in r.stderr


def test_a_user_index_lets_completions_copy_the_users_names():
    project = OUTSIDE / "project"
    project.mkdir(exist_ok=True)
    (project / "widgets.py").write_text("def frobnicate_the_widget_registry(widgets):\n    return sorted(widgets)\n")
    args = ["--once", "names = frobnicate_the_wid", "--temperature", "0", "--max-tokens", "10"]
    plain = run_cli(*args)
    indexed = run_cli(*args, "--index", str(project))
    assert indexed.returncode == 0, indexed.stderr
    assert indexed.stdout.startswith("get_registry(") and not plain.stdout.startswith("get_registry(")


def test_context_file_is_the_left_context(tmp_path):
    context = tmp_path / "edited.py"
    context.write_text("def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n")
    r = run_cli("--once", "result = compute_chec", "--context", str(context), "--temperature", "0", "--json")
    record = json.loads(r.stdout)
    assert record["completion"].startswith("ksum_of_payload(") and record["context_tokens"] > 10


def test_bad_index_and_context_paths_are_one_line_errors(tmp_path):
    for args in (["--index", str(tmp_path / "missing")], ["--context", str(tmp_path / "missing.py")]):
        r = run_cli("--once", "x = ", *args)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run_cli(stdin=f":index {tmp_path / 'missing'}\nx = 1\n", env={})
    ran_next = r.stdout.strip() != "" or "nothing to complete" in r.stderr  # a completion, or the line saying why not
    assert r.returncode == 1 and "error" in r.stderr and ran_next
