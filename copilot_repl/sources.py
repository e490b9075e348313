"""Where a corpus's documents come from: Python files, folders, git repositories (tracked files only),
`stdlib`, `site`, and datasets as people have them (`.jsonl`, `.jsonl.gz`, `.parquet` with a `content`
or `text` field, The Stack's layout). Each yields (name, raw text or bytes); data.py checks them."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sysconfig
import zlib
from collections.abc import Iterator
from pathlib import Path

from copilot_repl.errors import CorpusError

SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages", ".git"}
TEXT_FIELDS = ("content", "text")
DATASET_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


def python_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        found += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return found


def tracked_python_files(repo: Path) -> list[Path]:
    """The `.py` files git tracks: a repository's virtualenvs and build output are not read."""
    try:
        listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise CorpusError(f"{repo} looks like a git repository, but `git ls-files` failed: {e}") from None
    return sorted(repo / name for name in listed.decode("utf-8", "replace").split("\0") if name.endswith(".py"))


def _skip(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


def _records(path: Path, skipped: dict[str, int]) -> Iterator[str]:
    """The text field of each line of a `.jsonl` or `.jsonl.gz` file; bad lines are counted and skipped."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    _skip(skipped, "bad_json_line")
                    continue
                text = next((record[f] for f in TEXT_FIELDS if isinstance(record, dict) and isinstance(record.get(f), str)), None)
                if text is None:
                    _skip(skipped, "no_text_field")
                    continue
                yield text
    except (EOFError, gzip.BadGzipFile, zlib.error):
        _skip(skipped, "truncated_file")  # what was read before the damage is kept
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None


def _parquet_rows(path: Path) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CorpusError(f"reading {path.name} needs pyarrow: pip install 'copilot-repl[parquet]'") from None
    try:
        table = pq.ParquetFile(path)
        column = next((f for f in TEXT_FIELDS if f in table.schema_arrow.names), None)
        if column is None:
            raise CorpusError(f"{path} has no {' or '.join(TEXT_FIELDS)} column (columns: {', '.join(table.schema_arrow.names)})")
        for group in range(table.num_row_groups):  # one row group in memory at a time
            yield from (t for t in table.read_row_group(group, columns=[column]).column(0).to_pylist() if isinstance(t, str))
    except CorpusError:
        raise
    except Exception as e:  # pyarrow raises its own error types for damaged files
        raise CorpusError(f"{path} is not a readable parquet file: {e}") from None


def documents(item: str, skipped: dict[str, int]) -> Iterator[tuple[Path, str | None]]:
    """(path, text) for dataset records, (path, None) for a file to be read and checked by the caller."""
    if item == "stdlib":
        yield from ((p, None) for p in python_files(Path(sysconfig.get_paths()["stdlib"])))
        return
    if item == "site":
        site = Path(sysconfig.get_paths()["purelib"])
        yield from ((p, None) for p in sorted(site.rglob("*.py")) if "__pycache__" not in p.parts)
        return
    path = Path(item).expanduser()
    if path.is_dir():
        files = tracked_python_files(path) if (path / ".git").exists() else python_files(path)
        yield from ((p, None) for p in files)
    elif path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
        yield from ((path, text) for text in _records(path, skipped))
    elif path.is_file() and path.suffix == ".parquet":
        yield from ((path, text) for text in _parquet_rows(path))
    elif path.is_file():
        yield path, None
    elif path.exists():
        raise CorpusError(f"corpus item {item!r} is not a regular file or folder")
    else:
        raise CorpusError(f"corpus item {item!r} does not exist (give files, folders, 'stdlib', 'site' or datasets)")
