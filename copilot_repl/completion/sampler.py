"""The one sampler, in numpy: every runtime (numpy on a CPU, torch on a GPU) hands it log-probabilities,
so a seed means the same thing everywhere. Settings follow llama.cpp's names and order: repetition
penalty, then temperature, top-k, top-p and min-p."""

from __future__ import annotations

import numpy as np

from copilot_repl.completion.settings import Sampling


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def penalize(logits: np.ndarray, recent: list[list[int]], penalty: float) -> np.ndarray:
    """llama.cpp's repeat penalty on raw logits: a token seen in `recent` has a positive logit divided
    by `penalty` and a negative one multiplied, so it loses probability either way."""
    if penalty == 1.0:
        return logits
    logits = logits.copy()
    for row, seen in enumerate(recent):
        if seen:
            ids = np.unique(np.asarray(seen))
            values = logits[row, ids]
            logits[row, ids] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def sample(logprobs: np.ndarray, s: Sampling, rng: np.random.Generator) -> np.ndarray:
    """One token id per row of `logprobs` (rows, vocab)."""
    if s.temperature == 0:
        return logprobs.argmax(axis=-1)
    chosen = np.empty(len(logprobs), dtype=np.int64)
    for row, values in enumerate(logprobs):
        order = np.argsort(-values, kind="stable")
        if s.top_k:
            order = order[: s.top_k]
        scaled = values[order] / s.temperature
        probs = np.exp(scaled - scaled[0])
        probs /= probs.sum()
        keep = (np.cumsum(probs) - probs) < s.top_p  # the smallest set reaching top_p
        keep &= probs >= s.min_p * probs[0]  # and none far below the most likely token
        keep[0] = True
        probs = np.where(keep, probs, 0.0)
        chosen[row] = order[rng.choice(len(order), p=probs / probs.sum())]
    return chosen
