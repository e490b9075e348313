"""Training progress for people: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from copilot_repl.plot import terminal_curve


def _fmt_line(info: dict) -> str:
    parts = [f"step {info['step']}", f"loss {info['loss']:.3f}"]
    if "val_bpb" in info:
        parts.append(f"val {info['val_bpb']:.3f} bits/byte")
    parts.append(f"{info['tokens_per_second']:,.0f} tok/s")
    return "  ".join(parts)


def _done(event: str, info: dict) -> str:
    if event == "encode":
        return f"{info['done'] / 1e6:,.1f} of {info['total'] / 1e6:,.1f} MB"
    return f"{info['done']:,} of {info['total']:,} windows"


def plain_progress(stream: TextIO = sys.stderr, every: float = 5.0) -> Callable[[str, dict], None]:
    """One line per validation and at most one every `every` seconds otherwise: good for logs."""
    last = [0.0]

    def callback(event: str, info: dict) -> None:
        if event == "start":
            total = f"{info['total_steps']} steps" if info["total_steps"] else f"{info['time']:.0f}s"
            cache = "reused" if info["cache_reused"] else "built"
            shape = info["shape"]
            print(
                f"training {info['params']:,} parameters ({shape['layers']}x{shape['dim']}, batch {shape['batch_size']}) "
                f"on {info['device']} ({info['device_reason']}) for {total}; "
                f"{info['train_tokens']:,} train / {info['val_tokens']:,} val tokens (cache {cache})",
                file=stream,
                flush=True,
            )
        elif event == "step" and ("val_bpb" in info or time.monotonic() - last[0] >= every):
            last[0] = time.monotonic()
            print(_fmt_line(info), file=stream, flush=True)
        elif event in ("encode", "evaluate") and (info["done"] == info["total"] or time.monotonic() - last[0] >= every):
            last[0] = time.monotonic()
            print(f"{event}: {_done(event, info)}", file=stream, flush=True)
        elif event == "status":
            print(info["message"], file=stream, flush=True)
        elif event == "saved":
            print(f"saved {info['path']} (step {info['step']})", file=stream, flush=True)

    return callback


def rich_progress(console) -> Callable[[str, dict], None]:
    """A live bar with loss, val bits/byte, tokens/s and ETA; stopped on the final save."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    state: dict[str, Any] = {"task": None, "val": ""}

    def callback(event: str, info: dict) -> None:
        if event in ("encode", "evaluate"):  # a bar of its own, after the run's bar has stopped for "evaluate"
            if state.get(event) is None:
                if event == "evaluate":  # the bars above stay printed as they ended
                    for task in list(progress.task_ids):
                        progress.remove_task(task)
                progress.start()
                state[event] = progress.add_task(event, total=info["total"], stats="")
            progress.update(state[event], completed=info["done"], stats=_done(event, info))
            if event == "evaluate" and info["done"] == info["total"]:
                progress.stop()
        elif event == "start":
            plain_progress(console.file)(event, info)
            total = info["total_steps"] or info["time"]
            state["by_time"] = not info["total_steps"]
            progress.start()
            state["task"] = progress.add_task("train", total=total, completed=0, stats="")
        elif event == "step" and state["task"] is not None:
            if "val_bpb" in info:
                state["val"] = f"  val {info['val_bpb']:.3f} b/B"
            done = info["elapsed"] if state["by_time"] else info["step"]
            stats = f"step {info['step']}  loss {info['loss']:.3f}{state['val']}  {info['tokens_per_second']:,.0f} tok/s"
            progress.update(state["task"], completed=done, stats=stats)
        elif event == "saved":
            console.print(f"[dim]saved {info['path']} (step {info['step']})[/dim]")
        elif event == "end":
            progress.stop()
            console.print(terminal_curve(info["history"]), markup=False, highlight=False)
        elif event == "status":
            console.print(f"[dim]{info['message']}[/dim]")

    return callback
