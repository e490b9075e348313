"""Build the default model's training corpus: everyday Python and library code, de-duplicated against our benchmarks.

    python corpus/build.py    # writes corpus/build/{everyday,library}.jsonl.gz, library-NOTICE.md; prints what it dropped

Sources (see corpus/README.md for commits, versions and licences):
- TheAlgorithms/Python and exercism/python at pinned commits, read with git from clones kept in
  --clones (cloned there, bare, when missing); or from a jsonl of the same files (--everyday PATH);
- keon/algorithms, as published on the package index (`algorithms==1.0.1`, fetched with `pip download`);
- 26 MIT or BSD libraries as published there (`LIBRARIES`), their tests left out: library.jsonl.gz.
The standard library is added at training time (`--corpus ... stdlib`), as the README's command shows.

Nothing an evaluation asks for may be learnt by heart: a file is dropped when it defines a name that a
benchmark prompt defines at the top level (`def is_prime(`, `class Stack:`, HumanEval's entry points), or when it shares a
run of 13 words with a benchmark's prompt or test, the contamination test of the GPT-3 paper."""

from __future__ import annotations

import argparse
import ast
import gzip
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the benchmarks' prompts are read from the checkout

ALGORITHMS = ("algorithms", "1.0.1", "https://github.com/keon/algorithms", "MIT")
LIBRARIES = (  # pure-Python packages as published on the package index, MIT or BSD: library code for breadth
    ("networkx", "3.6.1", "BSD-3-Clause"),
    ("pydantic", "2.14.4", "MIT"),
    ("jedi", "0.20.1", "MIT"),
    ("werkzeug", "3.1.9", "BSD-3-Clause"),
    ("boltons", "26.2.0", "BSD-3-Clause"),
    ("jinja2", "3.1.6", "BSD-3-Clause"),
    ("pyparsing", "3.3.3", "MIT"),
    ("click", "8.5.1", "BSD-3-Clause"),
    ("typer", "0.29.2", "MIT"),
    ("bottle", "0.13.4", "MIT"),
    ("flask", "3.1.3", "BSD-3-Clause"),
    ("httpx", "0.29.0", "BSD-3-Clause"),
    ("parso", "0.8.7", "MIT"),
    ("markdown-it-py", "4.3.0", "MIT"),
    ("more-itertools", "11.2.1", "MIT"),
    ("mistune", "3.4.0", "BSD-3-Clause"),
    ("attrs", "26.1.0", "MIT"),
    ("marshmallow", "4.4.0", "MIT"),
    ("tabulate", "0.10.0", "MIT"),
    ("toolz", "1.2.0", "BSD-3-Clause"),
    ("pycodestyle", "2.15.0", "MIT"),
    ("pyflakes", "4.1.0", "MIT"),
    ("cachetools", "8.0.2", "MIT"),
    ("humanize", "4.17.0", "MIT"),
    ("itsdangerous", "2.2.0", "BSD-3-Clause"),
    ("schedule", "1.2.2", "MIT"),
)
TEST_FOLDERS = {"test", "tests", "testing"}
NOTICE_FILE = re.compile(r"^(LICEN[CS]E|NOTICE|COPYING)", re.I)
EXERCISES = r"^exercises/.*(/\.meta/(example|exemplar)\.py|_test\.py)$"  # each exercise's solution and tests
REPOSITORIES = (  # repository, commit, which files, licence
    ("TheAlgorithms/Python", "f5988cc09713315817df6a7e327e258013a94440", r"\.py$", "MIT"),
    ("exercism/python", "9eb657d4507d91efef99f484e7f2a1f4074911b5", EXERCISES, "MIT"),
)
NGRAM = 13
DEFINED = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)  # at the top level, as prompts define them


def git(clone: Path, *args: str) -> str:
    """git's output, its line ends as stored (a file's CRLF is kept, as the dataset has it)."""
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, check=True).stdout.decode()


def from_git(clones: Path) -> Iterator[dict]:
    """The chosen files of each repository at its pinned commit, in path order."""
    for repo, commit, pattern, licence in REPOSITORIES:
        clone = clones / repo.replace("/", "+")
        if not clone.exists():
            subprocess.run(["git", "clone", "--quiet", "--bare", f"https://github.com/{repo}", str(clone)], check=True)
        for path in git(clone, "ls-tree", "-r", "--name-only", commit).splitlines():
            if re.search(pattern, path):
                content = git(clone, "show", f"{commit}:{path}")
                yield {"repo": repo, "commit": commit, "path": path, "license": licence, "content": content}


def wheel_modules(name: str, version: str, licence: str, keep: Callable[[str], bool] = bool, **record: str) -> Iterator[dict]:
    """The `.py` files of a package as its published wheel holds them (those `keep` accepts)."""
    from benchmarks.docstrings import published_wheel

    with published_wheel(name, version) as wheel:
        for path in sorted(p for p in wheel.namelist() if p.endswith(".py") and keep(p)):
            content = wheel.read(path).decode()
            yield record | {"package": f"{name}=={version}", "path": path, "license": licence, "content": content}


def algorithms() -> Iterator[dict]:
    name, version, home, licence = ALGORITHMS
    return wheel_modules(name, version, licence, repo=home)


def libraries() -> Iterator[dict]:
    """Each library's own modules, not its tests."""
    for name, version, licence in LIBRARIES:
        yield from wheel_modules(name, version, licence, lambda path: not TEST_FOLDERS & set(path.split("/")))


