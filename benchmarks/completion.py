"""Line completion on held-out code: cut held-out stdlib files at random points inside lines and ask
for the rest of the line. Our model against two baselines written here: the most similar earlier line
of the same file, and a token n-gram model (4-gram with back-off) over the training split. Our model
also runs without token healing, to show what that is worth on cuts inside words."""

from __future__ import annotations

import difflib
import random
import re
import statistics

import numpy as np

from copilot_repl import checkpoint, data
from copilot_repl.best_of import syntax_ok
from copilot_repl.generate import Completion
from copilot_repl.settings import Sampling

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


def ours(loaded, heal: bool = True):
    sampling = Sampling(temperature=0, max_tokens=48, stop_mode="line")

    def complete(prompt: str) -> str:
        c = Completion(loaded.model, loaded.tokenizer, prompt, sampling, heal=heal)
        return "".join(c).split("\n")[0]

    return complete


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
    loaded = checkpoint.load(checkpoint.resolve(model))
    corpus = data.gather(loaded.meta.get("corpus", {}).get("spec") or ["stdlib"])
    pairs = cut_points(corpus.val, count)
    train_tokens = data.encode_docs(loaded.tokenizer, corpus.train, np.int64)
    result = {"cut_points": count}
    for name, complete in (
        ("ours", ours(loaded)),
        ("ours_without_token_healing", ours(loaded, heal=False)),
        ("similar_line", similar_line),
        ("ngram", NGram(loaded.tokenizer, train_tokens).complete),
    ):
        for metric, value in score(complete, pairs).items():
            result[f"{name}_{metric}"] = value
    return result
