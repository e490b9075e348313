"""Prompt history in a file under the user's state directory; a broken file never stops the REPL."""

from __future__ import annotations

import os
from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory


def history_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "copilot-repl" / "history"


class SafeFileHistory(FileHistory):
    """FileHistory that degrades to memory when its file cannot be read or written."""

    def load_history_strings(self):
        try:
            yield from super().load_history_strings()
        except (OSError, UnicodeDecodeError, ValueError):
            return

    def store_string(self, string: str) -> None:
        try:
            Path(str(self.filename)).parent.mkdir(parents=True, exist_ok=True)
            super().store_string(string)
        except OSError:
            pass


def make_history(enabled: bool) -> History:
    if not enabled or os.environ.get("COPILOT_REPL_NO_HISTORY"):
        return InMemoryHistory()
    return SafeFileHistory(str(history_path()))
