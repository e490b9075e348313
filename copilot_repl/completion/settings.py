"""Generation settings: one typed, range-checked table shared by `:set`, `--once` flags and config files."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from copilot_repl.completion.stops import STOP_MODES
from copilot_repl.errors import UsageError

MAX_TOKENS_LIMIT = 8192
# a suggestion that is shown is cut where the model's running probability of the whole of it falls below
# this; where that leaves nothing (its first token is less likely), nothing is shown, so this floor is what
# mostly decides how much is shown and how much of it is wrong. Chosen with serve's default on the fitting
# package as the lowest floor at which at most half of what is shown is wrong (0.35: 33.3% of keystrokes
# saved, 48.8% wrong; 0.3: 53% wrong; even odds, 0.5: 30.4% / 36.3%). A word's typed start is not counted
# as the model's guess (the runner's probabilities are the tokens' chances among those the cursor allows)
CUT_BELOW = 0.35


@dataclass
class Sampling:
    temperature: float = 0.7  # 0 means greedy
    top_k: int = 40  # 0 means no limit
    top_p: float = 0.95
    min_p: float = 0.05  # drop tokens below this share of the most likely one's probability
    repeat_penalty: float = 1.1  # > 1 makes the model's own recent tokens less likely (1 = off)
    repeat_last_n: int = 64  # how many recent tokens the penalty looks at
    max_tokens: int = 128
    seed: int | None = None  # None: a fresh random seed, reported so a run can be repeated
    stop: list[str] = field(default_factory=list)
    stop_mode: str = "block"
    n: int = 1  # best-of-n: candidates sampled in one batch
    min_confidence: float = 0.0  # withhold a completion less likely than this to be taken (0 shows all)
    cut_below: float = CUT_BELOW  # a one-line suggestion ends where all of it is less likely than this
    suggest: str = "on"  # the REPL's dim suggestion while typing

    @property
    def one_line(self) -> bool:
        """A suggestion of one line (an editor's): any valid start of it helps, a header too."""
        return "\n" in self.stop or self.stop_mode == "line"


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] = ()


def _number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if (
            value != value
            or (low is not None and (value <= low if low_open else value < low))
            or (high is not None and value > high)
        ):
            lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
            hi = "" if high is None else f"<= {high}"
            raise UsageError(f"{text} is out of range (must be {' and '.join(x for x in (lo, hi) if x)})")
        return value

    return parse


def _seed(text: str) -> int | None:
    if text.lower() in ("random", "none"):
        return None
    return _number(int, 0, 2**63 - 1)(text)


def _stop(text: str) -> list[str]:
    """Stop strings, separated by `|`; backslash escapes such as \\n are understood."""
    if text.lower() in ("", "none"):
        return []
    try:
        return [codecs.decode(part, "unicode_escape") for part in text.split("|") if part]
    except UnicodeDecodeError as e:
        raise UsageError(f"bad escape in stop string {text!r}: {e.reason}") from None


def _choice(choices: tuple[str, ...]):
    def parse(text: str) -> str:
        if text not in choices:
            raise UsageError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


SETTINGS = {
    s.name: s
    for s in (
        Setting("temperature", _number(float, 0.0, 5.0), "randomness; 0 = always the most likely token"),
        Setting("top_k", _number(int, 0, 1_000_000), "sample among the k most likely tokens; 0 = all"),
        Setting("top_p", _number(float, 0.0, 1.0, low_open=True), "sample among the tokens holding this much probability"),
        Setting("min_p", _number(float, 0.0, 1.0), "drop tokens less likely than this share of the most likely one"),
        Setting("repeat_penalty", _number(float, 1.0, 2.0), "make recently written tokens less likely; 1 = off"),
        Setting("repeat_last_n", _number(int, 0, MAX_TOKENS_LIMIT), "how many recent tokens repeat_penalty looks at"),
        Setting("max_tokens", _number(int, 1, MAX_TOKENS_LIMIT), "longest completion, in tokens"),
        Setting("seed", _seed, "random seed for sampling (an integer, or `random`)"),
        Setting("stop", _stop, "extra stop strings, separated by |, escapes like \\n allowed; `none` clears"),
        Setting(
            "stop_mode",
            _choice(STOP_MODES),
            "block: at the end of the prompt's block or statement; line: end of line; none: max_tokens, stop only",
            STOP_MODES,
        ),
        Setting("n", _number(int, 1, 16), "best-of-n: sample this many candidates, show the most likely valid one"),
        Setting(
            "min_confidence",
            _number(float, 0.0, 1.0),
            "withhold completions less likely than this to be taken (0-1); the REPL shows them marked",
        ),
        Setting(
            "cut_below",
            _number(float, 0.0, 1.0),
            "end a suggestion (serve's, the REPL's while you type) where the model finds all of it less"
            " likely than this (0-1): higher shows less, and less of it wrong",
        ),
        Setting(
            "suggest",
            _choice(("on", "off")),
            "the REPL's dim one-line suggestion while you type (Tab or Right takes it)",
            ("on", "off"),
        ),
    )
}


def parse_setting(name: str, text: str) -> Any:
    setting = SETTINGS.get(name)
    if setting is None:
        raise UsageError(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
    try:
        return setting.parse(text)
    except UsageError as e:
        raise UsageError(f"{name}: {e}") from None


def apply(sampling: Sampling, name: str, text: str) -> Sampling:
    """A copy of `sampling` with one setting changed; the original is untouched if the value is bad."""
    return Sampling(**{**sampling.__dict__, name: parse_setting(name, text)})
