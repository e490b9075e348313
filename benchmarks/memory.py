"""Peak resident memory: a short training run with the default recipe, one completion, and batch mode
answering few versus many prompts in one process (a leak would show as growth)."""

from __future__ import annotations

import subprocess
import sys

MEASURE = (
    "import resource, subprocess, sys;"
    "subprocess.run(sys.argv[2:], check=True, capture_output=True, text=True, input=sys.argv[1]);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(command: list[str], stdin: str = "") -> float:
    out = subprocess.run([sys.executable, "-c", MEASURE, stdin, *command], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024  # Linux reports KiB


def memory(many: int = 1000) -> dict:
    cli = [sys.executable, "-m", "copilot_repl"]
    prompts = lambda n: ":set max_tokens 16\n" + "".join(f"def f{i}(x):\n" for i in range(n))  # noqa: E731
    few, lots = peak_rss_mb(cli, prompts(20)), peak_rss_mb(cli, prompts(many))
    return {
        "peak_rss_mb_train": peak_rss_mb([*cli, "train", "--corpus", "stdlib", "--steps", "30", "--name", "bench-memory"]),
        "peak_rss_mb_once": peak_rss_mb([*cli, "--once", "def fib(n):", "--max-tokens", "128"]),
        "peak_rss_mb_batch_20_prompts": few,
        f"peak_rss_mb_batch_{many}_prompts": lots,
        "batch_rss_growth_mb": lots - few,
    }
