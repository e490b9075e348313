"""One line of input, handled the same way in the REPL and in batch mode: a `:command`, a fill
(`prefix<FILL>suffix`), or a prompt to complete. What differs between the two faces is only what their
output does (`SessionOutput.prepare`, `shows_low_confidence`)."""

from __future__ import annotations

from copilot_repl.commands import COMMANDS, SessionOutput, run_command, split_line
from copilot_repl.completion.fim import FILL_MARKER


def handle(session, text: str, out: SessionOutput) -> None:
    if text.lstrip().startswith((":", "/")):
        words = split_line(text)
        out.prepare("command", text, COMMANDS.get(words[0]))
        run_command(session, words[0], words[1:], out)
    elif FILL_MARKER in text:
        out.prepare("fill", text)
        prefix, _, suffix = text.partition(FILL_MARKER)
        if not session.trained_for_infill():
            out.info("(this model was not trained with --fim-rate; expect a poor fill)")
        out.show(session.submit(prefix, suffix))
    else:
        out.prepare("prompt", text)
        out.show(session.submit(text, shown_anyway=out.shows_low_confidence))
