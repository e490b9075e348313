"""Input highlighting: Python for prompts, a small command lexer for `:` and `/` lines."""

from __future__ import annotations

from prompt_toolkit.document import Document
from prompt_toolkit.lexers import Lexer, PygmentsLexer
from pygments.lexers.python import PythonLexer


class InputLexer(Lexer):
    def __init__(self):
        self.python = PygmentsLexer(PythonLexer)

    def lex_document(self, document: Document):
        if not document.text.lstrip().startswith((":", "/")):
            return self.python.lex_document(document)
        lines = document.lines

        def get_line(n: int):
            if n >= len(lines):
                return []
            out = []
            for i, word in enumerate(lines[n].split(" ")):
                style = "class:command" if i == 0 and n == 0 else "class:flag" if word.startswith("-") else "class:argument"
                out += [(style, word), ("", " ")]
            return out[:-1]

        return get_line
