"""Copying from real code: an index over a corpus and a cache over the buffer, mixed with the model.

Code repeats itself, and a model trained for minutes remembers little of it, so at each step two
count-based predictors look for the longest earlier occurrence (up to MAX_MATCH tokens) of the text
just before the cursor, and count which tokens followed it:
- the buffer cache, over the session and the completion so far (names the user typed a minute ago);
- the corpus index, over the training split and any project added with --index.
Each one's weight depends only on its match: odds (C/U) * exp(a*n + w*k + e) against the model's 1,
where n is the match length, k how many of its tokens hold a letter or digit (`(n):` is short and
generic, `compute_checksum(` specific), C its count and U the number of distinct followers; a, w and e
are fitted at train time and saved in checkpoint.json. (As in kNN-LM and infini-gram, an
unbounded n-gram helps a small neural model most where it is least sure.)

The corpus index is a suffix array over the *reversed* token stream: the occurrences of the
context's last n tokens then form one range of it, and taking one more token to the left narrows
that range by two binary searches. The followers of an occurrence are the tokens just before it in
the reversed stream.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_MATCH = 16  # tokens; longer matches add little and cost time
MAX_FOLLOWERS = 2048  # occurrences whose followers are counted (an even sample beyond that)
TOKENS, SUFFIXES = "tokens.npy", "suffixes.npy"
REVERSED, BUCKETS = "reversed.npy", "buckets.npy"  # derived, saved beside the suffix array so loading maps, never computes


def suffix_array(stream: np.ndarray, depth: int = MAX_MATCH, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Positions of `stream` sorted by the `depth` tokens that start there (prefix doubling: each
    round sorts by twice as many tokens; ties beyond `depth` stay in any order). `progress` hears
    (rounds done, rounds at most)."""
    rounds = max(1, math.ceil(math.log2(depth)))
    n = len(stream)
    rank = np.unique(stream, return_inverse=True)[1].astype(np.int64).reshape(-1) + 1  # dense, <= n; 0 is "past the end"
    k = 1
    while True:
        second = np.zeros(n, dtype=np.int64)
        second[: n - k] = rank[k:]
        key = rank * (n + 2) + second
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.cumsum(np.concatenate(([1], ordered[1:] != ordered[:-1])))
        k *= 2
        if progress:
            progress(min(round(math.log2(k)), rounds), rounds)
        if k >= depth or rank.max() == n:
            return order.astype(np.int32 if n < 2**31 else np.int64)


@dataclass
class Match:
    """What one predictor found: match length, count, and the followers' ids with their counts."""

    length: int
    count: int
    ids: np.ndarray
    counts: np.ndarray
    words: int = 0  # of the matched tokens, those holding a letter or digit

    @property
    def distinct(self) -> int:
        return len(self.ids)


class CorpusIndex:
    def __init__(self, reversed_tokens: np.ndarray, suffixes: np.ndarray, vocab_size: int, buckets: np.ndarray | None = None):
        self.reversed, self.suffixes, self.n = reversed_tokens, suffixes, len(reversed_tokens)
        self._r, self._sa = reversed_tokens.data, suffixes.data  # memoryviews: fast scalar reads
        if buckets is None:  # the range of the suffix array that starts with each token
            buckets = np.searchsorted(reversed_tokens[suffixes], np.arange(vocab_size + 1))
        self.buckets = buckets

    @classmethod
    def build(cls, tokens: np.ndarray, vocab_size: int, progress: Callable[[int, int], None] | None = None) -> CorpusIndex:
        stream = np.ascontiguousarray(np.asarray(tokens)[::-1])
        return cls(stream, suffix_array(stream, progress=progress), vocab_size)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in ((REVERSED, self.reversed), (SUFFIXES, self.suffixes), (BUCKETS, self.buckets)):
            np.save(directory / name, np.asarray(array))

    @classmethod
    def load(cls, directory: Path, vocab_size: int) -> CorpusIndex:
        """A saved index (memory-mapped), or one built from the tokens a checkpoint ships."""
        if (directory / SUFFIXES).is_file():
            mapped = [np.load(directory / name, mmap_mode="r") for name in (REVERSED, SUFFIXES, BUCKETS)]
            if len(mapped[2]) != vocab_size + 1:
                raise ValueError(f"the index was built for {len(mapped[2]) - 1} token ids, the tokenizer has {vocab_size}")
            return cls(mapped[0], mapped[1], vocab_size, mapped[2])
        tokens = np.load(directory / TOKENS, mmap_mode="r")
        if len(tokens) and int(tokens.max()) >= vocab_size:
            raise ValueError(f"its tokens reach id {int(tokens.max())}, beyond this tokenizer's {vocab_size} ids")
        return cls.build(tokens, vocab_size)

    def _narrow(self, lo: int, hi: int, depth: int, token: int) -> tuple[int, int]:
        r, sa, n = self._r, self._sa, self.n
        key = lambda i: r[sa[i] + depth] if sa[i] + depth < n else -1  # noqa: E731
        lo = bisect_left(range(lo, hi), token, key=key) + lo
        return lo, bisect_right(range(lo, hi), token, key=key) + lo

    def match(self, context: list[int], words: np.ndarray | None = None) -> Match | None:
        """The longest occurrence of the end of `context` and the tokens that followed it; `words`
        marks the token ids that count as words."""
        if not context or not 0 <= context[-1] < len(self.buckets) - 1:
            return None
        lo, hi = int(self.buckets[context[-1]]), int(self.buckets[context[-1] + 1])
        length = 1
        for depth in range(1, min(MAX_MATCH, len(context))):
            a, b = self._narrow(lo, hi, depth, context[-1 - depth])
            if a == b:
                break
            lo, hi, length = a, b, length + 1
        if lo == hi:
            return None
        positions = (
            np.asarray(self.suffixes[lo:hi])
            if hi - lo <= MAX_FOLLOWERS
            else np.asarray(self.suffixes[np.linspace(lo, hi - 1, MAX_FOLLOWERS).astype(np.int64)])
        )
        positions = positions[positions > 0]
        if positions.size == 0:
            return None
        ids, counts = np.unique(np.asarray(self.reversed)[positions - 1], return_counts=True)
        return Match(length, hi - lo, ids.astype(np.int64), counts, _words(context[len(context) - length :], words))


