"""Tab completion for `:commands`: names, flags, setting names and values, checkpoint names, paths."""

from __future__ import annotations

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from copilot_repl.commands import COMMANDS, Command
from copilot_repl.completion.settings import SETTINGS

SETTING_HINTS = {
    "temperature": ["0", "0.2", "0.7", "1.0"],
    "top_k": ["0", "20", "40"],
    "top_p": ["0.9", "0.95", "1.0"],
    "max_tokens": ["64", "128", "256"],
    "seed": ["random", "0", "1"],
    "stop": ["none", "\\n\\n"],
}
PATH_COMMANDS = {"load", "read", "eval", "save"}
PATH_FLAGS = {"--corpus"}


class ReplCompleter(Completer):
    """Completes the word at the cursor from what the command line so far can take there."""

    def __init__(self, paras_names=lambda: []):
        self.paths = PathCompleter(expanduser=True)
        self.paras_names = paras_names

    def get_completions(self, document: Document, complete_event):
        text = document.text_before_cursor
        if not text.startswith((":", "/")) or "\n" in text:
            return
        words = text[1:].split(" ")
        current = words[-1]
        if len(words) == 1:
            yield from self._commands(text[0], current)
        elif words[0] in ("set", "unset") and len(words) == 2:
            yield from (Completion(s, -len(current), display_meta=SETTINGS[s].help) for s in SETTINGS if s.startswith(current))
        elif words[0] == "set" and len(words) == 3:
            yield from (Completion(v, -len(current)) for v in _setting_values(words[1]) if v.startswith(current))
        elif words[0] in COMMANDS:
            yield from self._arguments(COMMANDS[words[0]], words[-2], current, complete_event)

    @staticmethod
    def _commands(prefix: str, current: str):
        for name, command in COMMANDS.items():
            if name.startswith(current) and not command.shell_only:
                yield Completion(name, -len(current), display=prefix + name, display_meta=command.summary)

    def _arguments(self, command: Command, previous: str, current: str, complete_event):
        """A flag, a flag's value, or a path."""
        options = command.options()
        if current.startswith("-"):
            for option in options:
                yield from (
                    Completion(f, -len(current), display_meta=option.help or "")
                    for f in option.option_strings
                    if f.startswith(current)
                )
            return
        taking = next((o for o in options if previous in o.option_strings), None)
        values = list(taking.choices or []) if taking is not None else []
        if previous == "--tokenizer":
            from copilot_repl.plugins import registered_tokenizers

            values = sorted(registered_tokenizers())
        if values:
            yield from (Completion(v, -len(current)) for v in values if v.startswith(current))
        elif command.name in PATH_COMMANDS or previous in PATH_FLAGS:
            if command.name == "load":
                yield from (
                    Completion(n, -len(current), display_meta="paras/") for n in self.paras_names() if n.startswith(current)
                )
            yield from self.paths.get_completions(Document(current, len(current)), complete_event)


def _setting_values(name: str) -> list[str]:
    """What `:set NAME` takes: its choices, or a few usual values."""
    setting = SETTINGS.get(name)
    return list(setting.choices) if setting is not None and setting.choices else SETTING_HINTS.get(name, [])
