"""Training progress for people: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from copilot_repl.training.plot import terminal_curve
from copilot_repl.wording import plural


def _fmt_line(info: dict) -> str:
    parts = [f"step {info['step']}", f"loss {info['loss']:.3f}"]
    if "val_bpb" in info:
        parts.append(f"val {info['val_bpb']:.3f} bits/byte")
    parts.append(f"{info['tokens_per_second']:,.0f} tok/s")
    return "  ".join(parts)


PHASES = ("read", "tokenizer", "encode", "index", "evaluate", "gate")  # the long steps besides training's own


def _done(event: str, info: dict) -> str:
    """How far a phase is, in its own unit."""
    done, total = info["done"], info["total"]
    if event == "read":
        return f"{plural(done, 'file')}, {_size(info['chars'])}"
    if event in ("tokenizer", "encode"):
        return f"{_size(done)} of {_size(total)}"
    if event == "evaluate":
        return f"{done:,} of {total:,} windows"
    if event == "gate":
        return f"{done:,} of {total:,} steps"
    return ""


def _size(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.0f} kB"


def _finished(info: dict) -> bool:
    return info["total"] is not None and info["done"] >= info["total"]


def plain_progress(stream: TextIO = sys.stderr, every: float = 5.0) -> Callable[[str, dict], None]:
    """One line per validation and at most one every `every` seconds otherwise: good for logs."""
    last = [time.monotonic()]  # the first line of a phase after `every` seconds, or at its end

    def callback(event: str, info: dict) -> None:
        if event == "start":
            print(_start_line(info), file=stream, flush=True)
        elif event == "step" and ("val_bpb" in info or time.monotonic() - last[0] >= every):
            last[0] = time.monotonic()
            print(_fmt_line(info), file=stream, flush=True)
        elif event in PHASES and (_finished(info) or time.monotonic() - last[0] >= every):
            last[0] = time.monotonic()
            print(f"{event}: {_done(event, info) or 'done'}", file=stream, flush=True)
        elif event == "status":
            print(info["message"], file=stream, flush=True)

    return callback


def _start_line(info: dict) -> str:
    total = f"{info['total_steps']} steps" if info["total_steps"] else f"{info['time']:.0f}s"
    cache = "reused" if info["cache_reused"] else "built"
    shape = info["shape"]
    return (
        f"training {info['params']:,} parameters ({shape['layers']}x{shape['dim']}, batch {shape['batch_size']}) "
        f"on {info['device']} ({info['device_reason']}) for {total}; "
        f"{info['train_tokens']:,} train / {info['val_tokens']:,} val tokens (cache {cache})"
    )


def rich_progress(console) -> Callable[[str, dict], None]:
    """One bar per phase (read, tokenizer, encode, index, train, final evaluation, gate), each left on
    screen as it ended before the next line or bar is printed; every line goes through the console,
    so none is glued to a bar. A phase whose total is not known yet (reading) pulses."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    live: dict[str, Any] = {}  # phase -> (Progress, task id), at most one running

    def bar(phase: str, total: float):
        if phase not in live:
            stop()
            progress = Progress(
                TextColumn("[bold]{task.description:<9}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
            )
            progress.start()
            live[phase] = (progress, progress.add_task(phase, total=total, stats=""))
        return live[phase]

    def stop() -> None:
        for progress, _ in live.values():
            progress.stop()
        live.clear()

    state: dict[str, Any] = {"val": ""}

    def callback(event: str, info: dict) -> None:
        if event in PHASES:
            progress, task = bar(event, info["total"])
            progress.update(task, total=info["total"], completed=info["done"], stats=_done(event, info))
            if _finished(info):
                stop()
        elif event == "start":
            stop()
            console.print(_start_line(info), highlight=False)
            state["by_time"] = not info["total_steps"]
            bar("train", info["total_steps"] or info["time"])
        elif event == "step" and "train" in live:
            if "val_bpb" in info:
                state["val"] = f"  val {info['val_bpb']:.3f} bits/byte"
            progress, task = live["train"]
            done = info["elapsed"] if state["by_time"] else info["step"]
            stats = f"step {info['step']}  loss {info['loss']:.3f}{state['val']}  {info['tokens_per_second']:,.0f} tok/s"
            progress.update(task, completed=done, stats=stats)
        elif event == "end":
            if "train" in live and not info["interrupted"]:  # the time left was the final evaluation's
                progress, task = live["train"]
                progress.update(task, completed=progress.tasks[0].total)
            stop()
            console.print(terminal_curve(info["history"]), markup=False, highlight=False)
        elif event == "status":
            console.print(f"[dim]{info['message']}[/dim]")  # above a running bar, never into it

    return callback