def is_word(token: bytes) -> bool:
    """A token holding a letter or digit: a match made of such tokens is specific, one of brackets and
    spaces is not."""
    return any(chr(c).isalnum() for c in token if c < 128)


def word_table(tokenizer) -> np.ndarray:
    return np.array([is_word(tokenizer.token_bytes(i)) for i in range(tokenizer.vocab_size)], dtype=bool)


def _words(tokens, words: np.ndarray | None) -> int:
    return int(words[np.asarray(tokens, dtype=np.int64)].sum()) if words is not None and len(tokens) else 0


def buffer_match(buffer: np.ndarray, words: np.ndarray | None = None) -> Match | None:
    """The longest earlier occurrence of the buffer's end in the buffer itself, and its followers."""
    if len(buffer) < 2:
        return None
    found = np.flatnonzero(buffer[:-1] == buffer[-1])
    if found.size == 0:
        return None
    length = 1
    while length < MAX_MATCH:
        deeper = found[found >= length]
        deeper = deeper[buffer[deeper - length] == buffer[-1 - length]]
        if deeper.size == 0:
            break
        found, length = deeper, length + 1
    ids, counts = np.unique(buffer[found + 1], return_counts=True)
    return Match(length, int(found.size), ids.astype(np.int64), counts, _words(buffer[len(buffer) - length :], words))


PROJECT = (0.35, -3.0, 0.0)  # a project's gate before any fit: the shipped model's fit replaces it (checkpoint.json)


@dataclass
class Gate:
    """Per predictor (buffer, corpus, project): the log-odds slope a per matched token, the offset e,
    and the slope w per matched word token (older checkpoints have no w: 0)."""

    buffer: tuple[float, ...] = (0.35, -3.0, 0.0)
    corpus: tuple[float, ...] = (0.35, -3.5, 0.0)
    project: tuple[float, ...] = PROJECT  # the user's own code (--index)
    fitted_on: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        names = ("buffer", "corpus", "project")
        return {name: list(getattr(self, name)) for name in names} | {"fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, raw: dict | None) -> Gate:
        if not isinstance(raw, dict):
            return cls()
        try:
            default = cls()  # a checkpoint from before the project predictor has no "project"
            names = ("buffer", "corpus", "project")
            buffer, corpus, project = (tuple(float(x) for x in raw.get(name, getattr(default, name))) for name in names)
        except (TypeError, ValueError):
            return cls()
        if not all(len(p) in (2, 3) for p in (buffer, corpus, project)):
            return cls()
        return cls((*buffer, 0.0)[:3], (*corpus, 0.0)[:3], (*project, 0.0)[:3], raw.get("fitted_on", {}))


def log_odds(match: Match, a: float, e: float, w: float = 0.0) -> float:
    return math.log(match.count / match.distinct) + a * match.length + w * match.words + e


def mix(logprobs: np.ndarray, matches: list[tuple[Match | None, tuple[float, ...]]]) -> tuple[np.ndarray, float]:
    """The model's log-probabilities (vocab,) mixed with each predictor's follower distribution, and
    the weight the predictors got together."""
    found = [(m, log_odds(m, *params)) for m, params in matches if m is not None]
    if not found:
        return logprobs, 0.0
    weights = np.array([0.0] + [w for _, w in found])
    weights = np.exp(weights - weights.max())
    weights /= weights.sum()
    probs = np.exp(logprobs) * weights[0]
    for (m, _), weight in zip(found, weights[1:]):
        probs[m.ids] += weight * m.counts / m.counts.sum()
    with np.errstate(divide="ignore"):
        return np.log(probs), float(1 - weights[0])
