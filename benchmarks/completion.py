"""What a user sees of completions, measured side by side in one run.

- Line completion: files of a package that no corpus holds (`rich`, installed with us) cut at random
  points inside lines; the rest of the line, greedy. Ours with retrieval (the training index and the
  buffer cache over the file so far), the model alone, without token healing, and two baselines
  written here: the most similar earlier line, and a token 4-gram model over the training split.
- Loops: 24 everyday prompts at the default settings; a completion loops when a non-blank line
  appears 3+ times or one 3-word phrase fills more than half of it.
- The mixture's cost per generated token: the same completions with and without retrieval."""

from __future__ import annotations

import difflib
import random
import re
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from copilot_repl import checkpoint, data
from copilot_repl.completion.engine import load_engine
from copilot_repl.completion.generate import Engine, Request
from copilot_repl.completion.retrieval import Gate
from copilot_repl.completion.settings import Sampling
from copilot_repl.completion.syntax import syntax_ok

UNSEEN = "rich"  # a package installed with copilot-repl and in no training corpus
EVERYDAY = [
    "import os",
    "import numpy as np",
    "class Stack:",
    "def fib(n):",
    "for i in range(10):",
    "with open(path) as f:",
    "def __init__(self, name):",
    "if __name__ == '__main__':",
    "try:",
    "def read_file(path):",
    "result = []",
    "class Config:",
    "def main():",
    "while True:",
    "def add(a, b):",
    "import sys",
    "from pathlib import Path",
    "def is_even(n):",
    "x = [i * i for i in",
    "def parse_args():",
    "def __repr__(self):",
    "lines = text.splitlines()",
    "def test_add():",
    "async def fetch(url):",
]

CONTEXT_CHARS = 2000


def cut_points(texts: list[str], count: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, rest of the line) pairs, cut at random characters inside non-blank lines."""
    rng, pairs = random.Random(seed), []
    while len(pairs) < count:
        text = rng.choice(texts)
        lines = text.splitlines(keepends=True)
        n = rng.randrange(len(lines))
        line = lines[n].rstrip("\n")
        if len(line.strip()) < 4:
            continue
        indent = len(line) - len(line.lstrip())
        cut = rng.randrange(indent, len(line))
        prompt = ("".join(lines[:n]) + line[:cut])[-CONTEXT_CHARS:]
        pairs.append((prompt, line[cut:]))
    return pairs


def similar_line(prompt: str, _target_hint=None) -> str:
    """Baseline 1: the earlier line whose start looks most like the current line's start."""
    *earlier, current = prompt.split("\n")
    best, best_score = "", -1.0
    for line in earlier:
        if len(line) > len(current):
            score = difflib.SequenceMatcher(None, current, line[: len(current)]).ratio()
            if score > best_score:
                best, best_score = line[len(current) :], score
    return best


class NGram:
    """Baseline 2: next token = the most frequent follower of the last three tokens (backing off to
    two, one, none), greedy until the end of the line."""

    def __init__(self, tokenizer, train_tokens: np.ndarray, order: int = 4):
        self.tokenizer, self.V, self.order = tokenizer, tokenizer.vocab_size, order
        t = np.asarray(train_tokens, dtype=np.int64)
        self.tables = []
        for k in range(order - 1, 0, -1):
            key = np.zeros(len(t) - k, dtype=np.int64)
            for j in range(k):
                key = key * self.V + t[j : len(t) - k + j]
            pairs, counts = np.unique(key * self.V + t[k:], return_counts=True)
            keys, nexts = pairs // self.V, pairs % self.V
            order_ = np.lexsort((-counts, keys))  # per key, the most frequent follower first
            keys, nexts = keys[order_], nexts[order_]
            first = np.concatenate([[True], keys[1:] != keys[:-1]])
            self.tables.append((k, keys[first], nexts[first]))
        self.unigram = int(np.bincount(t).argmax())

    def next(self, ids: list[int]) -> int:
        for k, keys, nexts in self.tables:
            if len(ids) < k:
                continue
            key = 0
            for token in ids[-k:]:
                key = key * self.V + token
            i = np.searchsorted(keys, key)
            if i < len(keys) and keys[i] == key:
                return int(nexts[i])
        return self.unigram

    def complete(self, prompt: str, max_tokens: int = 32) -> str:
        ids, out = self.tokenizer.encode(prompt), b""
        for _ in range(max_tokens):
            token = self.next(ids)
            out += self.tokenizer.token_bytes(token)
            ids.append(token)
            if b"\n" in out:
                break
        return out.decode("utf-8", errors="replace").split("\n")[0]


