"""Valid Python where a completion ends: checked by compiling with `codeop`, never by running."""

from __future__ import annotations

import codeop
import warnings

from copilot_repl.completion.cursor import indent_of, opens_block


def valid_prefix(source: str, text: str, keep: int = 0, token_ends: tuple[int, ...] = (), bodiless: bool = True) -> str | None:
    """The longest part of `text`, at least `keep` long, after which `source` ends closed (see
    `closed`): cut at a line's end, or, when no line's end will do, in the first line at the end of a
    token (`token_ends`) or of a bracket (`ksum_of_payload(data):` keeps `ksum_of_payload(data)`, though
    `):` is one token); None if there is none."""
    end = len(text)
    while end >= keep:
        if closed(source + text[:end], bodiless):
            return text[:end]
        end = text.rfind("\n", 0, end)
        if end < 0:
            break
    first_line = text.find("\n") % (len(text) + 1)
    brackets = {i + 1 for i, char in enumerate(text[:first_line]) if char in ")]}"}
    for end in sorted((e for e in {*token_ends, *brackets} if keep <= e < first_line), reverse=True):
        if closed(source + text[:end], bodiless):
            return text[:end]
    return None


class ClosedLines:
    """How much of a streaming completion can be shown that its end will never take back, when what
    it follows ends closed (the judge then cuts it back to where it is closed): whole lines, up to the
    last after which the code is closed. A small model's line that never closes (`for i in x):`) is then
    never on the screen. Each line's end is checked once, as it comes."""

    def __init__(self, source: str, bodiless: bool):
        self.source, self.bodiless = source, bodiless
        self.checked = 0  # line ends before this are decided
        self.length = 0  # the longest closed part found so far

    def limit(self, text: str) -> int:
        latest = text.rfind("\n")
        end = latest
        while end > self.checked:
            if closed(self.source + text[:end], self.bodiless):
                self.length = end
                break
            end = text.rfind("\n", 0, end)
        self.checked = max(self.checked, latest)
        return self.length


def closed(code: str, bodiless: bool = True) -> bool:
    """Is `code` valid Python that ends outside any string, bracket or statement? A block may stay
    open (`def f():`) when `bodiless`: what follows may fill it (a prompt, a one-line suggestion); a
    completion of whole lines that ends on a header has left it empty."""
    last = code.rstrip().rsplit("\n", 1)[-1]
    if opens_block(last):
        if not bodiless:
            return False
        code = f"{code.rstrip()}\n{' ' * (indent_of(last) + 1)}pass\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return codeop.compile_command(code, symbol="exec") is not None
        except (SyntaxError, ValueError, OverflowError):
            return False


def syntax_ok(source: str) -> bool:
    """Compiles (or is an unfinished prefix of something that could)? `codeop` only compiles, never runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            codeop.compile_command(source, symbol="exec")
            return True
        except (SyntaxError, ValueError, OverflowError):
            return False
