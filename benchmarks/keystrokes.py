"""What a person typing real code gets from suggestions: keystrokes saved, and how often what is shown is wrong.

A simulated person types files of a package that no training corpus holds, character by character. Before
every keystroke the editor asks `serve`'s route for a one-line suggestion (greedy, `stop: ["\\n"]`, the
file so far as the prompt). The person takes the longest right part of what is shown: Tab for all of it
when all of it is right, else one key per word (Alt-F) while the words are right, when that beats typing
them; otherwise they type one character. A newline with the editor's auto-indent is one key.

- saved: 1 - keys pressed / keys without suggestions.
- wrong: of the suggestions shown, the share of which the person takes nothing.
- shown: the share of keystroke positions at which a suggestion was shown.

The baseline is a history suggester (ptpython's and fish's): the rest of the latest earlier line of the
file that starts with what is typed on the current line; no model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from copilot_repl.completion.result import WORDS, known_name_rest
from copilot_repl.completion.settings import CUT_BELOW

TEST_PACKAGE = ("pluggy", ("_callers.py", "_result.py", "_tracing.py", "_warnings.py"))  # about 12,000 characters
FIT_PACKAGE = ("pygments", ("filter.py", "formatter.py", "console.py", "modeline.py", "plugin.py", "style.py"))

Suggest = Callable[[str], "Shown | None"]
Point = float | tuple[float, float]  # a min_confidence (cut at CUT_BELOW), or (min_confidence, cut_below)


@dataclass
class Shown:
    text: str
    confidence: float = 1.0
    features: dict = field(default_factory=dict)  # what the completer knew, for fitting its confidence
    steps: list = field(default_factory=list)  # per token: the text's length after it, its log-prob
    name: str = ""  # what the file's (or project's) names begun at the cursor go on with: shown where nothing else is


@dataclass
class Tally:
    keys: int = 0
    baseline_keys: int = 0
    positions: int = 0
    shown: int = 0
    wrong: int = 0
    whole: int = 0  # shown and right to its end
    records: list[tuple[dict, bool, bool]] = field(default_factory=list)  # (features, took something, all right)

    def add(self, other: Tally) -> None:
        for name in ("keys", "baseline_keys", "positions", "shown", "wrong", "whole"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.records += other.records

    def summary(self) -> dict:
        return {
            "saved": 1 - self.keys / max(self.baseline_keys, 1),
            "wrong_of_shown": self.wrong / max(self.shown, 1),
            "shown_of_positions": self.shown / max(self.positions, 1),
            "right_to_the_end_of_shown": self.whole / max(self.shown, 1),
        }


def taken(suggestion: str, rest: str) -> tuple[int, int]:
    """(characters gained, keys spent) when the person takes the longest right part of `suggestion`
    against the true `rest` of the line; (0, 0) when nothing is worth taking."""
    if suggestion and rest.startswith(suggestion):
        return len(suggestion), 1
    gained = keys = 0
    for word in WORDS.findall(suggestion):
        if not rest.startswith(suggestion[: gained + len(word)]):
            break
        gained, keys = gained + len(word), keys + 1
    return (gained, keys) if gained > keys else (0, 0)


def after_newline(text: str, pos: int) -> int:
    """Where the cursor lands after Enter at `pos`: the editor's auto-indent puts it at the indentation."""
    pos += 1
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def simulate(text: str, suggest: Suggest, min_confidence: float = 0.0, cut_below: float = CUT_BELOW) -> Tally:
    tally, pos = Tally(), 0
    while pos < len(text):
        end = text.find("\n", pos)
        rest = text[pos : end if end >= 0 else len(text)]
        tally.positions += 1
        shown = at_confidence(suggest(text[:pos]), min_confidence, cut_below)
        gained = 0
        if shown is not None and shown.text:
            gained, keys = taken(shown.text, rest)
            tally.shown += 1
            tally.wrong += gained == 0
            tally.whole += gained == len(shown.text)
            tally.records.append((shown.features, gained > 0, gained == len(shown.text)))
        if gained:
            tally.keys += keys
            pos += gained
        else:
            tally.keys += 1
            pos = after_newline(text, pos) if text[pos] == "\n" else pos + 1
    tally.baseline_keys = baseline_keys(text)
    return tally


def at_confidence(shown: Shown | None, min_confidence: float, cut_below: float = CUT_BELOW) -> Shown | None:
    """What serve shows at `min_confidence`: nothing below it, else the part the model does not merely
    guess, and where that leaves nothing, what the names begun at the cursor go on with (the runner's
    rules, applied here so that one pass serves every threshold)."""
    from copilot_repl.completion.confidence import KNOWN_NAME_CONFIDENCE, confident_part

    if shown is None or not min_confidence:
        return shown
    if not shown.steps:  # a history line, or a known name already
        return shown if shown.confidence >= min_confidence else None
    text = confident_part(shown.text, shown.steps, shown.confidence, min_confidence, cut_below=cut_below)
    if text:
        return Shown(text, shown.confidence, shown.features, shown.steps)
    if shown.name and KNOWN_NAME_CONFIDENCE >= min_confidence:
        return Shown(shown.name, KNOWN_NAME_CONFIDENCE, {"known_name": 1.0})
    return None


