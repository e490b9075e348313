"""How fast copilot-repl answers: time to the REPL prompt, to a loaded model and to the first streamed
token, and `--once` end to end next to a bare `import torch` (which it no longer pays), in one run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

ITALIC = "\x1b[3m"  # every streamed completion piece starts with it


def _env() -> dict:
    return {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color", "COPILOT_REPL_NO_HISTORY": "1"}


def repl_timings(repeats: int) -> dict:
    """Seconds from launch to the prompt, and from Enter to the first completion text (cold: the
    model still loading behind the prompt; warm: a second prompt)."""
    import pexpect

    prompt, ready, cold, warm = [], [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        child = pexpect.spawn(
            sys.executable, ["-m", "copilot_repl"], env=_env(), encoding="utf-8", timeout=60, dimensions=(40, 160)
        )
        child.expect(">>> ")
        drawn = time.perf_counter()
        prompt.append(drawn - start)
        child.send(":show\r")  # answers once the model has loaded behind the prompt
        child.expect("parameters")
        ready.append(time.perf_counter() - drawn)
        child.expect(">>> ")
        for series in (cold, warm):
            child.send("def fib(n):\r")
            sent = time.perf_counter()
            child.expect_exact(ITALIC)
            series.append(time.perf_counter() - sent)
            child.expect(r"tok/s")
            child.expect(">>> ")
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    return {
        "time_to_prompt_s": statistics.median(prompt),
        "model_ready_after_prompt_s": statistics.median(ready),
        "first_token_cold_s": statistics.median(cold),
        "first_token_warm_s": statistics.median(warm),
    }


def _run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=_env())
    return time.perf_counter() - start


def once_timings(repeats: int) -> dict:
    """`--once` for 64 tokens with the default model, next to a bare `import torch`."""
    once = [
        sys.executable,
        "-m",
        "copilot_repl",
        "--once",
        "def fib(n):",
        "--max-tokens",
        "64",
        "--stop-mode",
        "none",
        "--seed",
        "1",
    ]
    torch_only = [sys.executable, "-c", "import torch"]
    pairs = [(_run(once), _run(torch_only)) for _ in range(repeats)]
    total = statistics.median(p[0] for p in pairs)
    torch_import = statistics.median(p[1] for p in pairs)
    return {
        "once_64_tokens_s": total,
        "import_torch_s": torch_import,  # what every --once paid before the numpy runtime, before any work
        "import_torch_over_once": torch_import / total,
    }
