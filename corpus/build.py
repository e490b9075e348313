"""Build the default model's training corpus: everyday Python, de-duplicated against our benchmarks.

    python corpus/build.py            # writes corpus/build/everyday.jsonl.gz and prints what it dropped

Sources (see corpus/README.md for commits, versions and licences):
- TheAlgorithms/Python and exercism/python at pinned commits, read with git from clones kept in
  --clones (cloned there, bare, when missing); or from a jsonl of the same files (--everyday PATH);
- keon/algorithms, as published on the package index (`algorithms==1.0.1`, fetched with `pip download`).
The standard library is added at training time (`--corpus ... stdlib`), as the README's command shows.

Nothing an evaluation asks for may be learnt by heart: a file is dropped when it defines a name that a
benchmark prompt defines at the top level (`def is_prime(`, `class Stack:`, HumanEval's entry points), or when it shares a
run of 13 words with a benchmark's prompt or test, the contamination test of the GPT-3 paper."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the benchmarks' prompts are read from the checkout

ALGORITHMS = ("algorithms", "1.0.1", "https://github.com/keon/algorithms", "MIT")
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


def algorithms() -> Iterator[dict]:
    from benchmarks.docstrings import published_wheel

    name, version, home, licence = ALGORITHMS
    with published_wheel(name, version) as wheel:
        for path in sorted(p for p in wheel.namelist() if p.endswith(".py")):
            content = wheel.read(path).decode()
            yield {"repo": home, "package": f"{name}=={version}", "path": path, "license": licence, "content": content}


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def ngrams(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def evaluation_sets() -> tuple[set[str], set[tuple[str, ...]]]:
    """The names the benchmarks ask a model to define, and every 13-word run of their prompts and tests."""
    from benchmarks.docstrings import tasks
    from benchmarks.everyday import CASES

    names, grams = set(), set()
    for prompt, test in CASES:
        names.update(DEFINED.findall(prompt))
        grams |= ngrams(test)
    for task in tasks():
        names.add(task["entry_point"])
        grams |= ngrams(task["prompt"]) | ngrams(task["test"]) | ngrams(task["prompt"] + task["canonical_solution"])
    return names, grams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", default=str(Path.home() / ".cache" / "copilot-repl" / "clones"), help="bare git clones")
    parser.add_argument("--everyday", help="a jsonl(.gz) of the two repositories' files, instead of git")
    parser.add_argument("--out", default=str(HERE / "build" / "everyday.jsonl.gz"))
    args = parser.parse_args()
    names, grams = evaluation_sets()
    if args.everyday:
        with gzip.open(args.everyday, "rt", encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    else:
        records = list(from_git(Path(args.clones)))
    records += list(algorithms())
    kept, dropped = [], {"defines_a_benchmark_name": 0, "shares_13_words": 0, "empty": 0}
    for record in records:
        text = record["content"]
        if not text.strip():
            dropped["empty"] += 1
        elif names & set(DEFINED.findall(text)):
            dropped["defines_a_benchmark_name"] += 1
        elif ngrams(text) & grams:
            dropped["shares_13_words"] += 1
        else:
            kept.append(record)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:  # the same bytes on every rebuild
        f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode())
    out.write_bytes(buffer.getvalue())
    size = sum(len(r["content"].encode()) for r in kept)
    print(f"{out}: {len(kept)} files, {size / 1e6:.2f} MB kept of {len(records)}; dropped {dropped}")


if __name__ == "__main__":
    main()