def baseline_keys(text: str) -> int:
    keys, pos = 0, 0
    while pos < len(text):
        keys += 1
        pos = after_newline(text, pos) if text[pos] == "\n" else pos + 1
    return keys


def history(before: str) -> Shown | None:
    """The rest of the latest earlier line that starts with what is typed on this line."""
    *earlier, current = before.split("\n")
    typed = current.lstrip()
    if not typed:
        return None
    for line in reversed(earlier):
        line = line.lstrip()
        if len(line) > len(typed) and line.startswith(typed):
            return Shown(line[len(typed) :])
    return None


def package_files(package: str, names: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """(the files to type, the package's other files for an --index)."""
    root = Path(importlib.import_module(package).__file__).parent
    typed = [root / name for name in names]
    others = sorted(p for p in root.glob("*.py") if p not in typed)
    return typed, others


def server_suggester(session) -> Suggest:
    """Suggestions as `serve` answers an editor: the same request parsing, the same runner. Nothing is
    withheld here (min_confidence 0), so that one pass serves every threshold: `simulate` applies it,
    and a position's suggestion is asked once (the answer is the same whatever the threshold)."""
    from copilot_repl.protocols import parse_completion_request

    session.model()
    base = session.sampling
    asked: dict[str, Shown | None] = {}

    def suggest(before: str) -> Shown | None:
        if before not in asked:
            body = {"prompt": before, "max_tokens": 32, "temperature": 0, "stop": ["\n"], "min_confidence": 0}
            request, _ = parse_completion_request(body, base, "default")
            best = session.engine.complete(request).finish().candidates[0]
            name = known_name_rest(before, project=session.engine.project_names)
            asked[before] = Shown(best.text, best.confidence, best.features, best.steps, name) if best.text else None
        return asked[before]

    return suggest


def run(
    package: tuple[str, tuple[str, ...]],
    column: str,
    thresholds: tuple[Point, ...] = (0.0,),
    chars: int | None = None,
    model: str | None = None,
) -> dict[Point, Tally]:
    """One column (`history`, `model`, or `model+index`: the package's other files indexed), a tally per
    min_confidence threshold (cut at CUT_BELOW), or per (min_confidence, cut_below)."""
    from copilot_repl.completion.session import Session

    typed, others = package_files(*package)
    if column == "history":
        suggesters: list[Suggest] = [history] * len(typed)
    else:
        session = Session(model_ref=model, index_paths=[str(p) for p in others] if column == "model+index" else [])
        suggesters = [server_suggester(session) for _ in typed]
    tallies = {t: Tally() for t in thresholds}
    for path, suggest in zip(typed, suggesters):
        text = path.read_text(encoding="utf-8")
        for threshold in thresholds:
            point = threshold if isinstance(threshold, tuple) else (threshold, CUT_BELOW)
            tallies[threshold].add(simulate(text[:chars] if chars else text, suggest, *point))
    return tallies


SWEEP = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5)
CUTS = (0.25, 0.5)  # cut_below beside the default, at serve's min_confidence: where the cut moves the trade


def keystrokes(chars: int | None = None, thresholds: tuple[float, ...] = SWEEP) -> dict:
    """Every column side by side on the test package: history, and the model with and without the
    package's other files as an index, at each min_confidence (serve's default among them)."""
    from copilot_repl.completion.confidence import SERVE_MIN_CONFIDENCE

    points: tuple[Point, ...] = (*sorted({*thresholds, SERVE_MIN_CONFIDENCE}), *((SERVE_MIN_CONFIDENCE, c) for c in CUTS))
    result: dict = {"package": TEST_PACKAGE[0], "files": len(TEST_PACKAGE[1]), "serve_min_confidence": SERVE_MIN_CONFIDENCE}
    columns = ("history", "model", "model+index")
    jobs = [(column, (0.0,) if column == "history" else points, chars) for column in columns]
    with ProcessPoolExecutor(2) as pool:  # one thread each: the two model columns side by side
        for column, tallies in zip(columns, pool.map(_column, jobs)):
            for point, tally in tallies.items():
                result["keys_without_suggestions"] = tally.baseline_keys
                label = column if column == "history" else f"{column}@{_label(point)}"
                for name, value in tally.summary().items():
                    result[f"{label}_{name}"] = round(value, 4)
    return result


def _label(point: Point) -> str:
    return f"{point[0]:g}/cut{point[1]:g}" if isinstance(point, tuple) else f"{point:g}"


def _column(job: tuple[str, tuple[Point, ...], int | None]) -> dict[Point, Tally]:
    column, thresholds, chars = job
    return run(TEST_PACKAGE, column, thresholds, chars)
