"""Where the cursor is, and what the model must read and write first so that a completion starts right there.

A prompt can end in three ways, and each needs the model started differently:
- inside a line (`x = compute_chec`): token healing in the runner takes care of it; after a space
  (`x = `, `return `), the space is taken back and written again with the word after it (byte-level
  BPE merges them: " defaultdict"), since a lone space token before code is something the model
  never saw, and after it wrote `~~~~` or `-------`;
- after a line that opens a block (`def fib(n):`): the body starts on the next line, one level deeper;
- at the start of a line, or at its indentation (`def fib(n):\\n`, `...:\\n    `), as files, editors and
  scripts send it. A prompt ending in whitespace is not how the model ever saw code cut (byte-level BPE
  carries a line's last space with its first word: "\\n   " + " return"), so the model is fed the line
  one space short, its first token must be that space and a word, and the part the user already typed
  is not written again. Without this a small model closes the block at once (an empty completion) or
  picks an indentation of its own. After a line inside a block (a docstring's closing quotes), the
  newline is taken back and the model writes it again with the indentation it chooses: a lone "\\n"
  token is how byte-level BPE starts a line at the margin, so feeding one asks for the block's end.

A new body's first line is code, never a string or a comment: trained on code that documents every
function, the model opens a docstring there (or a comment after `for`), which a person at the REPL did
not ask for and which uses up the budget before the body (everyday definitions, greedy: 16 of 42
valid Python with the docstring, 30 of 42 without; keystrokes saved in an editor unchanged).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LINE_START = re.compile(r"\n([ \t]*)\Z")
INDENT_WIDTH = 4


def indent_of(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def opens_block(line: str) -> bool:
    return line.split("#")[0].rstrip().endswith(":")


@dataclass(frozen=True)
class Cursor:
    """How to start a completion of `prompt`: the model reads `prompt[:keep] + lead`; the completion
    shown starts with `lead[hide_lead:]`; when `indent_first`, the first token is a space and a word
    (of which the space is not shown when `hide_space`); the first tokens write `retype` again;
    when `body`, the completion starts a block's body and its first token opens neither a string nor a comment."""

    keep: int
    lead: str = ""
    hide_lead: int = 0
    indent_first: bool = False
    hide_space: bool = False
    retype: str = ""  # typed, then taken back: the first tokens write it again, unshown
    body: bool = False

    @property
    def shown(self) -> str:
        return self.lead[self.hide_lead :]


def place(prompt: str, block_mode: bool = True) -> Cursor:
    at_line_start = LINE_START.search(prompt)
    if at_line_start is None:
        line = prompt.rsplit("\n", 1)[-1]
        if block_mode and opens_block(line):  # the body starts on the next line, one level deeper
            return Cursor(len(prompt), "\n" + " " * (indent_of(line) + INDENT_WIDTH - 1), indent_first=True, body=True)
        spaces = len(line) - len(line.rstrip(" "))
        if spaces and line.strip():  # `x = `: the model reads the space with the word after it
            return Cursor(len(prompt) - spaces, retype=" " * spaces)
        return Cursor(len(prompt))
    keep = at_line_start.start()
    typed = indent_of(at_line_start.group(1))
    lines = [line for line in prompt[:keep].split("\n") if line.strip()]
    last = lines[-1] if lines else ""
    body = bool(last) and opens_block(last)
    target = max(typed, indent_of(last) + INDENT_WIDTH) if body else typed
    if target == 0 and indent_of(last) > 0:  # after a line in a block: it may go on, or end
        return Cursor(keep, retype="\n")
    if target == 0:  # a line at the left margin: "\n" is how the model saw such a line start
        return Cursor(keep, "\n", hide_lead=1)
    lead = "\n" + " " * (target - 1)
    hidden = 1 + min(typed, target - 1)
    return Cursor(keep, lead, hide_lead=hidden, indent_first=True, hide_space=typed == target, body=body)
