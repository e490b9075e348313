"""The dim suggestion after the cursor while typing (prompt_toolkit's auto-suggest).

prompt_toolkit asks for a suggestion after each key, in a thread (`ThreadedAutoSuggest`), and drops
one whose text changed meanwhile; a keystroke never waits for it. Here the model is asked only after
a pause in typing, only when it is loaded and free (an Enter completion has it otherwise), and what
comes back is shown only above the confidence threshold. Command lines get the history's suggestion."""

from __future__ import annotations

import time

from prompt_toolkit.auto_suggest import AutoSuggest, AutoSuggestFromHistory, Suggestion

PAUSE = 0.12  # seconds without a key before the model is asked: a fast typist's keys come closer


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
        time.sleep(self.pause)
        if buffer.document != document or not session.busy.acquire(blocking=False):
            return None  # typed on (this one is stale), or the model is busy
        try:
            suggested = session.suggestion(text).finish().text
        finally:
            session.busy.release()
        return Suggestion(suggested) if suggested.strip() and "\n" not in suggested else None
