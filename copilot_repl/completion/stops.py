"""Where a completion should end: user stop strings, the code-aware block rule, and repetition.

The block rule: a completion ends when the block the prompt opened is finished, i.e. at the first
line that dedents back to the prompt's level (or, at top level, after a gap of two blank lines). A
prompt that opens no block is a simple statement: the completion ends with that statement's line,
unless the model's line opens a block, which then runs to its end.
Repetition: a completion that writes a line it already wrote (or the prompt holds; a short line
only on its third time), or repeats one short phrase over and over within a line, is cut where the
repetition starts. A tiny model that
starts looping never stops by itself, and people do not accept loops.
Text that a stop might still cut (a trailing run of blank lines, a partial stop string) is held back,
so what has been streamed never has to be taken back.
"""

from __future__ import annotations

import re
from collections import Counter

from copilot_repl.completion.cursor import indent_of, opens_block

TRAILING_BLANK = re.compile(r"\n\s*\Z")
PHRASE_LOOP = re.compile(r"(\w.{1,39}?|.\w.{0,38}?)\1{2,}")  # one short phrase, three times in a row
WORD = re.compile(r"\w+|[^\w\s]")
MIN_REPEATED_LINE = 6  # shorter lines (`pass`, `else:`, `)`) repeat in real code
CLOSES = {")": "(", "]": "[", "}": "{"}
COMPOUND = re.compile(r"(async\s+)?(def|class|if|elif|else|for|while|with|try|except|finally|match|case)\b")
STOP_MODES = ("block", "line", "none")
LEAVES = re.compile(r"(return|raise|continue|break)\b")
HEADER_START = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w*)\Z")  # a header whose name is still being written
TOP_DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", re.M)  # a function or class at the top level


def _inside_string(text: str) -> bool:
    """Rough but cheap: an odd number of triple quotes means we are inside a docstring."""
    return (text.count('"""') % 2) == 1 or (text.count("'''") % 2) == 1


def _colon_at_end(text: str) -> int:
    """Where the colon that ends the last line's code is (a comment may follow it), or -1."""
    start = text.rfind("\n") + 1
    code = text[start:].split("#")[0].rstrip()
    return start + len(code) - 1 if code.endswith(":") else -1


def _in_string(source: str, pos: int, quote: str) -> tuple[int, str]:
    """One step inside a string opened by `quote`: where to read next, and the quote still open ("" once
    it closed; a one-line string cannot go on past its line, whose newline is then read as code)."""
    if source[pos] == "\\":
        return pos + 2, quote
    if source.startswith(quote, pos):
        return pos + len(quote), ""
    if source[pos] == "\n" and len(quote) == 1:
        return pos, ""
    return pos + 1, quote


def _line_ends(source: str, pos: int, stack: list[str], content: bool) -> bool:
    """A newline at `pos` ends the logical line: nothing left open, something written, no backslash."""
    return source[pos] == "\n" and not stack and content and source[pos - 1 : pos] != "\\"


def _statement_end(head: str, text: str) -> int | None:
    """Where in `text` the logical line that `head` (the prompt's last line) begins ends: the first
    newline after some content, outside brackets and strings; or a closing bracket of the wrong kind
    (`[ ... )`), where the model has lost the statement. A rough scanner, enough for a stop."""
    source, pos, stack, quote = head + text, 0, [], ""
    content = bool(head.strip())
    while pos < len(source):
        char, in_text = source[pos], pos >= len(head)
        if quote:
            pos, quote = _in_string(source, pos, quote)
            continue
        if char == "#":  # to the end of the line, whose newline is read next
            pos = source.find("\n", pos)
            if pos < 0:
                return None
            continue
        if char in "\"'":
            quote = source[pos : pos + 3] if source[pos : pos + 3] in ('"""', "'''") else char
            pos, content = pos + len(quote), True
            continue
        if char in "([{":
            stack.append(char)
        elif char in ")]}" and stack and stack[-1] == CLOSES[char]:
            stack.pop()
        elif in_text and (char in ")]}" and stack or char == "\n" and _line_ends(source, pos, stack, content)):
            return pos - len(head)
        content = content or not (char.isspace() or char in "()[]{}")
        pos += 1
    return None


