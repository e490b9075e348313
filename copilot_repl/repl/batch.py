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

from copilot_repl.commands import Quit, run_line
from copilot_repl.errors import CopilotReplError, UsageError
from copilot_repl.fim import FILL_MARKER


class BatchOutput:
    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, json_mode: bool = False):
        self.out, self.err, self.json_mode = out, err, json_mode

    def result(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def info(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def train_callback(self):
        from copilot_repl.progress import plain_progress

        return plain_progress(self.err)

    def show_candidate(self, session) -> None:
        text = session.candidates[session.candidate_index].text
        self.result(json.dumps({"completion": text}) if self.json_mode else text)

    def complete(self, session, prompt: str, suffix: str | None = None) -> None:
        if session.sampling.n > 1:
            session.best_of(prompt, suffix)
            self.show_candidate(session)
            return
        completion = session.completion(prompt, suffix)
        if self.json_mode:
            for _ in completion:
                pass
            session.last_completion = completion.text
            self.result(json.dumps(session.record(completion)))
            return
        try:
            for piece in completion:
                self.out.write(piece)
                self.out.flush()
        finally:
            session.last_completion = completion.text
            self.out.write("\n")
            self.out.flush()

    def next_input(self, text: str) -> None:
        raise UsageError(":edit needs an interactive terminal")

    def clear(self) -> None:
        pass

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
    out, failed = BatchOutput(json_mode=json_mode), False
    if hasattr(stdin, "reconfigure"):
        stdin.reconfigure(errors="replace")  # stray non-UTF-8 bytes must not end the run
    for line in logical_lines(stdin):
        if not line.strip():
            continue
        try:
            if line.lstrip().startswith((":", "/")):
                run_line(session, line, out)
            elif FILL_MARKER in line:
                prefix, _, suffix = line.partition(FILL_MARKER)
                out.complete(session, prefix, suffix=suffix)
            else:
                out.complete(session, line)
        except Quit:
            break
        except CopilotReplError as e:
            print(f"copilot-repl: error: {e}", file=sys.stderr, flush=True)
            failed = True
    return 1 if failed else 0