OFF = Gate((0.0, -1e9, 0.0), (0.0, -1e9, 0.0))  # neither predictor ever gets weight


def ours(engine: Engine):
    sampling = Sampling(temperature=0, max_tokens=48, stop_mode="line")

    def complete(prompt: str) -> str:
        context, _, line = prompt.rpartition("\n")  # the file so far is context: it feeds the buffer cache
        text = "".join(engine.complete(Request(line, context=context + "\n" if context else "", sampling=sampling)))
        return text.split("\n")[0]

    return complete


def loops(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(lines.count(line) >= 3 for line in lines):
        return True
    words = re.findall(r"\w+|[^\w\s]", text)
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    top = max((grams.count(g) for g in set(grams)), default=0)
    return top >= 2 and top * 3 > len(words) / 2  # one phrase, repeated, fills more than half


def loop_rate(engine: Engine, sampling: Sampling, seeds: range) -> float:
    outputs = [
        engine.complete(Request(p, sampling=replace(sampling, seed=seed))).finish().text for p in EVERYDAY for seed in seeds
    ]
    return statistics.mean(loops(o) for o in outputs)


def repeats(text: str) -> bool:
    words = re.findall(r"\w+|[^\w\s]", text)
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(grams) != len(set(grams))


def score(complete, pairs) -> dict:
    outputs = [complete(prompt) for prompt, _ in pairs]
    return {
        "exact_match": statistics.mean(o.strip() == t.strip() for o, (_, t) in zip(outputs, pairs)),
        "edit_similarity": statistics.mean(difflib.SequenceMatcher(None, o, t).ratio() for o, (_, t) in zip(outputs, pairs)),
        "syntax_valid": statistics.mean(syntax_ok(p + o + "\n") for o, (p, _) in zip(outputs, pairs)),
        "repetition": statistics.mean(repeats(o) for o in outputs),
    }


def line_completion(count: int = 500, model: str | None = None) -> dict:
    import importlib

    engine, opened = load_engine(checkpoint.resolve(model))
    alone = replace(engine, indexes=[], gate=OFF)
    package = Path(importlib.import_module(UNSEEN).__file__).parent
    unseen = data.gather([str(package)])
    pairs = cut_points(list(unseen.texts()), count)
    train = np.asarray(engine.indexes[0].reversed[::-1]) if engine.indexes else np.zeros(1, dtype=np.int64)
    result: dict = {"cut_points": count, "package": UNSEEN}
    for name, complete in (
        ("ours", ours(engine)),
        ("model_alone", ours(alone)),
        ("ours_without_token_healing", ours(replace(engine, heal=False))),
        ("similar_line", similar_line),
        ("ngram", NGram(opened.tokenizer, train).complete),
    ):
        for metric, value in score(complete, pairs).items():
            result[f"{name}_{metric}"] = value
    return result


def loops_and_cost(seeds: int = 3) -> dict:
    """Loop rates at the default settings, and the retrieval mixture's cost per token, side by side."""
    engine = load_engine(checkpoint.resolve(None))[0]
    alone = replace(engine, indexes=[], gate=OFF)
    default = Sampling()
    result = {
        "loops_default": loop_rate(engine, default, range(seeds)),
        "loops_model_alone_no_penalty": loop_rate(alone, replace(default, repeat_penalty=1.0), range(seeds)),
        "loops_greedy": loop_rate(engine, replace(default, temperature=0), range(1)),
    }
    fixed = Sampling(temperature=0, max_tokens=64, stop_mode="none", repeat_penalty=1.0)
    per_token = {}
    for name, e in (("with_retrieval", engine), ("model_alone", alone)) * 2:  # interleaved, the second round counts
        tokens, start = 0, time.perf_counter()
        for prompt in EVERYDAY[:8]:
            tokens += e.complete(Request(prompt, sampling=fixed)).finish().tokens
        per_token[name] = (time.perf_counter() - start) / tokens
    result["ms_per_token_with_retrieval"] = per_token["with_retrieval"] * 1e3
    result["ms_per_token_model_alone"] = per_token["model_alone"] * 1e3
    result["mixture_ms_per_token"] = (per_token["with_retrieval"] - per_token["model_alone"]) * 1e3
    return result
