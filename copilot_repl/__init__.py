"""copilot-repl: train a small GPT on Python code and use it as a completer."""

__version__ = "0.1.0"
