"""Streaming a completion to a terminal: highlighted as Python, in italics so it stands apart from
what the user typed, then one dim statistics line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from pygments.lexers.python import PythonLexer
from pygments.token import Comment, Keyword, Name, Number, Operator, String

RESET, ITALIC, DIM = "\x1b[0m", "\x1b[3m", "\x1b[2m"
COLOURS = [  # most specific first
    (Name.Function, "38;5;75"),
    (Name.Class, "38;5;80"),
    (Name.Builtin, "38;5;116"),
    (Name.Decorator, "38;5;179"),
    (Keyword, "38;5;170"),
    (String, "38;5;150"),
    (Number, "38;5;209"),
    (Comment, "38;5;244"),
    (Operator, "38;5;252"),
]
_lexer = PythonLexer(stripnl=False, ensurenl=False)


@contextlib.contextmanager
def typeahead_kept(stream: TextIO = sys.stdin) -> Iterator[None]:
    """While output streams, keys typed ahead are not echoed into it, and Enter is not turned into a
    newline by the terminal: the next prompt receives them exactly as typed, so an early Enter submits.
    Ctrl-C still interrupts (signals stay on)."""
    try:
        import termios
    except ImportError:  # not POSIX
        yield
        return
    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError, ValueError, AttributeError):  # not a terminal
        yield
        return
    quiet = list(saved)
    quiet[0] &= ~termios.ICRNL  # input flags
    quiet[3] &= ~(termios.ECHO | termios.ICANON)  # local flags
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def _sgr(token_type) -> str:
    for kind, code in COLOURS:
        if token_type in kind:
            return code
    return "38;5;253"


def highlight_range(text: str, start: int, end: int) -> str:
    """ANSI-coloured `text[start:end]`, lexed in the context of all of `text`."""
    out = []
    for index, token_type, value in _lexer.get_tokens_unprocessed(text):
        lo, hi = max(index, start), min(index + len(value), end)
        if lo < hi:
            piece = text[lo:hi]
            out.append(piece if not piece.strip() else f"\x1b[{_sgr(token_type)}m{piece}")
    return ITALIC + "".join(out) + RESET


class StreamPrinter:
    """Writes completion pieces as they come; each piece is coloured using the text before it
    (at most the last `CONTEXT` characters, from a line start, so long completions stay fast)."""

    CONTEXT = 2000

    def __init__(self, prompt: str, out: TextIO = sys.stdout, colour: bool = True):
        self.text, self.out, self.colour = prompt, out, colour

    def write(self, piece: str) -> None:
        self.text += piece
        if len(self.text) > 2 * self.CONTEXT:
            cut = self.text.find("\n", len(self.text) - self.CONTEXT, len(self.text) - len(piece))
            self.text = self.text[cut + 1 :] if cut >= 0 else self.text[-self.CONTEXT :]
        start = len(self.text) - len(piece)
        self.out.write(highlight_range(self.text, start, len(self.text)) if self.colour else piece)
        self.out.flush()


def stats_line(result, colour: bool = True, low: float = 0.0) -> str:
    """Tokens, speed, why it stopped and how confident it is: marked when below `low`, and when empty, why."""
    confidence = result.candidates[0].confidence
    mark = " (low: likely wrong)" if confidence < low and result.text.strip() else ""
    speed = f"{result.tokens} tokens, {result.tokens_per_second:.0f} tok/s"
    line = f"[{speed}, {result.stop_reason}, confidence {confidence:.2f}{mark}]"
    if result.why_empty:
        line += f" nothing to complete: {result.why_empty}"
    return f"{DIM}{line}{RESET}" if colour else line
