"""Names a completion may read: those the code around the cursor has.

The index and the buffer cache copy whatever followed a match, and a match of two generic tokens
(`if not n`) was enough to start a copy through someone else's function: `def is_even(n):` went on
to `if not nx.is_connected(G):` and 120 tokens of networkx, every token copied lengthening the match
that copied the next. In Python every name a line reads is bound in its file or is a builtin, so a
name that neither the user's code nor the completion so far has is a stranger's, whether a copy
brings it or the model guesses it (`def factorial(n):` then `if len(s) == 2:`). The copies never
bring one, and the model's tokens that would are made less likely (the runner's `stranger_nats`),
as monitor-guided decoding holds a code model to the names static analysis allows.

A name may be new where it is bound, and a line does not say so before it ends: at a line's start (an
assignment's target, unless a call, an attribute or an item follows), on a line that opens with a
binding keyword (`def`, `for`, `import`, `with`, ...), after `as`, and after a `.` (an attribute,
which no scope lists). Inside a comment or a string any word goes.
"""

from __future__ import annotations

import builtins
import keyword
import re
from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from copilot_repl.completion.retrieval import Match
from copilot_repl.completion.sampler import log_softmax

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BINDING_LINE = re.compile(r"\s*(async\s+)?(def|class|for|import|from|with|except|lambda|global|nonlocal)\b")
BOUND_AFTER = re.compile(r"(\bas|\.)\s*\Z")
STRING_OR_COMMENT = re.compile(r"#|[\"']")
BOUND_IN_LINE = re.compile(r"\bas\s+(\w+)|\bfor\s+([\w\s,()]+?)\s+in\b")
WORD_END = re.compile(r"\w*\Z")
WORD_START = re.compile(r"\w+")
NAME_IN = re.compile(r"([^\w\"'#]*)([A-Za-z_]\w*)")  # a piece's first name, after what comes before it
# the tokens checked for a stranger's name: the most likely ones, within this many nats of the best
# (sampling's min_p keeps none below 3 nats under the best, and the best may itself lose `nats`)
LIKELY_WITHIN, LIKELY_MOST = 5.0, 48
ALWAYS = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


class Scope:
    """The names of the user's code (the context and the prompt, `source`; what follows the cursor,
    `after`, where a name may be defined further down; and `project`, those of their own files indexed
    with --index), and what a completion adds."""

    def __init__(self, source: str, after: str = "", project: tuple[str, ...] = ()):
        self.users = sorted(set(IDENTIFIER.findall(source)) | set(IDENTIFIER.findall(after)))
        self.names = sorted(set(self.users) | ALWAYS)
        self.project = project  # sorted once, when the project is indexed: it may hold many names
        self.last_line = source[source.rfind("\n") + 1 :]
        self.open_quotes = _triple_quotes(source) % 2  # the source ends inside a docstring

    def known_start(self, head: str, written: set[str]) -> bool:
        """Does some known name start with `head`? A builtin or keyword counts from two letters on: a
        token of one letter is mostly a name of one letter (`y` is no start of `yield`)."""
        if _starts(self.names if len(head) > 1 else self.users, head) or _starts(self.project, head):
            return True
        return head in ALWAYS or any(name.startswith(head) for name in written)

    def known(self, name: str, written: set[str]) -> bool:
        return name in written or _has(self.names, name) or _has(self.project, name)

    def at(self, completion: str) -> Place | None:
        """Where a completion stands after `completion` (what it wrote so far); None inside a comment
        or a string, where any word goes."""
        if WORD_END.search(self.last_line).group() and WORD_END.fullmatch(completion):  # type: ignore[union-attr]
            return None  # the user began the name: it is theirs, whether the file has it or not
        return self._place(self.last_line, completion)

    def before(self, taken: str) -> Place | None:
        """Where the copies stand while `taken`, the end of the prompt taken back by token healing, is
        written again: before it. The model may finish the user's word as it likes, but a copy never
        turns it into a name the code lacks (`if not n` -> `nx.is_connected(G)` from a project)."""
        if not taken or not self.last_line.endswith(taken):
            return None
        return self._place(self.last_line[: len(self.last_line) - len(taken)], "")

    def within_word(self, completion: str) -> Place | None:
        """Where the copies stand while the completion goes on with the word the user began (where
        `at` leaves the model free): as if the completion had written the whole word."""
        word = WORD_END.search(self.last_line).group()  # type: ignore[union-attr]
        if not word or not WORD_END.fullmatch(completion):
            return None
        return self._place(self.last_line[: len(self.last_line) - len(word)], word + completion)

    def _place(self, last_line: str, completion: str) -> Place | None:
        if (self.open_quotes + _triple_quotes(completion)) % 2:
            return None
        cut = completion.rfind("\n")
        line = completion[cut + 1 :] if cut >= 0 else last_line + completion
        marks = STRING_OR_COMMENT.findall(line)  # read cheaply: a `#`, or an odd count of quotes
        if "#" in marks or marks.count('"') % 2 or marks.count("'") % 2:
            return None
        word = WORD_END.search(line).group()  # type: ignore[union-attr]
        head = line[: len(line) - len(word)]
        # the completion's names: those of its lines before this one, and those this line has bound
        # with `for` or `as` (not its assignment's target: `left = left` reads a name not yet bound)
        written = set(IDENTIFIER.findall(completion[: max(cut, 0)]))
        for bound in BOUND_IN_LINE.findall(head):
            written.update(IDENTIFIER.findall(" ".join(bound)))
        return Place(self, head, word, written)


