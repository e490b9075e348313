"""Scoring text with and without retrieval: the model's log-probability of every token (sliding
windows), what the two predictors offered at each position, the gate fitted to them, and bits/byte.

Runs on the numpy runtime, so `eval` needs no torch. Positions can be an even sample of a split:
the features are computed in Python, one position at a time (about 0.1 ms each).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from copilot_repl.completion.retrieval import MAX_MATCH, CorpusIndex, Gate, Match, buffer_match
from copilot_repl.completion.sampler import log_softmax

BUFFER_LIMIT = 4096  # tokens of the same file the buffer cache looks back over when scoring


def model_logprobs(runtime, tokens: np.ndarray, stride: int = 128) -> np.ndarray:
    """log p(tokens[t] | what came before, up to one window) for t = 1 .. len-1: windows of the
    model's size moved by `stride`, each scoring the tokens the previous one did not."""
    tokens = np.asarray(tokens, dtype=np.int64)
    block, out = runtime.block_size, np.zeros(len(tokens) - 1)
    stride = max(1, min(stride, block // 2))
    done = 0  # targets 1..done are scored
    start = 0
    while done < len(tokens) - 1:
        window = tokens[start : start + block + 1]
        logp = log_softmax(runtime.logits(window[None, :-1])[0].astype(np.float64))
        targets = window[1:]
        first = done - start  # index within the window of the first target not yet scored
        out[done : start + len(targets)] = logp[np.arange(first, len(targets)), targets[first:]]
        done = start + len(targets)
        start += stride
    return out


@dataclass
class Features:
    """Per scored position, per predictor: match length, word tokens in it, log-odds base log(C/U),
    and p(target)."""

    length: np.ndarray  # (positions, 2)
    words: np.ndarray
    base: np.ndarray
    p_target: np.ndarray

    @classmethod
    def compute(
        cls,
        tokens: np.ndarray,
        positions: np.ndarray,
        index: CorpusIndex | None,
        eot: int,
        words: np.ndarray,
        project: CorpusIndex | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Features:
        tokens = np.asarray(tokens, dtype=np.int64)
        doc_starts = np.flatnonzero(tokens == eot)
        shape = (len(positions), 3)  # buffer, training index, project
        length, n_words, base, p = np.zeros(shape), np.zeros(shape), np.full(shape, -np.inf), np.zeros(shape)
        for i, t in enumerate(positions):
            if progress and i % 1024 == 0:
                progress(i, len(positions))
            before = np.searchsorted(doc_starts, t)
            d = doc_starts[before - 1] if before else 0
            history = tokens[max(d, t - BUFFER_LIMIT) : t]
            tail = tokens[max(d, t - MAX_MATCH) : t].tolist()
            found: list[Match | None] = [buffer_match(history, words)]
            found += [i.match(tail, words) if i is not None else None for i in (index, project)]
            for j, m in enumerate(found):
                if m is not None:
                    length[i, j], n_words[i, j], base[i, j] = m.length, m.words, math.log(m.count / m.distinct)
                    hit = np.flatnonzero(m.ids == tokens[t])
                    p[i, j] = m.counts[hit[0]] / m.counts.sum() if hit.size else 0.0
        return cls(length, n_words, base, p)


def mixed_logprobs(model_lp: np.ndarray, f: Features, gate: Gate) -> np.ndarray:
    params = np.array([gate.buffer, gate.corpus, gate.project])  # (3, [a, e, w])
    logit = f.base + params[:, 0] * f.length + params[:, 2] * f.words + params[:, 1]
    w = np.concatenate([np.zeros((len(model_lp), 1)), logit], axis=1)
    w = np.exp(w - w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return np.log(w[:, 0] * np.exp(model_lp) + (w[:, 1:] * f.p_target).sum(axis=1) + 1e-300)


def fit_gate(
    model_lp: np.ndarray,
    f: Features,
    steps: int = 300,
    start: Gate | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Gate:
    """a, e and w of each predictor that matched anywhere, by gradient ascent (Adam, numeric gradient)
    on the mean log-probability, from `start` (a fine-tuning base's gate) or the defaults; one that
    never matched keeps where it started."""
    start = start or Gate()
    theta = np.array([*start.buffer, *start.corpus, *start.project], dtype=np.float64)
    gate = lambda th: Gate(tuple(th[:3]), tuple(th[3:6]), tuple(th[6:]))  # noqa: E731
    used = np.repeat(np.isfinite(f.base).any(axis=0), 3)
    m, v, lr, h = np.zeros(len(theta)), np.zeros(len(theta)), 0.05, 1e-4
    objective = lambda th: mixed_logprobs(model_lp, f, gate(th)).mean()  # noqa: E731
    slope = lambda e: (objective(theta + h * e) - objective(theta - h * e)) / (2 * h)  # noqa: E731
    for step in range(1, steps + 1):
        grad = np.array([slope(e) if u else 0.0 for e, u in zip(np.eye(len(theta)), used)])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta += lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        if progress:
            progress(step, steps)
    return gate([round(float(x), 4) for x in theta])


def even_positions(n_tokens: int, limit: int | None) -> np.ndarray:
    """Target positions 1..n-1, or an even spread of `limit` of them."""
    positions = np.arange(1, n_tokens)
    if limit and len(positions) > limit:
        positions = positions[np.linspace(0, len(positions) - 1, limit).astype(np.int64)]
    return positions


def bits_per_byte(total_logprob_nats: float, n_bytes: float) -> float:
    return -total_logprob_nats / math.log(2) / max(n_bytes, 1)


@dataclass
class Score:
    bits_per_byte: float  # the model alone
    with_retrieval: float  # mixed with the training index (when the model has one) and the buffer cache
    tokens: int
    positions: int  # of them, how many were scored
    retrieval: str  # what the mixture held


def score_texts(engine, texts: list[str], sample: int | None = None) -> Score:
    """Bits per byte of `texts`, each read from the start of a file (after end-of-text), by the
    engine's model alone and mixed with what it may copy from; `sample` scores an even sample."""
    from copilot_repl.completion.retrieval import word_table
    from copilot_repl.data import encode_docs

    eot = engine.tokenizer.eot_id
    tokens = np.concatenate([[eot], encode_docs(engine.tokenizer, texts, "int64")])
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if len(tokens) < 2:
        raise ValueError("nothing to score")
    positions = even_positions(len(tokens), sample)
    model_lp = model_logprobs(engine.runtime, tokens)[positions - 1]
    index = engine.indexes[0] if engine.indexes else None
    features = Features.compute(tokens, positions, index, eot, word_table(engine.tokenizer), engine.project)
    mixed_lp = mixed_logprobs(model_lp, features, engine.gate)
    per_token = (len(tokens) - 1) / len(positions)  # a sample stands for every position
    bpb, mixed = (bits_per_byte(lp.sum() * per_token, n_bytes) for lp in (model_lp, mixed_lp))
    held = [name for name, i in (("training index", index), ("project index", engine.project)) if i is not None]
    retrieval = f"{', '.join(held)} and buffer cache" if held else "buffer cache only"
    return Score(bpb, mixed, len(tokens) - 1, len(positions), retrieval)
