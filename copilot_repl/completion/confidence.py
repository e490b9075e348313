"""How likely a suggestion is to be taken: a logistic model over what the runner knows when it ends.

The mean log-probability alone is a poor filter: a tiny model is sure of copies that restart the line
above, and unsure of names it finishes well. So the confidence weighs several signals together (the
model's own probabilities, how far the chosen tokens led the next best, the copies' share, whether it
parses, where the cursor is, whether the name it writes is one the file already has, how many words
it holds), fitted by logistic regression on simulated typing of code held out from training (`python -m
benchmarks.fit_suggestions`), and saved in checkpoint.json. A checkpoint without a
fit gets the weights fitted for the shipped model: the features are scaled alike for any model.

The regression reads each feature alone and times each of three that say where the cursor is (mid-word,
at a line's start, finishing a name the file has): a signal means different things in different places (a
sure first token is worth more mid-word on a known name than at a line's start), and a sum of single
features cannot say so. On the test package this raises the area under the ROC curve from 0.763 to 0.785,
fitted on another package. Every pair of features would reach 0.793, but learns the simulated person's
history more than the suggestion: the one name of the file that starts as typed, written with sure
tokens, then fell below serve's threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from copilot_repl.completion.settings import CUT_BELOW

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
    "only_known_start",
)
PLACES = ("mid_word", "line_start", "known_word")  # where the cursor is, and what it is writing
# products that say nothing new: a word begun is never at a line's start, and the one name of the file
# that starts as typed is always begun and always known
IDLE = {
    frozenset(pair)
    for pair in (
        ("mid_word", "line_start"),
        ("line_start", "only_known_start"),
        ("mid_word", "only_known_start"),
        ("known_word", "only_known_start"),
    )
}
PAIRS = tuple(
    sorted(
        {
            tuple(sorted((i, FEATURES.index(p))))
            for p in PLACES
            for i, f in enumerate(FEATURES)
            if f != p and frozenset((f, p)) not in IDLE
        }
    )
)
TERMS = FEATURES + tuple(f"{FEATURES[i]}*{FEATURES[j]}" for i, j in PAIRS)
# fitted on the shipped model (`python -m benchmarks.fit_suggestions`); a checkpoint's own fit replaces it
# fmt: off
SHIPPED_WEIGHTS = (
    0.42791, 0.39291, 0.24787, -0.03349, -1.7275, 0.29061, 0.29184, -0.4031,
    -0.3077, 0.54761, -0.01445, 0.59361, 0.35888, -0.0304, -0.37384, -0.05561,
    -0.03775, -0.14401, -0.0645, -0.30866, 0.37178, 0.11871, 0.09009, -0.22655,
    -0.23192, 0.29027, 1.7983, -1.67956, -0.11994, -0.08544, 0.34161, 0.02628,
    0.1908, -0.17861, 0.10883, -0.03033, -0.0046, 0.91974, 0.31277, 0.14301,
    -0.08756, 0.12022,
)
# fmt: on
SHIPPED_BIAS = -1.15791
# serve's default min_confidence, chosen with CUT_BELOW (settings.py) on the fitting package
# (benchmarks/keystrokes.py). Low, since what is shown is only the part the model is sure of: above it,
# what decides is where that part ends
SERVE_MIN_CONFIDENCE = 0.05
# the REPL shows a completion asked for with Enter whatever its confidence, and marks it as likely wrong
# below this (unless a min_confidence is set): the whole of it, not a sure start, is what is shown there
LIKELY_WRONG_BELOW = 0.2
# where a one-line suggestion mid-word shows nothing, what the names of the user's code (or project)
# begun at the cursor go on with is shown instead, at this confidence: such suggestions were taken 61-94%
# of the time on the fitting package at serve's default (shipped model; benchmarks/keystrokes.py)
KNOWN_NAME_CONFIDENCE = 0.6
# CUT_BELOW for a block (the REPL's body under a line that opens one): many lines are never all that likely,
# and a body cut at its first doubtful token is half a statement
BLOCK_CUT_BELOW = 0.01


def confident_part(
    text: str,
    steps: list[tuple[int, float]],
    confidence: float,
    min_confidence: float,
    one_line: bool = True,
    cut_below: float = CUT_BELOW,
) -> str:
    """What of a completion to show at `min_confidence`: nothing below it, else the part the model does
    not merely guess, a one-line one cut where all of it is less likely than `cut_below` (one rule for
    the runner and the benchmark that chose serve's defaults)."""
    floor = cut_below if one_line else BLOCK_CUT_BELOW
    keep = confident_length(steps, floor) if confidence >= min_confidence else 0
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
        z = self.bias + float(np.dot(self.weights, terms(features)))
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def to_dict(self) -> dict:
        return {"features": list(TERMS), "weights": self.weights, "bias": self.bias, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, raw: dict | None) -> Confidence:
        """A saved fit; the shipped weights for a checkpoint without one or with another feature set."""
        if not isinstance(raw, dict) or raw.get("features") != list(TERMS):
            return cls()
        try:
            weights = [float(w) for w in raw["weights"]]
            return cls(weights, float(raw["bias"]), raw.get("fitted_on", {})) if len(weights) == len(TERMS) else cls()
        except (KeyError, TypeError, ValueError):
            return cls()

    @classmethod
    def fit(cls, rows: list[dict[str, float]], taken: list[bool], l2: float = 1e-2, steps: int = 3000) -> Confidence:
        """Logistic regression by gradient descent on standardised terms, mapped back to raw ones."""
        x = np.array([terms(r) for r in rows], dtype=np.float64)
        y = np.asarray(taken, dtype=np.float64)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = (x - mean) / scale
        w, b = np.zeros(len(TERMS)), 0.0
        for _ in range(steps):
            p = 1 / (1 + np.exp(-(z @ w + b)))
            w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w)
            b -= 0.5 * float((p - y).mean())
        raw_w = w / scale
        return cls([round(float(v), 5) for v in raw_w], round(float(b - (raw_w * mean).sum()), 5))


def terms(features: dict[str, float]) -> np.ndarray:
    """The features in `FEATURES`' order, then the products in `PAIRS` (each feature times each place)."""
    x = np.array([features.get(name, 0.0) for name in FEATURES], dtype=np.float64)
    return np.concatenate([x, [x[i] * x[j] for i, j in PAIRS]])
