"""Short definitions as people type them at a prompt, distilled from the corpus's own files.

At the REPL a person types `def is_even(n):` and wants the body: no docstring, no annotations, a few
lines. The corpus writes most functions otherwise (TheAlgorithms puts a docstring and type hints on
every one, the libraries are long), so a small model rarely sees a bare name and its parameters
followed straight by a short body, which is the one thing the REPL asks of it. This pass keeps each
file's imports, top-level functions and small classes whose bodies are short, with docstrings and
annotations removed (`ast.unparse`, so the layout is uniform), and skips every definition whose name
a benchmark asks for. It adds no text from outside the corpus.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

MAX_BODY_LINES = 8  # a function's body, once its docstring is gone
MAX_CLASS_LINES = 40
TRIVIAL = {"pass", "...", "raise NotImplementedError", "raise NotImplementedError()"}


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _bare(node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Remove the docstring and annotations of a function, in place."""
    if len(node.body) > 1 and _is_docstring(node.body[0]):
        node.body = node.body[1:]
    node.returns = None
    arguments = node.args
    for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg):
        if arg is not None:
            arg.annotation = None


def _short_function(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    _bare(node)
    lines = [line for statement in node.body for line in ast.unparse(statement).splitlines()]
    return 0 < len(lines) <= MAX_BODY_LINES and "\n".join(lines).strip() not in TRIVIAL


def _small_class(node: ast.ClassDef) -> bool:
    if node.body and _is_docstring(node.body[0]):
        node.body = node.body[1:] or [ast.Pass()]
    methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not methods or not all(_short_function(m) for m in methods):
        return False
    return len(ast.unparse(node).splitlines()) <= MAX_CLASS_LINES


def definitions(source: str, skip: set[str]) -> str:
    """The imports and short definitions of one file, bare, two blank lines apart; '' when none."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return ""
    imports, kept = [], []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
        elif getattr(node, "name", None) in skip or any(
            getattr(n, "name", None) in skip for n in ast.walk(node) if isinstance(n, ast.FunctionDef | ast.ClassDef)
        ):
            continue
        elif _short_function(node) or (isinstance(node, ast.ClassDef) and _small_class(node)):
            kept.append(node)
    if not kept:
        return ""
    try:
        parts = [ast.unparse(n) for n in kept]
        head = "\n".join(ast.unparse(n) for n in imports)
    except (ValueError, RecursionError):
        return ""
    return (head + "\n\n\n" if head else "") + "\n\n\n".join(parts) + "\n"


def distilled(records: Iterable[dict], skip: set[str]) -> Iterator[dict]:
    """A record of short definitions for each record that has any, its provenance kept."""
    for record in records:
        text = definitions(record["content"], skip)
        if text:
            yield {**record, "content": text}
