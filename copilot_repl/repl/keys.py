"""Key bindings: Enter submits, Esc-Enter / Ctrl-J add a line, Ctrl-C clears or interrupts."""

from __future__ import annotations

from prompt_toolkit.filters import is_searching
from prompt_toolkit.key_binding import KeyBindings

from copilot_repl.fim import FILL_MARKER


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

    @kb.add("c-c", filter=typing)
    def _(event):
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    return kb
