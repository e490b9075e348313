"""Tab completion for `:commands`: names, flags, setting names and values, checkpoint names, paths."""

from __future__ import annotations

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from copilot_repl.commands import COMMANDS
from copilot_repl.settings import SETTINGS

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
    def __init__(self, paras_names=lambda: []):
        self.paths = PathCompleter(expanduser=True)
        self.paras_names = paras_names

    def get_completions(self, document: Document, complete_event):
        text = document.text_before_cursor
        if not text.startswith((":", "/")) or "\n" in text:
            return
        prefix, words = text[0], text[1:].split(" ")
        current = words[-1]
        if len(words) == 1:
            for name in COMMANDS:
                if name.startswith(current) and not COMMANDS[name].shell_only:
                    yield Completion(name, -len(current), display=prefix + name, display_meta=COMMANDS[name].summary)
            return
        name = words[0]
        if name not in COMMANDS:
            return
        previous = words[-2]
        if name in ("set", "unset") and len(words) == 2:
            yield from (Completion(s, -len(current), display_meta=SETTINGS[s].help) for s in SETTINGS if s.startswith(current))
            return
        if name == "set" and len(words) == 3:
            values = (
                SETTINGS[previous].choices
                if previous in SETTINGS and SETTINGS[previous].choices
                else SETTING_HINTS.get(previous, [])
            )
            yield from (Completion(v, -len(current)) for v in values if v.startswith(current))
            return
        parser = COMMANDS[name].parser()
        if current.startswith("-"):
            for action in parser._actions:
                for flag in action.option_strings:
                    if flag.startswith(current):
                        yield Completion(flag, -len(current), display_meta=action.help or "")
            return
        taking = next((a for a in parser._actions if previous in a.option_strings), None)
        if taking is not None and taking.choices:
            yield from (Completion(c, -len(current)) for c in taking.choices if c.startswith(current))
            return
        if previous == "--tokenizer":
            from copilot_repl.plugins import registered_tokenizers

            yield from (Completion(t, -len(current)) for t in sorted(registered_tokenizers()) if t.startswith(current))
            return
        if name in PATH_COMMANDS or previous in PATH_FLAGS:
            if name == "load":
                yield from (
                    Completion(n, -len(current), display_meta="paras/") for n in self.paras_names() if n.startswith(current)
                )
            yield from self.paths.get_completions(Document(current, len(current)), complete_event)
