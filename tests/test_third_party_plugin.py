"""A tokenizer from a separately installed package works with no change to copilot-repl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, run_cli

PLUGIN_SOURCE = Path(__file__).parent / "third_party_plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The demo package installed with pip into its own site folder (added to PYTHONPATH)."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGIN_SOURCE),
        ],
        check=True,
        cwd=build,
        capture_output=True,
    )
    assert list(target.glob("copilot_repl_bytes_demo-*.dist-info"))
    return target


def test_third_party_tokenizer_trains_and_completes(plugin_site, corpus_dir):
    env = {"PYTHONPATH": str(plugin_site)}
    listed = run_cli("tokenizers", env=env)
    assert "bytes-demo" in listed.stdout and "copilot-repl-bytes-demo 0.0.1" in listed.stdout
    assert "bytes-demo" not in run_cli("tokenizers").stdout  # only when installed
    size = [
        f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k in ("layers", "heads", "dim", "block_size", "batch_size")
    ]
    r = run_cli(
        "train", "--corpus", str(corpus_dir), "--tokenizer", "bytes-demo", "--steps", "5", "--name", "bytes", *size, env=env
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("--once", "def f(", "--model", "bytes", "--max-tokens", "5", "--seed", "1", env=env)
    assert r.returncode == 0, r.stderr
    missing = run_cli("--once", "def f(", "--model", "bytes")  # the plugin is needed to load its checkpoint
    assert missing.returncode == 1 and "unknown tokenizer 'bytes-demo'" in missing.stderr
