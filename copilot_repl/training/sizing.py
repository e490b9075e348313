"""The model's shape for a time budget: the one expected to score best on the tokens this machine will
really process in that time.

Each calibrated shape has measured (training tokens, held-out stdlib bits/byte) points from full runs of
the default recipe (`--steps`, so the schedule was complete; README "How `--time` sizes the model").
A run measures each shape's training speed here with two real steps, turns the time it has left into
tokens per shape, reads each curve there (linear in log tokens, the end segments extended), and takes
the lowest. A fast day buys a bigger model; a slow day, or a short budget, a smaller one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Shape:
    name: str
    layers: int
    heads: int
    dim: int
    batch_size: int
    curve: tuple[tuple[float, float], ...]  # (training tokens, val bits/byte), tokens ascending

    def expected_bpb(self, tokens: float) -> float:
        """The curve read at `tokens`, linear in log tokens; beyond its ends the end segments go on."""
        points = self.curve
        i = 1 + sum(t <= tokens for t, _ in points[1:-1])
        (t0, b0), (t1, b1) = points[i - 1], points[i]
        slope = (b1 - b0) / (math.log(t1) - math.log(t0))
        return b0 + slope * (math.log(max(tokens, 1.0)) - math.log(t0))


# Measured on held-out stdlib, seed 1337, bpe 4096, context 256 (README "How --time sizes the model").
# 1 layer (1.492 at 2.6M tokens) and batch 8 or 4 were also tried at the slow-day compute and not kept.
SHAPES = (
    Shape("small", 2, 4, 128, 16, ((1.93e6, 1.500), (6.39e6, 1.322))),  # --steps 470 and 1560
    Shape("default", 4, 4, 128, 16, ((1.35e6, 1.547), (4.64e6, 1.277))),  # --steps 330; --time 10m (1,133 steps)
)
DEFAULT = SHAPES[1]  # without --time: the shape the shipped model has
PROBED_FROM_SECONDS = 60  # shorter runs take the smallest shape: probing costs about 5 s, and few tokens favour it


def choose(
    seconds_left: Callable[[], float], probe: Callable[[Shape], float], agree: Callable[[int], int] = lambda i: i
) -> tuple[Shape, dict]:
    """The shape for the time left after probing, and what checkpoint.json records about the choice.
    `probe(shape)` measures the shape's training tokens/s here; `agree` settles the index chosen with
    the other processes of a torchrun (the largest wins: their speeds differ a little)."""
    if seconds_left() < PROBED_FROM_SECONDS:
        reason = f"under {PROBED_FROM_SECONDS} s left: the smallest calibrated shape"
        return SHAPES[0], {"shape": SHAPES[0].name, "reason": reason}
    rates = {shape.name: probe(shape) for shape in SHAPES}
    seconds = max(seconds_left(), 1.0)
    expected = {s.name: s.expected_bpb(rates[s.name] * seconds) for s in SHAPES}
    best = min(SHAPES, key=lambda s: expected[s.name])
    best = SHAPES[agree(SHAPES.index(best))]
    tokens = rates[best.name] * seconds
    record = {
        "shape": best.name,
        "reason": f"{rates[best.name]:,.0f} training tokens/s measured here, {tokens / 1e6:.1f}M tokens in the "
        f"{seconds:.0f} s left, where its calibrated curve expects {expected[best.name]:.3f} bits/byte, the lowest",
        "tokens_per_second": {k: round(v, 1) for k, v in rates.items()},
        "expected_bpb": {k: round(v, 4) for k, v in expected.items()},
        "calibrated": [asdict(s) for s in SHAPES],
    }
    return best, record
