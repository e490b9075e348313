"""Peak resident memory of a short training run with the default recipe and of one completion."""

from __future__ import annotations

import subprocess
import sys

MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(command: list[str]) -> float:
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024  # Linux reports KiB


def memory() -> dict:
    cli = [sys.executable, "-m", "copilot_repl"]
    return {
        "peak_rss_mb_train": peak_rss_mb([*cli, "train", "--corpus", "stdlib", "--steps", "30", "--name", "bench-memory"]),
        "peak_rss_mb_once": peak_rss_mb([*cli, "--once", "def fib(n):", "--max-tokens", "128"]),
    }