def _phrase_dominates(text: str) -> bool:
    """One three-word phrase, over and over, is more than half of `text` (a loop across lines)."""
    words = WORD.findall(text)
    grams = Counter(zip(words, words[1:], words[2:]))
    top = max(grams.values(), default=0)
    return top >= 4 and top * 3 > len(words) / 2


def repetition_cut(text: str, earlier: set[str]) -> int | None:
    """Where the completion `text` starts repeating itself: a finished line it (or the prompt, whose
    stripped lines are `earlier`) already holds, or a phrase looping inside the last line."""
    seen, start, short = set(earlier), 0, Counter[str]()
    while True:
        end = text.find("\n", start)
        line = (text[start:] if end < 0 else text[start:end]).strip()
        loop = PHRASE_LOOP.search(line)
        if loop:  # cut after the phrase's first copy
            return start + (len(text[start:]) - len(text[start:].lstrip())) + loop.start() + len(loop.group(1))
        if end < 0:
            return None
        if len(line) >= MIN_REPEATED_LINE:
            if line in seen:
                return start
            seen.add(line)
        elif line:  # a short line may repeat, but not a third time
            short[line] += 1
            if short[line] >= 3:
                return start
        if start and _phrase_dominates(text[: end + 1]):
            return start
        start = end + 1


def defined_names(source: str) -> frozenset[str]:
    """The functions and classes `source` defines at its top level."""
    return frozenset(TOP_DEFINITION.findall(source))


def redefinition_cut(text: str, defined: frozenset[str], at_line_start: bool) -> int | None:
    """Where the completion `text` starts defining again, at the top level, a function or class the code
    already has: a small model that has just written (or read) `def load(path):` and its body writes it
    once more, and a REPL or a file never wants the second one."""
    for m in TOP_DEFINITION.finditer(text):
        if m.group(1) in defined and (m.start() > 0 or at_line_start):
            return m.start()
    return None


def answered_lines(context: str, copyable: str | None) -> frozenset[str]:
    """The lines of the session's earlier answers (the context less what the user typed): a model that
    sees its last answer in the context copies it into the next definition that starts alike, and a
    line it already answered with is a repeat like one of the prompt's."""
    if copyable is None:
        return frozenset()
    typed = {line.strip() for line in copyable.splitlines()}
    return frozenset(line.strip() for line in context.splitlines() if len(line.strip()) >= MIN_REPEATED_LINE) - typed


