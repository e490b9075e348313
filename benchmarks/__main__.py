"""python -m benchmarks [--quick] [--only SUITE...] [--out FILE]: print a table, write JSON.

Every headline figure is a ratio or a median of things measured side by side in this one run.
Install the peer with `pip install ".[bench]"` (HuggingFace transformers) for the comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from benchmarks import (
    completion,
    cpu_runtimes,
    data_speed,
    docstrings,
    editor_latency,
    everyday,
    fine_tune,
    keystrokes,
    memory,
    quality,
    startup,
    suggest_latency,
    throughput,
)


def suites(quick: bool) -> dict:
    repeats = 2 if quick else 5
    return {
        "startup": lambda: {**startup.repl_timings(repeats), **startup.once_timings(repeats)},
        "training": lambda: throughput.training(rounds=2 if quick else 3),
        "generation": lambda: throughput.generation(rounds=2 if quick else 5),
        "data": lambda: {**data_speed.encode_speed(), **data_speed.cached_start()},
        "memory": lambda: {**memory.memory(200 if quick else 1000), **memory.corpus_rss((1, 2) if quick else (1, 10))},
        "quality": lambda: quality.quality(60 if quick else 600, [0] if quick else [0, 1, 2]),
        "completion": lambda: {
            **completion.line_completion(200 if quick else 1000),
            **completion.loops_and_cost(1 if quick else 24),
        },
        "keystrokes": lambda: keystrokes.keystrokes(chars=1500 if quick else None),
        "everyday": lambda: everyday.everyday(samples=5, seeds=range(100, 101) if quick else everyday.SAMPLED_SEEDS),
        "docstrings": lambda: docstrings.docstrings(limit=40 if quick else None),
        "suggest": lambda: suggest_latency.latency(100 if quick else 300),
        "editor": lambda: editor_latency.latency(15 if quick else 40),
        "fine-tune": lambda: fine_tune.fine_tune(chars=1500 if quick else 3000),
        "cpu-runtimes": lambda: {
            **cpu_runtimes.cpu_runtimes(rounds=1 if quick else 3),
            **cpu_runtimes.end_to_end(rounds=1 if quick else 3),
        },
    }


def _commit() -> str:
    """The commit measured, with "+changes" when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 1-minute quality budget (about 3 minutes)")
    parser.add_argument("--only", nargs="+", choices=list(suites(False)))
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    os.environ.setdefault("COPILOT_REPL_PARAS", str(Path(os.environ.get("TMPDIR", "/tmp")) / "copilot-repl-bench-paras"))
    chosen = suites(args.quick)
    names = args.only or [n for n in chosen if not (args.quick and n == "quality")]
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "commit": _commit(),
        "quick": args.quick,
    }
    for name in names:
        results[name] = chosen[name]()
        for key, value in results[name].items():
            shown = f"{value:12.3f}" if isinstance(value, float) else f"{value!s:>12}"
            print(f"{name:<11} {key:<34} {shown}", flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")  # after every suite: a long run keeps what it measured
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
