"""The dim suggestion after the cursor while typing (prompt_toolkit's auto-suggest).

prompt_toolkit asks for a suggestion after each key, in a thread (`ThreadedAutoSuggest`), and drops
one whose text changed meanwhile; a keystroke never waits for it. Here the model is asked only after
a pause in typing, only when it is loaded (one still writing the suggestion for older text stops at its
next token, and the new one waits for it), and what comes back is shown only above the confidence
threshold. Command lines get the history's suggestion.

After a line that opens a block the suggestion is the block's body, several lines. prompt_toolkit
draws a suggestion on the cursor's line only, so a `BlockSuggestion` keeps its first line there and its
other lines in `rest`, which `rest_lines` draws under the input, dim, where they would go."""

from __future__ import annotations

import time

from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.auto_suggest import AutoSuggest, AutoSuggestFromHistory, Suggestion
from prompt_toolkit.formatted_text import StyleAndTextTuples


class BlockSuggestion(Suggestion):
    """A suggestion of several lines: `text` ends the cursor's line, `rest` is the lines after it."""

    def __init__(self, text: str, rest: str):
        super().__init__(text)
        self.rest = rest


def suggested_text(suggestion: Suggestion | None) -> str:
    """All of a suggestion, as taking it inserts it."""
    if suggestion is None:
        return ""
    rest = getattr(suggestion, "rest", "")
    return suggestion.text + ("\n" + rest if rest else "")


def suggestion_of(text: str) -> Suggestion | None:
    if not text.strip():
        return None
    first, _, rest = text.partition("\n")
    return BlockSuggestion(first, rest) if rest.strip() else Suggestion(first) if first.strip() else None


def rest_lines(suggestion: Suggestion | None, continuation: str) -> StyleAndTextTuples:
    """The lines of a block suggestion after the cursor's line, each behind the continuation prompt."""
    rest = getattr(suggestion, "rest", "")
    fragments: StyleAndTextTuples = []
    for i, line in enumerate(rest.split("\n") if rest else []):
        fragments += [("", "\n")] if i else []
        fragments += [("class:continuation", continuation), ("class:auto-suggestion", line)]
    return fragments


PAUSE = 0.12  # seconds without a key before the model is asked: a fast typist's keys come closer
WATCH = 0.01  # how often the pause looks whether the line changed or was entered


class ModelSuggest(AutoSuggest):
    def __init__(self, session, pause: float = PAUSE):
        self.session, self.pause = session, pause
        self.history = AutoSuggestFromHistory()

    def get_suggestion(self, buffer, document) -> Suggestion | None:
        text = document.text
        if text.lstrip().startswith((":", "/")):
            return self.history.get_suggestion(buffer, document)
        session = self.session
        if not text.strip() or not document.is_cursor_at_the_end or session.engine is None:
            return None
        if session.sampling.suggest == "off":
            return None
        app = get_app_or_none()
        stale = lambda: buffer.document != document or (app is not None and app.is_done)  # noqa: E731
        # The pause, watched: prompt_toolkit joins this thread when the prompt returns, so Enter would
        # otherwise wait for the rest of a pause (and a suggestion) nobody will see.
        deadline = time.monotonic() + self.pause
        while time.monotonic() < deadline and not stale():
            time.sleep(WATCH)
        # The model may still be busy with the suggestion for the text before the last key: that one
        # stops at its next token (it is stale now), so wait for it rather than show nothing at all.
        held = False
        while not held and not stale():
            held = session.busy.acquire(timeout=WATCH)
        if held and stale():
            session.busy.release()
            held = False
        if not held:
            return None  # typed on or entered: this one is for text nobody sees
        try:
            suggested = session.suggestion(text, stale).finish().text
        finally:
            session.busy.release()
        return None if stale() else suggestion_of(suggested)
