"""Valid Python where a completion ends: checked by compiling with `codeop`, never by running."""

from __future__ import annotations

import codeop
import warnings

from copilot_repl.completion.cursor import indent_of, opens_block


def valid_prefix(source: str, text: str, keep: int = 0, token_ends: tuple[int, ...] = ()) -> str | None:
    """The longest part of `text`, at least `keep` long, after which `source` ends closed (see
    `closed`): cut at a line's end, or, when no line's end will do, at the end of a token of the first
    line (`token_ends`: `ksum_of_payload(data):` keeps `ksum_of_payload(data)`); None if there is none."""
    end = len(text)
    while end >= keep:
        if closed(source + text[:end]):
            return text[:end]
        end = text.rfind("\n", 0, end)
        if end < 0:
            break
    first_line = text.find("\n") % (len(text) + 1)
    for end in sorted((e for e in set(token_ends) if keep <= e < first_line), reverse=True):
        if closed(source + text[:end]):
            return text[:end]
    return None


def closed(code: str) -> bool:
    """Is `code` valid Python that ends outside any string, bracket or statement? A block may stay
    open (`def f():`): what follows may fill it."""
    last = code.rstrip().rsplit("\n", 1)[-1]
    if opens_block(last):
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
