"""The command layer (litecli's `special_command` layout): `registry` is the leaf that holds the
commands and their parsers; `models`, `session` and `serve` register them when this package is imported."""

from copilot_repl.commands import models, serve, session  # noqa: F401  (registration)
from copilot_repl.commands.registry import (
    COMMANDS,
    Command,
    Output,
    Parser,
    Quit,
    SessionOutput,
    parse_command,
    run_command,
    split_line,
)

__all__ = [
    "COMMANDS",
    "Command",
    "Output",
    "Parser",
    "Quit",
    "SessionOutput",
    "parse_command",
    "run_command",
    "split_line",
]
