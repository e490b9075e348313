"""Where a completion should end: user stop strings and the code-aware block rule.

The block rule: a completion ends when the block the prompt opened is finished, i.e. at the first
line that dedents back to the prompt's level (or, at top level, after a gap of two blank lines).
Text that a stop might still cut (a trailing run of blank lines, a partial stop string) is held back,
so what has been streamed never has to be taken back.
"""

from __future__ import annotations

import re

TRAILING_BLANK = re.compile(r"\n\s*\Z")
STOP_MODES = ("block", "line", "none")


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _inside_string(text: str) -> bool:
    """Rough but cheap: an odd number of triple quotes means we are inside a docstring."""
    return (text.count('"""') % 2) == 1 or (text.count("'''") % 2) == 1


def block_primer(prompt: str) -> str:
    """When the prompt's last line opens a block, start its body for the model: a newline and the
    indentation one space short (byte-level BPE tokens carry the last space with the next word).
    Without it a small model often closes the block at once and the completion comes out empty."""
    line = prompt.rsplit("\n", 1)[-1]
    if not line.split("#")[0].rstrip().endswith(":"):
        return ""
    return "\n" + " " * (_indent(line) + 3)


class StopRules:
    def __init__(self, prompt: str, stops: list[str], mode: str = "block"):
        self.stops = [s for s in stops if s]
        self.mode = mode
        lines = [line for line in prompt.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        self.base = _indent(last)
        self.opens_block = last.split("#")[0].rstrip().endswith(":")
        self.at_line_start = prompt == "" or prompt.endswith("\n")

    def find_stop(self, text: str) -> int | None:
        """Index in the completion `text` at which it ends, or None to keep going."""
        cut = None
        for stop in self.stops:
            i = text.find(stop)
            if i >= 0 and (cut is None or i < cut):
                cut = i
        rule = self._rule_cut(text[:cut] if cut is not None else text)
        return rule if rule is not None else cut

    def _rule_cut(self, text: str) -> int | None:
        if self.mode == "none":
            return None
        if self.mode == "line":  # the end of the first line that has content
            m = re.search(r"\S[^\n]*\n", text)
            return m.end() - 1 if m else None
        starts = ([0] if self.at_line_start else []) + [m.end() for m in re.finditer("\n", text)]
        blank_run, seen_content = 0, False
        for start in starts:
            end = text.find("\n", start)
            line = text[start:] if end < 0 else text[start:end]
            if not line.strip():
                blank_run += end >= 0  # a blank line counts once it is finished
                if blank_run >= 2 and self.base == 0 and not self.opens_block and seen_content:
                    return start
                continue
            blank_run = 0
            if _inside_string(text[:start]):
                continue
            indent = _indent(line)
            if indent < self.base or (self.opens_block and indent == self.base):
                return start
            seen_content = True
        return None

    def safe_length(self, text: str) -> int:
        """How much of `text` can be shown now without any later stop having to take it back."""
        safe = len(text)
        for stop in self.stops:  # a partial stop string at the end may yet complete
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:k]):
                    safe = min(safe, len(text) - k)
                    break
        text = text[:safe]
        m = TRAILING_BLANK.search(text)
        if m:  # trailing blank lines are dropped if the completion ends here
            return m.start()
        last_line = text[text.rfind("\n") + 1 :]
        if self.mode == "block" and "\n" in text and not last_line.strip():
            return text.rfind("\n")  # this line's indentation, and so the block rule, is not known yet
        return safe

    @staticmethod
    def finish(text: str) -> str:
        """The final form of a completion: trailing blank lines dropped."""
        m = TRAILING_BLANK.search(text)
        return text[: m.start()] if m else text
