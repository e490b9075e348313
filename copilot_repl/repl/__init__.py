"""The REPL face: interactive on a terminal, plain batch mode when stdin is a pipe or file."""

from __future__ import annotations

import sys


def run(session, history: bool = True, json_mode: bool = False) -> int:
    if sys.stdin.isatty() and sys.stdout.isatty():
        from copilot_repl.repl.app import interactive

        return interactive(session, history)
    from copilot_repl.repl.batch import batch

    return batch(session, sys.stdin, json_mode)
