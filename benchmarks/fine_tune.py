"""Fine-tuning on a project no corpus holds: what two minutes of `train --init-from` buy, and what they cost.

The project is an installed package (prompt_toolkit), split by file as training splits any corpus (5% of files,
by content hash). The run is the real command: `copilot-repl train --init-from default --corpus
<package> --time 2m`. Side by side on the project's held-out files, for the base and the fine-tuned
model, each alone, with its own index, and with the project's training files as an `--index`:
- bits/byte (every position, `eval`'s scoring);
- keystrokes saved and the share of shown suggestions that are wrong, typed as "Suggestions worth
  accepting" types them (serve's one-line suggestion before every keystroke, at serve's min_confidence).
Forgetting: bits/byte (model alone) on another package nobody trained on (pexpect) and on the base's
held-out split (its standard-library part, which every machine has).

python -m benchmarks --only fine-tune [--quick]
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PROJECT, OTHER = "prompt_toolkit", "pexpect"
BUDGET = "2m"
NAME = "bench-fine-tuned"


def package_dir(name: str) -> Path:
    return Path(importlib.import_module(name).__file__).parent


def split_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files) of a folder as `train` splits it: by each file's content hash."""
    from copilot_repl import data
    from copilot_repl.sources import documents

    corpus = data.gather([str(folder)])
    train, held_out = [], []
    for path, _ in documents(str(folder), {}):
        text = path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        if digest in corpus.sizes:
            (held_out if digest in corpus.val_digests else train).append(path)
    return train, held_out


def fine_tuned(project: Path) -> tuple[Path, dict]:
    """The fine-tuned model (trained by the installed program) and what its run reported."""
    beside = Path(sys.executable).parent / "copilot-repl"  # the program installed with this Python
    program = str(beside) if beside.exists() else "copilot-repl"
    command = [program, "train", "--init-from", "default", "--corpus", str(project), "--time", BUDGET, "--name", NAME]
    began = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # training uses every core, as a user's does
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True, env=env)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    wall = round(time.perf_counter() - began, 1)
    shown = " ".join(["copilot-repl", *command[1:]])
    return Path(report["path"]), {"command": shown, "wall_s": wall, "steps": report["step"]}


def bits(model: str, texts: list[str], index: list[Path], sample: int | None = None) -> tuple[float, float]:
    """(model alone, with retrieval) bits/byte of `texts`, the project's files given as --index or not."""
    from copilot_repl.completion.scoring import score_texts
    from copilot_repl.completion.session import Session

    session = Session(model_ref=model, index_paths=[str(p) for p in index])
    session.model()
    score = score_texts(session.engine, texts, sample)
    return score.bits_per_byte, score.with_retrieval


def typed(job: tuple[str, list[str], list[Path], int | None]) -> dict:
    """Keystrokes saved typing `texts` (each cut to `chars`) with serve's suggestions from `model`."""
    from benchmarks.keystrokes import Tally, server_suggester, simulate
    from copilot_repl.completion.confidence import SERVE_MIN_CONFIDENCE
    from copilot_repl.completion.session import Session

    model, texts, index, chars = job
    session = Session(model_ref=model, index_paths=[str(p) for p in index])
    tally = Tally()
    for text in texts:
        tally.add(simulate(text[:chars] if chars else text, server_suggester(session), SERVE_MIN_CONFIDENCE))
    summary = tally.summary()
    return {"saved": round(summary["saved"], 4), "wrong": round(summary["wrong_of_shown"], 4)}


def fine_tune(chars: int | None = 3000, sample: int | None = 20000) -> dict:
    from copilot_repl import data

    project = package_dir(PROJECT)
    train_files, held_out = split_files(project)
    texts = [p.read_text(encoding="utf-8") for p in held_out]
    model, run = fine_tuned(project)
    result: dict = {"project": PROJECT, "held_out_files": len(held_out), "held_out_bytes": sum(len(t.encode()) for t in texts)}
    result |= run
    columns = {"base": "default", "tuned": str(model)}
    for label, ref in columns.items():
        alone, own = bits(ref, texts, [])
        _, with_index = bits(ref, texts, train_files)
        figures = {"bpb": alone, "bpb_own_index": own, "bpb_index": with_index}
        result |= {f"{label}_{key}": round(value, 4) for key, value in figures.items()}
    result["bpb_fewer"] = round(1 - result["tuned_bpb"] / result["base_bpb"], 4)
    other = list(data.gather([str(package_dir(OTHER))]).texts())
    stdlib_val = list(data.gather(["stdlib"]).texts("val"))
    for name, corpus in ((OTHER, other), ("base_held_out", stdlib_val)):
        base_bpb, tuned_bpb = (bits(ref, corpus, [], sample)[0] for ref in columns.values())
        result |= {f"{name}_base_bpb": round(base_bpb, 4), f"{name}_tuned_bpb": round(tuned_bpb, 4)}
        result[f"{name}_worse"] = round(tuned_bpb / base_bpb - 1, 4)
    jobs = [(ref, texts, index, chars) for ref in columns.values() for index in ([], train_files)]
    with ProcessPoolExecutor(2) as pool:  # one thread each (OMP_NUM_THREADS=1): two columns side by side
        for (ref, _, index, _), tally in zip(jobs, pool.map(typed, jobs)):
            label = ("base" if ref == "default" else "tuned") + ("+index" if index else "")
            result |= {f"keys_{label}_saved": tally["saved"], f"keys_{label}_wrong": tally["wrong"]}
    return result


if __name__ == "__main__":
    print(json.dumps(fine_tune(int(sys.argv[1]) if len(sys.argv) > 1 else 3000), indent=1))
