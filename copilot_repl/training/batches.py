"""Training batches: random windows of the token stream, a share of them rearranged for fill-in-the-middle."""

from __future__ import annotations

import numpy as np


def batch(tokens: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator, fim=None, fim_rate: float = 0.0):
    """Random windows of `block_size + 1` tokens: inputs and next-token targets as int64 arrays.
    With a tokenizer as `fim`, a `fim_rate` share of windows is rearranged for fill-in-the-middle."""
    starts = rng.integers(0, len(tokens) - block_size - 1, size=batch_size)
    rows = [np.asarray(tokens[s : s + block_size + 1]) for s in starts]
    if fim is not None and fim_rate > 0:
        from copilot_repl.completion.fim import fim_window

        rows = [fim_window(row, fim, rng) if rng.random() < fim_rate else row for row in rows]
    windows = np.stack(rows).astype(np.int64)
    return windows[:, :-1], windows[:, 1:]