def library_notices() -> str:
    """Each library's licence and notice files, as its wheel ships them: what a model or index built
    from them must carry beside it."""
    from benchmarks.docstrings import published_wheel

    sections = []
    for name, version, licence in LIBRARIES:
        with published_wheel(name, version) as wheel:
            files = [p for p in sorted(wheel.namelist()) if ".dist-info/" in p and NOTICE_FILE.match(p.rsplit("/", 1)[-1])]
            texts = [wheel.read(p).decode().replace("\r\n", "\n").strip() for p in files]
        sections.append(f"## {name} {version} ({licence}, on PyPI)\n\n" + "\n\n".join(f"```\n{t}\n```" for t in texts))
    return "\n\n".join(sections) + "\n"


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def ngrams(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def evaluation_sets() -> tuple[set[str], set[tuple[str, ...]]]:
    """The names the benchmarks ask a model to define, and every 13-word run of their prompts, tests and
    reference answers."""
    from benchmarks.docstrings import tasks
    from benchmarks.everyday import CASES, REFERENCES

    names, grams = set(), set()
    for prompt, test in CASES:
        names.update(DEFINED.findall(prompt))
        grams |= ngrams(test) | ngrams(prompt + REFERENCES[prompt])
    for task in tasks():
        names.add(task["entry_point"])
        grams |= ngrams(task["prompt"]) | ngrams(task["test"]) | ngrams(task["prompt"] + task["canonical_solution"])
    return names, grams


CLOSING_QUOTES = re.compile(r"(\"\"\"|\'\'\')\s*$")
DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def docstring_lines(tree: ast.Module) -> Iterator[tuple[int, int, bool]]:
    """The first and last line (0-based) of every docstring that spans three lines or more, and whether code follows it."""
    for node in ast.walk(tree):
        if isinstance(node, DOCSTRING_OWNERS) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                if first.end_lineno and first.end_lineno - first.lineno >= 2:
                    yield first.lineno - 1, first.end_lineno - 1, len(node.body) > 1


def without_doctests(source: str) -> str:
    """`source` with the interactive examples (`>>>` lines and the output under them) cut from its docstrings.

    TheAlgorithms writes a dozen examples before nearly every body, so a model trained on it answers
    `def fib(n):` with a docstring that runs out of tokens before the code starts. The prose of a docstring
    stays, and so do the examples' bodies' tests elsewhere; a file that would not parse afterwards is kept whole.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    dropped: set[int] = set()
    for start, end, code_follows in docstring_lines(tree):
        in_example = False
        for i in range(start + 1, end + 1):
            stripped = lines[i].strip()
            if stripped.startswith(">>>"):
                in_example = True
            elif not stripped or (i == end and CLOSING_QUOTES.fullmatch(stripped)):
                in_example = False
            if in_example:
                dropped.add(i)
        if end in dropped:  # the last example's output shares the closing line: keep the quotes
            closing = CLOSING_QUOTES.search(lines[end])
            if not closing:
                return source
            dropped.discard(end)
            indent = lines[end][: len(lines[end]) - len(lines[end].lstrip())]
            lines[end] = indent + closing.group(1) + "\n"
        last = end - 1  # no blank lines left just above the closing quotes
        while last > start and (last in dropped or not lines[last].strip()):
            dropped.add(last)
            last -= 1
        for i in range(start + 2, last):  # nor two blank lines where an example was
            previous = max((j for j in range(start + 1, i) if j not in dropped), default=None)
            if not lines[i].strip() and previous is not None and not lines[previous].strip():
                dropped.add(i)
        if last == start and code_follows and lines[start].strip().lstrip("rRuU") in ('"""', "'''"):
            dropped.update(range(start, end + 1))  # nothing but examples: no docstring at all
    shaped = "".join(line for i, line in enumerate(lines) if i not in dropped)
    try:
        ast.parse(shaped)
    except SyntaxError:
        return source
    return shaped


def shaped(text: str) -> str:
    """One kind of line end (the CRLF files taught the model to write `\\r`), and docstrings without examples."""
    return without_doctests(text.replace("\r\n", "\n").replace("\r", "\n"))


def kept_records(records: list[dict], names: set[str], grams: set[tuple[str, ...]]) -> tuple[list[dict], dict]:
    """The records shaped, without the empty ones and those an evaluation would find learnt by heart."""
    kept, dropped = [], {"defines_a_benchmark_name": 0, "shares_13_words": 0, "empty": 0}
    for record in records:
        text = record["content"] = shaped(record["content"])
        if not text.strip():
            dropped["empty"] += 1
        elif names & set(DEFINED.findall(text)):
            dropped["defines_a_benchmark_name"] += 1
        elif ngrams(text) & grams:
            dropped["shares_13_words"] += 1
        else:
            kept.append(record)
    return kept, dropped


def write(out: Path, records: list[dict], dropped: dict, of: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:  # the same bytes on every rebuild
        f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode())
    out.write_bytes(buffer.getvalue())
    size = sum(len(r["content"].encode()) for r in records)
    print(f"{out}: {len(records)} files, {size / 1e6:.2f} MB kept of {of}; dropped {dropped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", default=str(Path.home() / ".cache" / "copilot-repl" / "clones"), help="bare git clones")
    parser.add_argument("--everyday", help="a jsonl(.gz) of the two repositories' files, instead of git")
    parser.add_argument("--out", default=str(HERE / "build"), help="folder for everyday.jsonl.gz and library.jsonl.gz")
    args = parser.parse_args()
    names, grams = evaluation_sets()
    if args.everyday:
        with gzip.open(args.everyday, "rt", encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    else:
        records = list(from_git(Path(args.clones)))
    records += list(algorithms())
    for name, chosen in (("everyday", records), ("library", list(libraries()))):
        kept, dropped = kept_records(chosen, names, grams)
        write(Path(args.out) / f"{name}.jsonl.gz", kept, dropped, len(chosen))
    (Path(args.out) / "library-NOTICE.md").write_text(library_notices())  # for the shipped folder's NOTICE.md


if __name__ == "__main__":
    main()