class StopRules:
    def __init__(
        self,
        prompt: str,
        stops: list[str],
        mode: str = "block",
        repeats: bool = True,
        answered: frozenset[str] = frozenset(),
        defined: frozenset[str] = frozenset(),
    ):
        self.stops = [s for s in stops if s]
        self.mode, self.repeats = mode, repeats
        lines = [line for line in prompt.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        self.base = indent_of(last)
        self.opens_block = opens_block(last)
        self.at_line_start = prompt == "" or prompt.endswith("\n")
        self.head = "" if self.at_line_start else prompt.rsplit("\n", 1)[-1]
        self.earlier = {line.strip() for line in lines[-20:] if len(line.strip()) >= MIN_REPEATED_LINE} | answered
        self.defined = defined  # top-level functions and classes of the code: written again is a repetition
        self.reason = "stop"  # why the last cut found by find_stop was made

    def find_stop(self, text: str) -> int | None:
        """Index in the completion `text` at which it ends, or None to keep going."""
        cut = None
        for stop in self.stops:
            i = text.find(stop)
            if i >= 0 and (cut is None or i < cut):
                cut = i
        rule = self._rule_cut(text[:cut] if cut is not None else text)
        cut = rule if rule is not None else cut
        repeat = None
        if self.repeats:  # a cut also ends a line
            kept = text if cut is None else text[:cut] + "\n"
            cuts = (repetition_cut(kept, self.earlier), redefinition_cut(kept, self.defined, self.at_line_start))
            repeat = min((c for c in cuts if c is not None), default=None)
        self.reason = "repetition" if repeat is not None else "stop"
        return repeat if repeat is not None else cut

    def _rule_cut(self, text: str) -> int | None:
        if self.mode == "none":
            return None
        if self.mode == "line":  # the end of the first line that has content
            m = re.search(r"\S[^\n]*\n", text)
            return m.end() - 1 if m else None
        if self.opens_block:
            return self._block_cut(text, 0, self.base, True, self.at_line_start)
        head, offset = self.head, 0
        end = _statement_end(head, text)
        if end is not None and not text[:end].strip():  # the prompt's statement was complete: write the next one
            following = next((line for line in text[end + 1 :].split("\n")[:-1] if line.strip()), None)
            if LEAVES.match(head.strip()) and following is not None and indent_of(following) >= indent_of(head):
                return end  # after `return x`, a line at its level (or deeper) is never run
            head, offset = "", end + 1
            end = _statement_end(head, text[offset:])
            end = None if end is None else end + offset
        if end is None:
            return None
        statement = (head + text[offset:end]).split("\n")
        first = next((line for line in statement if line.strip()), "")
        if not opens_block(statement[-1]):
            return end  # a simple statement ends with its line
        if not COMPOUND.match(first.strip()):  # `x = f(data):` opens nothing: the colon is the model's slip
            return _colon_at_end(text[:end])
        return self._block_cut(text, end + 1, indent_of(first), True, True)

    def _block_cut(self, text: str, offset: int, base: int, opens_block: bool, at_line_start: bool) -> int | None:
        """The block rule on `text[offset:]`, for a block at indentation `base`."""
        starts = ([offset] if at_line_start else []) + [m.end() for m in re.finditer("\n", text) if m.end() > offset]
        blank_run, seen_content = 0, False
        body, returned = None, False  # the body's indentation; whether a line at it left the block (return, raise)
        for start in starts:
            end = text.find("\n", start)
            line = text[start:] if end < 0 else text[start:end]
            if not line.strip():
                blank_run += end >= 0  # a blank line counts once it is finished
                if blank_run >= 2 and base == 0 and not opens_block and seen_content:
                    return start
                continue
            blank_run = 0
            if _inside_string(text[:start]):
                continue
            indent = indent_of(line)
            if indent < base or (opens_block and indent == base):
                return start
            if returned and indent == body:  # nothing after a return at the body's own level is ever run
                return start
            body = indent if body is None else body
            if opens_block and indent == body:
                returned = LEAVES.match(line.strip()) is not None
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
        if self.mode == "block" and not last_line.strip() and ("\n" in text or self.at_line_start):
            return max(0, text.rfind("\n"))  # this line's indentation, and so the block rule, is not known yet
        colon = _colon_at_end(text)
        if self.mode == "block" and not self.opens_block and colon >= 0:
            return self._shown_before(text, colon)  # a colon a simple statement may not keep: wait for its line's end
        start = text.rfind("\n") + 1
        whole_line = start > 0 or self.at_line_start
        if self.repeats and (self._may_repeat(text[:start], last_line.strip()) or whole_line and self._may_redefine(last_line)):
            return self._shown_before(text, start - 1)  # it may be a line already written: show it once it is not
        return safe

    def _shown_before(self, text: str, cut: int) -> int:
        """What can be shown if the completion may end at `cut`: trailing blank lines would go too."""
        m = TRAILING_BLANK.search(text[: max(0, cut)])
        return m.start() if m else max(0, cut)

    def _may_repeat(self, before: str, partial: str) -> bool:
        if not partial:
            return False
        seen = self.earlier | {line.strip() for line in before.splitlines() if len(line.strip()) >= MIN_REPEATED_LINE}
        return any(line.startswith(partial) for line in seen)

    def _may_redefine(self, line: str) -> bool:
        """Is this unfinished line, at the top level, maybe the header of a function or class already defined?"""
        if not self.defined or not line or line[0].isspace():
            return False
        if any(keyword.startswith(line) for keyword in ("def ", "class ", "async def ")):
            return True
        m = HEADER_START.match(line)
        return m is not None and any(name.startswith(m.group(1)) for name in self.defined)

    @staticmethod
    def finish(text: str) -> str:
        """The final form of a completion: trailing blank lines dropped."""
        m = TRAILING_BLANK.search(text)
        return text[: m.start()] if m else text
