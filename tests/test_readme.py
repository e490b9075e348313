"""Every command README shows, run as written through the installed program: an example that fails,
or prints nothing, fails here. The commands that run until stopped (the REPL, `serve`) or for minutes
(`train --time 10m`, fine-tuning for 2m) are left to their own tests, and named here so that a new one is not skipped unseen."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from conftest import CLI
from copilot_repl import checkpoint

README = Path(__file__).resolve().parent.parent / "README.md"
INSTALL = "python3 -m venv"  # the set-up commands: CI runs the test one, and a user the others
LEFT_TO_THEIR_OWN_TESTS = {
    "copilot-repl": "test_repl_e2e.py",
    "copilot-repl serve": "test_server.py",
    "copilot-repl serve --index src/": "test_server.py::test_serve_indexes_a_project_whose_names_it_finishes",
    "copilot-repl train --corpus stdlib --time 10m --name mine": "test_cli.py::test_train_then_eval_through_the_cli",
    "copilot-repl train --init-from default --corpus ~/myproject --time 2m --name mine": "test_fine_tune.py",
}


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith(INSTALL)]


def test_every_readme_command_prints_what_it_says(tmp_path, corpus_dir):
    commands = readme_commands()
    assert set(LEFT_TO_THEIR_OWN_TESTS) <= set(commands)
    (tmp_path / "app.py").write_text("import json\n\n\ndef load_config(path):\n    return json.load(open(path))\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "store.py").write_text("def load_items(path):\n    return [line.strip() for line in open(path)]\n")
    paras = tmp_path / "paras"
    mine = shutil.copytree(checkpoint.shipped_default(), paras / "mine")  # as if `train ... --name mine` had made it,
    meta = json.loads((mine / "checkpoint.json").read_text())  # on a small corpus whose held-out split eval reads fast
    meta["corpus"]["spec"] = [str(corpus_dir)]
    (mine / "checkpoint.json").write_text(json.dumps(meta))
    (tmp_path / "config" / "copilot-repl").mkdir(parents=True)
    (tmp_path / "config" / "copilot-repl" / "config.toml").write_text("seed = 1\n")  # one sample, every run
    path = f"{Path(CLI[0]).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "COPILOT_REPL_PARAS": str(paras), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for command in commands:
        if command in LEFT_TO_THEIR_OWN_TESTS:
            continue
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        assert done.returncode == 0 and done.stdout.strip(), f"{command}\n{done.stdout}\n{done.stderr}"
        assert "nothing to complete" not in done.stderr, f"{command}: {done.stderr}"
        if "--json" in command:
            assert json.loads(done.stdout)["completion"].strip(), f"{command}: {done.stdout}"
