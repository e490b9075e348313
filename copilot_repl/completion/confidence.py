"""How likely a suggestion is to be taken: a logistic model over what the runner knows when it ends.

The mean log-probability alone is a poor filter: a tiny model is sure of copies that restart the line
above, and unsure of names it finishes well. So the confidence weighs several signals together (the
model's own probabilities, how far the chosen tokens led the next best, the copies' share, whether it
parses, where the cursor is, whether the name it writes is one the file already has, how many words
it holds), fitted by logistic regression on simulated typing of code held out from training (`python -m
benchmarks.fit_suggestions`), and saved in checkpoint.json. A checkpoint without a
fit gets the weights fitted for the shipped model: the features are scaled alike for any model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FEATURES = (
    "mean_logprob",
    "lowest_logprob",
    "first_logprob",
    "model_mean_logprob",
    "copied",
    "valid",
    "lowest_margin",
    "log_chars",
    "mid_word",
    "line_start",
    "known_word",
    "chunks",
)
# fitted on the shipped model (`python -m benchmarks.fit_suggestions`); a checkpoint's own fit replaces it
# fmt: off
SHIPPED_WEIGHTS = (
    0.21135, 0.01136, -0.09829, -0.00987, -1.45688, 0.17046,
    0.69903, -0.87125, 0.7797, 1.13941, 1.37064, 1.38538,
)
# fmt: on
SHIPPED_BIAS = -2.56619
# serve's default min_confidence, chosen on benchmarks/keystrokes.py: most keystrokes saved for few wrong
# suggestions shown; the REPL marks a completion below it as likely wrong
SERVE_MIN_CONFIDENCE = 0.2
# a suggestion that is shown is cut where the model's running probability of the whole of it falls below
# this: chosen with serve's default on the same benchmark (cutting at min_confidence itself saved less)
GUESS_BELOW = 0.01


def confident_part(text: str, steps: list[tuple[int, float]], confidence: float, min_confidence: float) -> str:
    """What of a completion to show at `min_confidence`: nothing below it, else the part the model does
    not merely guess (one rule for the runner and the benchmark that chose serve's default)."""
    keep = confident_length(steps, GUESS_BELOW) if confidence >= min_confidence else 0
    return text[:keep].rstrip()


def confident_length(steps: list[tuple[int, float]], floor_probability: float) -> int:
    """How much of a completion to show: up to the token where the model's running probability of the
    whole of it (the product of its tokens' probabilities) falls below `floor_probability`. A suggestion
    is often right for a word or two and then guesses; shown whole, it reads as wrong."""
    if floor_probability <= 0:
        return steps[-1][0] if steps else 0
    floor, total, length = math.log(floor_probability), 0.0, 0
    for end, logprob in steps:
        total += logprob
        if total < floor:
            break
        length = end
    return length


@dataclass
class Confidence:
    weights: list[float] = field(default_factory=lambda: list(SHIPPED_WEIGHTS))
    bias: float = SHIPPED_BIAS
    fitted_on: dict = field(default_factory=dict)

    def score(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * features.get(name, 0.0) for w, name in zip(self.weights, FEATURES))
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "weights": self.weights, "bias": self.bias, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, raw: dict | None) -> Confidence:
        """A saved fit; the shipped weights for a checkpoint without one or with another feature set."""
        if not isinstance(raw, dict) or raw.get("features") != list(FEATURES):
            return cls()
        try:
            weights = [float(w) for w in raw["weights"]]
            return cls(weights, float(raw["bias"]), raw.get("fitted_on", {})) if len(weights) == len(FEATURES) else cls()
        except (KeyError, TypeError, ValueError):
            return cls()

    @classmethod
    def fit(cls, rows: list[dict[str, float]], taken: list[bool], l2: float = 1e-3, steps: int = 3000) -> Confidence:
        """Logistic regression by gradient descent on standardised features, mapped back to raw ones."""
        x = np.array([[r.get(name, 0.0) for name in FEATURES] for r in rows], dtype=np.float64)
        y = np.asarray(taken, dtype=np.float64)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = (x - mean) / scale
        w, b = np.zeros(len(FEATURES)), 0.0
        for _ in range(steps):
            p = 1 / (1 + np.exp(-(z @ w + b)))
            w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w)
            b -= 0.5 * float((p - y).mean())
        raw_w = w / scale
        return cls([round(float(v), 5) for v in raw_w], round(float(b - (raw_w * mean).sum()), 5))
