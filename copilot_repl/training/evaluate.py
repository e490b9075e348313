"""The torch model's mean loss on context windows, for validation while training (bits per byte:
`scoring.bits_per_byte`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from copilot_repl.model import GPT


@torch.no_grad()
def mean_loss(
    model: GPT,
    tokens: np.ndarray,
    batch_size: int,
    max_windows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float, float]:
    """Mean next-token loss (nats) and accuracy over non-overlapping context windows; `progress` is
    told (windows read, windows in all) after every batch."""
    block = model.config.block_size
    device = next(model.parameters()).device
    n_windows = max(1, (len(tokens) - 1) // block)
    starts = np.arange(n_windows) * block
    if max_windows and n_windows > max_windows:  # an even spread keeps the estimate unbiased
        starts = starts[np.linspace(0, n_windows - 1, max_windows).astype(int)]
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    for i in range(0, len(starts), batch_size):
        rows = [np.asarray(tokens[s : s + block + 1], dtype=np.int64) for s in starts[i : i + batch_size]]
        width = min(len(r) for r in rows)
        window = torch.from_numpy(np.stack([r[:width] for r in rows])).to(device)
        logits, loss = model(window[:, :-1], window[:, 1:])
        n = window[:, 1:].numel()
        total, count = total + float(loss) * n, count + n
        correct += int((logits.argmax(-1) == window[:, 1:]).sum())
        if progress:
            progress(min(i + batch_size, len(starts)), len(starts))
    model.train(was_training)
    return total / max(count, 1), correct / max(count, 1)
