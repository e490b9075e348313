"""python -m benchmarks.fit_suggestions [--model DIR]: fit the retrieval gate and the confidence of a
model away from home, and save both in its checkpoint.json.

The gate is fitted where it must work: files of a package that no corpus holds, read whole and cut into
single definitions with no file around them (a short prompt at the REPL), with the package's other
files as the user's project (`--index`). The confidence is fitted on simulated typing of those files
through `serve`'s route, with that gate, with and without the project indexed. Both use `FIT_PACKAGE`, never
the package the keystroke benchmark types (`TEST_PACKAGE`).
"""

from __future__ import annotations

import argparse
import ast
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.keystrokes import FIT_PACKAGE, package_files, run


def definitions(text: str) -> list[str]:
    """The file's top-level functions and classes, each as its own text."""
    lines = text.splitlines(keepends=True)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    return [
        "".join(lines[node.lineno - 1 : node.end_lineno])
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def fit_gate(directory: Path) -> dict:
    from copilot_repl.completion.engine import load_engine
    from copilot_repl.completion.retrieval import word_table
    from copilot_repl.completion.scoring import Features, bits_per_byte, fit_gate, mixed_logprobs, model_logprobs

    engine, opened = load_engine(directory)
    tok = opened.tokenizer
    from copilot_repl.completion.session import Session

    typed, others = package_files(*FIT_PACKAGE)
    project = Session._user_index(engine, [str(p) for p in others])[0]  # the package's other files, as --index
    texts = [p.read_text(encoding="utf-8") for p in typed]
    docs = texts + [d for t in texts for d in definitions(t)]
    tokens = np.concatenate([np.concatenate([[tok.eot_id], tok.encode(d)]) for d in docs]).astype(np.int64)
    positions = np.flatnonzero(tokens[1:] != tok.eot_id) + 1  # not the start of a document
    model_lp = model_logprobs(engine.runtime, tokens)[positions - 1]
    index = engine.indexes[0] if engine.indexes else None
    features = Features.compute(tokens, positions, index, tok.eot_id, word_table(tok), project)
    gate = fit_gate(model_lp, features)
    n_bytes = sum(len(d.encode()) for d in docs)
    gate.fitted_on = {
        "package": FIT_PACKAGE[0],
        "files": len(texts),
        "definitions": len(docs) - len(texts),
        "positions": int(len(positions)),
        "bits_per_byte_model": round(bits_per_byte(model_lp.sum(), n_bytes), 4),
        "bits_per_byte_mixed": round(bits_per_byte(mixed_logprobs(model_lp, features, gate).sum(), n_bytes), 4),
    }
    return gate.to_dict()


def fit_confidence(directory: Path) -> dict:
    from copilot_repl.completion.confidence import Confidence

    with ProcessPoolExecutor(2) as pool:  # with and without the package's other files as an --index
        tallies = list(pool.map(_typed, [(column, str(directory)) for column in ("model", "model+index")]))
    # the model's suggestions only: a known name shown where it had nothing has no probabilities to read
    records = [record for tally in tallies for record in tally.records if not record[0].get("known_name")]
    rows, taken = [features for features, _, _ in records], [took for _, took, _ in records]
    confidence = Confidence.fit(rows, taken)
    confidence.fitted_on = {"package": FIT_PACKAGE[0], "suggestions": len(rows), "taken": round(float(np.mean(taken)), 4)}
    return confidence.to_dict()


def _typed(job: tuple[str, str]):
    column, directory = job
    return run(FIT_PACKAGE, column, model=directory)[0.0]


def main() -> None:
    from copilot_repl import checkpoint

    parser = argparse.ArgumentParser(prog="python -m benchmarks.fit_suggestions")
    parser.add_argument("--model", help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--only", choices=("gate", "confidence"))
    args = parser.parse_args()
    directory = Path(args.model) if args.model else checkpoint.shipped_default()
    meta_path = directory / "checkpoint.json"
    if args.only != "confidence":
        meta = json.loads(meta_path.read_text())
        meta["retrieval"] = fit_gate(directory)
        meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        print("gate", json.dumps(meta["retrieval"]))
    if args.only != "gate":
        meta = json.loads(meta_path.read_text())
        meta.pop("confidence", None)  # fitted on what the runner gives without one
        meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        meta["confidence"] = fit_confidence(directory)
        meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        print("confidence", json.dumps(meta["confidence"]))


if __name__ == "__main__":
    main()
