"""Shared fixtures: an isolated cache and paras folder, a small real corpus, a tiny trained model."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("no-deadline", deadline=None)  # shared machines: a slow example is not a failure
settings.load_profile("no-deadline")

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SMALL_MODULES = ["bisect.py", "colorsys.py", "keyword.py", "heapq.py", "fnmatch.py", "glob.py", "shlex.py", "textwrap.py"]


def stdlib_folder(root: Path, names: list[str]) -> Path:
    """A folder of copies of these standard-library modules: real Python, small enough to train on."""
    for name in names:
        (root / name).write_text((STDLIB / name).read_text(encoding="utf-8"), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """A few real standard-library modules, to train on in seconds."""
    return stdlib_folder(tmp_path_factory.mktemp("corpus"), SMALL_MODULES)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own caches; models go to a per-session paras folder."""
    monkeypatch.setenv("COPILOT_REPL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("COPILOT_REPL_PARAS", str(tmp_path_factory.getbasetemp() / "paras"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.getbasetemp() / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))


TINY_CLI = ["--layers", "1", "--dim", "32", "--heads", "2", "--block-size", "32"]  # a model that trains in seconds
TINY = dict(layers=1, heads=2, dim=32, block_size=64, batch_size=8, eval_every=10, eval_windows=4, warmup=5, device="cpu")


def train_tiny(corpus: Path, name: str, tokenizer: str = "char", **overrides):
    from copilot_repl.training.train import TrainConfig, train

    config = TrainConfig(corpus=[str(corpus)], tokenizer=tokenizer, name=name, **{"steps": 40, **TINY, **overrides})
    return train(config)


@contextlib.contextmanager
def session_dirs(tmp_path_factory):
    """The per-session cache and paras folders, for fixtures wider than one test (autouse cannot reach them)."""
    env = {
        "COPILOT_REPL_CACHE": str(tmp_path_factory.getbasetemp() / "cache"),
        "COPILOT_REPL_PARAS": str(tmp_path_factory.getbasetemp() / "paras"),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_model(corpus_dir, tmp_path_factory) -> Path:
    """A tiny char model trained once per test session, at paras/tiny."""
    with session_dirs(tmp_path_factory):
        return train_tiny(corpus_dir, "tiny", steps=60).directory.resolve()


# The layers. A test is "pure" when it neither starts a process nor trains or loads a model: that layer
# (`pytest -m pure`) runs alone in seconds. The rest is "process" (drives the installed program or a
# subprocess) or "model" (trains a tiny model, or loads the shipped one), found from what the test uses.
MODEL_FIXTURES = {"tiny_model", "fim_model", "untrained_bpe"}  # with every fixture built on them
PROCESS_FIXTURES = {"repl", "server", "plugin_site"}
PROCESS_WORDS = re.compile(r"\b(run_cli|spawn_repl|CLI|subprocess|Popen|pexpect)\b")
MODEL_WORDS = re.compile(r"\b(train_tiny|train|load_engine|shipped_default|checkpoint\.load)\(")


def _uses(module) -> dict[str, str]:
    """Which of the module's own functions start a process or a model, directly or through one another."""
    functions = {
        name: inspect.getsource(f)
        for name, f in vars(module).items()
        if inspect.isfunction(f) and f.__module__ == module.__name__
    }
    kinds: dict[str, str] = {}
    for _ in range(len(functions)):  # until nothing changes: a helper may call a helper
        for name, source in functions.items():
            kinds[name] = _kind(source, kinds, set()) or ""
    return kinds


def _kind(source: str, helpers: dict[str, str], fixtures: set[str]) -> str | None:
    called = set(re.findall(r"\b(\w+)\(", source))
    if PROCESS_FIXTURES & fixtures or PROCESS_WORDS.search(source) or any(helpers.get(n) == "process" for n in called):
        return "process"
    if MODEL_FIXTURES & fixtures or MODEL_WORDS.search(source) or any(helpers.get(n) == "model" for n in called):
        return "model"
    return None


def pytest_collection_modifyitems(items) -> None:
    helpers: dict[str, dict[str, str]] = {}
    for item in items:
        function = getattr(item, "function", None)
        if function is None:
            continue
        module = inspect.getmodule(function)
        if module.__name__ not in helpers:
            helpers[module.__name__] = _uses(module)
        kind = _kind(inspect.getsource(function), helpers[module.__name__], set(getattr(item, "fixturenames", ())))
        item.add_marker(getattr(pytest.mark, kind or "pure"))


class _ConsoleScript(list):
    """The installed program, never the source tree: looked up when a test first starts it, so that
    the pure layer runs without an install."""

    def _found(self) -> None:
        if not self:
            beside = Path(sys.executable).parent / "copilot-repl"
            found = str(beside) if beside.exists() else shutil.which("copilot-repl")
            if not found:
                pytest.fail("the copilot-repl console script is not installed (pip install '.[test]')")
            self.append(found)

    def __iter__(self):
        self._found()
        return super().__iter__()

    def __getitem__(self, index):
        self._found()
        return super().__getitem__(index)


CHECKOUT = Path(__file__).resolve().parents[1]
CLI = _ConsoleScript()
# Every process starts here, away from the checkout, so that only what the wheel installed is found.
OUTSIDE = Path(tempfile.mkdtemp(prefix="copilot-repl-outside-"))


def run_cli(*args: str, stdin: str | bytes | None = None, env: dict | None = None, timeout: float = 120):
    """The real installed program, as a user runs it."""
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=not isinstance(stdin, bytes),
        env={**os.environ, **(env or {})},
        cwd=OUTSIDE,
        timeout=timeout,
    )


def spawn_repl(*args: str, env: dict | None = None, **options):
    """The installed REPL in a pseudo-terminal."""
    import pexpect

    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color", **(env or {})}
    options = {"encoding": "utf-8", "codec_errors": "replace", "timeout": 60, **options}
    return pexpect.spawn(CLI[0], list(args), env=env, cwd=str(OUTSIDE), **options)
