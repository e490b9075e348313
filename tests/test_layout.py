"""The layout holds the torch boundary: every module of the completing side imports without torch (but
the torch runtime, which only a GPU device loads), and none of them imports the training side."""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import copilot_repl.completion

COMPLETION = Path(copilot_repl.completion.__file__).parent
NO_TORCH = Path(__file__).parent / "no_torch"
TORCH_ONLY = {"copilot_repl.completion.runtime_torch"}


def completion_modules() -> list[str]:
    return [f"copilot_repl.completion.{m.name}" for m in pkgutil.iter_modules([str(COMPLETION)])]


def test_every_completion_module_imports_without_torch():
    modules = [m for m in completion_modules() if m not in TORCH_ONLY]
    assert "copilot_repl.completion.generate" in modules and "copilot_repl.completion.session" in modules
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint(len(sys.argv) - 1)"
    env = {**os.environ, "PYTHONPATH": str(NO_TORCH)}
    done = subprocess.run([sys.executable, "-P", "-c", code, *modules], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == str(len(modules)), done.stderr[-2000:]


def test_the_completing_side_never_imports_the_training_side():
    for path in COMPLETION.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import) (copilot_repl\.training\S*)", path.read_text(), re.M)
        assert not imports, f"{path.name} imports {imports}"
