from __future__ import annotations

import numpy as np
import pytest

from copilot_repl import data
from copilot_repl.errors import CorpusError
from copilot_repl.sources import documents
from copilot_repl.tokenizer import tokenizer_class


def test_gather_is_deterministic_and_splits_by_file(corpus_dir):
    a, b = data.gather([str(corpus_dir)]), data.gather([str(corpus_dir)])
    train, val = list(a.texts("train")), list(a.texts("val"))
    assert a.fingerprint == b.fingerprint and train == list(b.texts("train")) and val == list(b.texts("val"))
    assert val and train and not set(val) & set(train)
    assert a.describe()["train_bytes"] == sum(len(t.encode()) for t in train)


def test_gather_checks_files(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "copy.py").write_text("x = 1\n")
    (tmp_path / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "empty.py").write_text("  \n")
    (tmp_path / "notes.txt").write_text("not python")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text("assert True\n")
    corpus = data.gather([str(tmp_path)])
    assert corpus.skipped == {"duplicate": 1, "not_utf8": 1, "empty_or_binary": 1}
    train, val = list(corpus.texts("train")), list(corpus.texts("val"))
    assert train == val == ["x = 1\n"]  # a one-line single file: its last line is both


@pytest.mark.parametrize("make", ["missing", "empty_dir", "only_text", "device"])
def test_unusable_corpus_is_a_clear_error(tmp_path, make):
    target = {"missing": tmp_path / "nope", "empty_dir": tmp_path, "device": "/dev/zero"}.get(make, tmp_path)
    if make == "only_text":
        (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(CorpusError):
        data.gather([str(target)])


def test_stdlib_corpus_skips_tests():
    files = [path for path, _ in documents("stdlib", {})]
    assert len(files) > 300
    assert not any({"test", "tests", "idle_test"} & set(f.parts) for f in files)


def test_token_cache_is_reused_and_rebuilt_when_the_corpus_changes(tmp_path):
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20)
    tok_cls = tokenizer_class("char")
    corpus = data.gather([str(tmp_path)])
    tok, tok_dir = data.cached_tokenizer(corpus, tok_cls, None)
    first = data.token_cache(corpus, tok, tok.fingerprint(tok_dir))
    again = data.token_cache(corpus, tok, tok.fingerprint(tok_dir))
    assert not first.reused and again.reused
    assert first.train.dtype == np.uint16 and np.array_equal(first.train, again.train)
    assert tok.eot_id in set(first.train.tolist())  # files are joined with end-of-text
    (tmp_path / "m0.py").write_text("print('changed')\n")
    changed = data.gather([str(tmp_path)])
    assert changed.fingerprint != corpus.fingerprint
    assert not data.token_cache(changed, tok, tok.fingerprint(tok_dir)).reused


def test_a_weighted_source_is_trained_on_more_often_and_indexed_once(tmp_path, corpus_dir):
    small = tmp_path / "small"
    small.mkdir()
    (small / "a.py").write_text("def is_even(n):\n    return n % 2 == 0\n")
    plain, weighted = data.gather([str(corpus_dir), str(small)]), data.gather([str(corpus_dir), f"{small}:3"])
    assert weighted.fingerprint != plain.fingerprint and list(weighted.texts("train")) == list(plain.texts("train"))
    assert list(weighted.repeats()) == [(small / "a.py").read_text()] * 2 and not list(plain.repeats())
    tok = tokenizer_class("char")
    tokenizer, tok_dir = data.cached_tokenizer(weighted, tok, None)
    splits = data.token_cache(weighted, tokenizer, tokenizer.fingerprint(tok_dir))
    once = data.token_cache(plain, tokenizer, tokenizer.fingerprint(tok_dir))
    assert splits.unique_train == len(once.train) and np.array_equal(splits.train[: splits.unique_train], once.train)
    assert len(splits.train) == len(once.train) + 2 * (len(tokenizer.encode((small / "a.py").read_text())) + 1)
    odd = tmp_path / "named:2"  # a path that exists as written is read as it is
    odd.mkdir()
    (odd / "b.py").write_text("y = 2\n")
    assert data.weighted(str(odd)) == (str(odd), 1) and data.weighted("stdlib:4") == ("stdlib", 4)


def test_datasets_as_people_have_them(tmp_path):
    """jsonl, jsonl.gz and a git repository's tracked files; bad records are counted, never fatal."""
    import gzip
    import json
    import subprocess

    records = [{"content": f"def f{i}(x):\n    return x + {i}\n"} for i in range(5)] + [{"text": "import os\n"}]
    lines = [json.dumps(r) for r in records] + ["{not json", json.dumps({"stars": 3})]
    (tmp_path / "stack.jsonl").write_text("\n".join(lines) + "\n")
    with gzip.open(tmp_path / "stack.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps({"content": f"class C{i}:\n    pass\n"}) for i in range(4)))
    corpus = data.gather([str(tmp_path / "stack.jsonl"), str(tmp_path / "stack.jsonl.gz")])
    assert len(list(corpus.texts())) == 10 == corpus.describe()["train_files"] + corpus.describe()["val_files"]
    assert corpus.skipped == {"bad_json_line": 1, "no_text_field": 1}

    whole = (tmp_path / "stack.jsonl.gz").read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    cut = data.gather([str(tmp_path / "cut.jsonl.gz"), str(tmp_path / "stack.jsonl")])
    assert cut.skipped.get("truncated_file") == 1

    repo = tmp_path / "repo"
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / "app.py").write_text("def main():\n    return 0\n")
    (repo / ".venv" / "lib" / "vendored.py").write_text("x = 1\n")  # untracked: never read
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "app.py"], check=True)
    assert [p.name for p, _ in documents(str(repo), {})] == ["app.py"]


def test_parquet_without_pyarrow_names_the_extra(tmp_path):
    path = tmp_path / "stack.parquet"
    path.write_bytes(b"PAR1")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(CorpusError, match=r"copilot-repl\[parquet\]"):
            data.gather([str(path)])
    else:
        with pytest.raises(CorpusError, match="not a readable parquet file"):
            data.gather([str(path)])
