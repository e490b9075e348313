"""Key bindings: Enter submits, Esc-Enter / Ctrl-J add a line, Ctrl-C clears or interrupts; Tab, Right or
Ctrl-E take a suggestion (all its lines), Ctrl-Right or Alt-F a word of it, Esc dismisses it."""

from __future__ import annotations

import re

from prompt_toolkit.filters import Condition, is_searching
from prompt_toolkit.key_binding import KeyBindings

from copilot_repl.completion.fim import FILL_MARKER
from copilot_repl.repl.suggest import suggested_text


def _newline_keeping_indent(buffer) -> None:
    line = buffer.document.current_line_before_cursor
    indent = line[: len(line) - len(line.lstrip())]
    if line.rstrip().endswith(":"):
        indent += "    "
    buffer.insert_text("\n" + indent)


def key_bindings() -> KeyBindings:
    kb = KeyBindings()

    typing = ~is_searching  # while Ctrl-R searches, Enter and friends belong to the search

    @kb.add("enter", filter=typing)
    def _(event):
        buffer = event.current_buffer
        if buffer.complete_state and buffer.complete_state.current_completion:
            buffer.apply_completion(buffer.complete_state.current_completion)
            return
        buffer.validate_and_handle()

    @kb.add("escape", "enter", filter=typing)
    @kb.add("c-j", filter=typing)
    def _(event):
        _newline_keeping_indent(event.current_buffer)

    @kb.add("c-]", filter=typing)
    def _(event):
        event.current_buffer.insert_text(FILL_MARKER)

    @kb.add("escape", "n", filter=typing)  # Alt-N: the next best-of-n candidate
    def _(event):
        event.app.exit(result=":next")

    @Condition
    def suggested() -> bool:
        from prompt_toolkit.application import get_app

        buffer = get_app().current_buffer
        return bool(suggested_text(buffer.suggestion)) and buffer.document.is_cursor_at_the_end

    @kb.add("tab", filter=typing & suggested)
    @kb.add("right", filter=typing & suggested)  # over prompt_toolkit's own, which takes the cursor's line only
    @kb.add("c-e", filter=typing & suggested)
    def _(event):
        event.current_buffer.insert_text(suggested_text(event.current_buffer.suggestion))

    @kb.add("c-right", filter=typing & suggested)  # a word of it, as Alt-F does
    def _(event):
        buffer = event.current_buffer
        words = re.findall(r"\W*\w+|\W+", suggested_text(buffer.suggestion))
        buffer.insert_text(words[0])

    @kb.add("escape", filter=typing & suggested)
    def _(event):
        event.current_buffer.suggestion = None

    @kb.add("c-c", filter=typing)
    def _(event):
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    return kb
