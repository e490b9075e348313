"""Peak resident memory: a short training run with the default recipe, one completion, and batch mode
answering few versus many prompts in one process (a leak would show as growth)."""

from __future__ import annotations

import subprocess
import sys

MEASURE = (
    "import resource, subprocess, sys;"
    "subprocess.run(sys.argv[2:], check=True, capture_output=True, text=True, input=sys.argv[1]);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(command: list[str], stdin: str = "") -> float:
    out = subprocess.run([sys.executable, "-c", MEASURE, stdin, *command], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024  # Linux reports KiB


def memory(many: int = 1000) -> dict:
    cli = [sys.executable, "-m", "copilot_repl"]
    prompts = lambda n: ":set max_tokens 16\n" + "".join(f"def f{i}(x):\n" for i in range(n))  # noqa: E731
    few, lots = peak_rss_mb(cli, prompts(20)), peak_rss_mb(cli, prompts(many))
    return {
        "peak_rss_mb_train": peak_rss_mb([*cli, "train", "--corpus", "stdlib", "--steps", "30", "--name", "bench-memory"]),
        "peak_rss_mb_once": peak_rss_mb([*cli, "--once", "def fib(n):", "--max-tokens", "128"]),
        "peak_rss_mb_batch_20_prompts": few,
        f"peak_rss_mb_batch_{many}_prompts": lots,
        "batch_rss_growth_mb": lots - few,
    }


PREPARE = (
    "import sys; from copilot_repl import data; from copilot_repl.tokenizer import tokenizer_class;"
    "corpus = data.gather([sys.argv[1]]);"
    "tok, where = data.cached_tokenizer(corpus, tokenizer_class('bpe'), 4096);"
    "splits = data.token_cache(corpus, tok, tok.fingerprint(where));"
    "print(len(splits.train))"
)


def corpus_rss(copies: tuple[int, ...] = (1, 10)) -> dict:
    """Peak memory of preparing a corpus (gather, train the tokenizer, fill the token cache) for stdlib
    and for `copies` times stdlib, as a `.jsonl` dataset; each copy gets its own first line, so nothing
    is de-duplicated. Caches start empty."""
    import json
    import os
    import tempfile

    from copilot_repl import data

    stdlib = list(data.gather(["stdlib"]).texts())
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in copies:
            path = os.path.join(tmp, f"stdlib-x{n}.jsonl")
            with open(path, "w") as f:
                for k in range(n):
                    f.writelines(json.dumps({"content": f"# copy {k}\n{text}"}) + "\n" for text in stdlib)
            env = os.environ | {"COPILOT_REPL_CACHE": os.path.join(tmp, f"cache-{n}")}
            command = [sys.executable, "-c", PREPARE, path]
            measure = subprocess.run(
                [sys.executable, "-c", MEASURE, "", *command], check=True, capture_output=True, text=True, env=env
            )
            result[f"peak_rss_mb_prepare_stdlib_x{n}"] = int(measure.stdout.split()[-1]) / 1024
            result[f"corpus_mb_stdlib_x{n}"] = os.path.getsize(path) / 1e6
    return result
