"""Batch mode: commands and prompts read line by line from a pipe; plain text out, no colour.

Each line is a prompt or a `:command`; a line ending in a backslash continues on the next one, so a
prompt may span lines. The exit code is 1 if any line failed. A completion may itself hold newlines, so a
program that must tell one answer from the next asks for `--json`: one JSON object per line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TextIO

from copilot_repl.commands import Quit
from copilot_repl.errors import CopilotReplError, UsageError, one_line
from copilot_repl.repl.dispatch import handle


class BatchOutput:
    """Plain text (or one JSON record per completion) on stdout, for `--once` and batch mode alike;
    notices, and on a terminal the statistics line, on stderr."""

    shows_low_confidence = False

    def prepare(self, kind: str, text: str, command=None) -> None:
        pass

    def __init__(self, session, out: TextIO = sys.stdout, err: TextIO = sys.stderr, json_mode: bool = False):
        self.session, self.out, self.err, self.json_mode = session, out, err, json_mode

    def result(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def info(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def train_callback(self):
        from copilot_repl.progress import plain_progress

        return plain_progress(self.err)

    def show(self, stream) -> None:
        """The whole completion at once: only at its end is it known to be valid and confident enough
        to show (a script would rather wait a moment than read a line it must not use)."""
        result = stream.finish()
        if self.json_mode:
            self.result(json.dumps(self.session.record(result)))
            return
        self.result(result.text)
        if stream.result.why_empty:
            self.info(f"copilot-repl: nothing to complete: {stream.result.why_empty}")
        if self.err.isatty():
            from copilot_repl.repl.render import stats_line  # pygments: only for a terminal

            if stream.result.cropped_tokens:
                self.info(f"note: prompt cropped: its first {stream.result.cropped_tokens} tokens do not fit the context")
            self.info(stats_line(stream.result))

    def show_candidate(self, turn) -> None:
        self.result(json.dumps({"completion": turn.text, "candidate": turn.shown + 1}) if self.json_mode else turn.text)

    def next_input(self, text: str) -> None:
        raise UsageError(":edit needs an interactive terminal")

    def tokens(self, pieces: list[str], ids: list[int]) -> None:
        self.result("|".join(pieces))
        self.result(" ".join(map(str, ids)))


def logical_lines(lines: Iterable[str]):
    pending = ""
    for line in lines:
        line = line.rstrip("\n")
        if line.endswith("\\"):
            pending += line[:-1] + "\n"
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def batch(session, stdin: TextIO, json_mode: bool = False) -> int:
    """Each line goes on whatever the one before it did: an error is reported on its line, as in the REPL."""
    out, failed = BatchOutput(session, json_mode=json_mode), False
    if hasattr(stdin, "reconfigure"):
        stdin.reconfigure(errors="replace")  # stray non-UTF-8 bytes must not end the run
    for line in logical_lines(stdin):
        if not line.strip():
            continue
        try:
            handle(session, line, out)
        except Quit:
            break
        except BrokenPipeError:  # the reader went away (| head): not this line's fault, and nothing to go on for
            raise
        except Exception as e:
            if session.debug and not isinstance(e, CopilotReplError):
                raise
            print(f"copilot-repl: {one_line(e)}", file=sys.stderr, flush=True)
            failed = True
    return 1 if failed else 0