class Place:
    """One step of a completion: which next pieces would bring a stranger's name."""

    def __init__(self, scope: Scope, line: str, word: str, written: set[str]):
        self.scope, self.line, self.word, self.written = scope, line, word, written

    def stranger(self, piece: str) -> bool:
        """Would `piece` start, go on with, or end a name that is read here and that neither the user's
        code nor the completion so far has? (A name that goes on past the piece is checked as the
        start of one known.)"""
        goes_on, lead, name, rest = _parts(piece)
        if self.word and goes_on:  # it goes on with the word being written
            line, head, rest = self.line, self.word + goes_on, piece[len(goes_on) :]
        elif self.word and not self.scope.known(self.word, self.written) and self._read(self.line, self.word, piece):
            return True  # it ends a stranger's name
        elif name:
            line, head = self.line + self.word + lead, name
        else:
            return False
        if not self._read(line, head, rest):
            return False
        return not (self.scope.known(head, self.written) if rest else self.scope.known_start(head, self.written))

    @staticmethod
    def _read(line: str, name: str, after: str = "") -> bool:
        """Is `name`, after `line`, read (not bound, not an attribute, not a number)? At a line's start
        it is, when `after` it comes a call, an attribute or an item (`main(`, `x.y = `, `x[0] = `)."""
        if name[:1].isdigit() or BINDING_LINE.match(line) or BOUND_AFTER.search(line):
            return False
        return bool(line.strip()) or after.lstrip(" ")[:1] in ("(", ".", "[")


@lru_cache(maxsize=16384)
def _parts(piece: str) -> tuple[str, str, str, str]:
    """A token's text read for names: the word it opens with (that goes on with one being written),
    and its first name with what comes before and after it ("" where there is none)."""
    goes_on = WORD_START.match(piece)
    found = NAME_IN.match(piece)
    if found is None:
        return (goes_on.group() if goes_on else "", "", "", "")
    return (goes_on.group() if goes_on else "", found.group(1), found.group(2), piece[found.end() :])


def _starts(names: Sequence[str], head: str) -> bool:
    """Does a name of the sorted `names` start with `head`?"""
    i = bisect_left(names, head)
    return i < len(names) and names[i].startswith(head)


def _has(names: Sequence[str], name: str) -> bool:
    i = bisect_left(names, name)
    return i < len(names) and names[i] == name


def _triple_quotes(text: str) -> int:
    return text.count('"""') + text.count("'''")


def strangers_less_likely(logp: np.ndarray, place: Place, pieces: list[str], nats: float) -> np.ndarray:
    """The model's `logp` (vocab,) with each likely token that would bring a stranger's name `nats`
    lower (`pieces`: each token's text). A soft push, not a ban: a comprehension's variable or a
    keyword argument is new where it is read, and a name may be bound further down the file."""
    if not nats:
        return logp
    top = np.argpartition(-logp, LIKELY_MOST)[:LIKELY_MOST] if len(logp) > LIKELY_MOST else np.arange(len(logp))
    likely = top[logp[top] >= logp.max() - LIKELY_WITHIN]
    strangers = [i for i in likely.tolist() if i < len(pieces) and place.stranger(pieces[i])]
    if not strangers:
        return logp
    logp = logp.copy()
    logp[strangers] -= nats
    return log_softmax(logp)


def in_scope(match: Match | None, place: Place, pieces: list[str]) -> Match | None:
    """`match` without the followers that would bring a stranger's name: a copy never does."""
    if match is None:
        return None
    keep = np.array([i >= len(pieces) or not place.stranger(pieces[i]) for i in match.ids.tolist()])
    if keep.all():
        return match
    if not keep.any():
        return None
    kept = match.counts[keep]
    count = max(1, round(match.count * kept.sum() / match.counts.sum()))
    return Match(match.length, count, match.ids[keep], kept, match.words)
