"""What a completion comes back as: its candidates with their scores, and the one record every face
renders (`--json`, batch mode, the REPL's dim line, the server's choices)."""

from __future__ import annotations

import math
import os
import re
import string
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

IDENTIFIER_CHARS = string.ascii_letters + string.digits + "_"
WORDS = re.compile(r"\W*\w+|\W+")  # what one Alt-F (forward-word) takes


@dataclass
class Candidate:
    text: str
    tokens: int
    mean_logprob: float
    syntax_ok: bool
    stop_reason: str
    confidence: float = 0.0  # the chance, fitted on held-out typing, that a person takes some of it
    features: dict[str, float] = field(default_factory=dict)  # what the confidence was computed from
    withheld: str = ""  # the text, when it is not shown (below min_confidence, or no valid candidate)
    steps: list[tuple[int, float]] = field(default_factory=list)  # per token: the text's length after it, its log-prob


@dataclass
class TokenStats:
    """What the loop learns of one row's tokens, for its confidence."""

    steps: list[tuple[int, float]] = field(default_factory=list)  # per token: the text's length after it, its
    # log-probability as sampled (the model mixed with the copies)
    model_total: float = 0.0  # the model's own log-probabilities, before the copies
    copied: float = 0.0  # summed weight the copies got
    lowest_margin: float = 30.0  # of its tokens, the least lead over the next best (capped at 30 nats)

    def add(self, logprob: float, model_logprob: float, copied: float, margin: float, end: int) -> None:
        self.steps.append((end, logprob))
        self.model_total += max(model_logprob, -30.0)
        self.copied += copied
        self.lowest_margin = min(self.lowest_margin, max(margin, -30.0))

    @property
    def count(self) -> int:
        return len(self.steps)

    @property
    def logprobs(self) -> list[float]:
        return [logprob for _, logprob in self.steps]

    @property
    def mean(self) -> float:
        return sum(self.logprobs) / max(self.count, 1)

    def features(self, text: str, valid: bool, prompt: str) -> dict[str, float]:
        """What the confidence is computed from: the model's probabilities, then where the text goes."""
        n, first = max(self.count, 1), self.logprobs[0] if self.logprobs else 0.0
        return {
            "mean_logprob": max(self.mean, -30.0),
            "lowest_logprob": max(min(self.logprobs, default=0.0), -30.0),
            "first_logprob": max(first, -30.0),
            "model_mean_logprob": self.model_total / n,
            "copied": self.copied / n,
            "valid": float(valid),
            "lowest_margin": self.lowest_margin if self.steps else 0.0,
            **text_features(prompt, text),
        }


def text_features(prompt: str, text: str) -> dict[str, float]:
    """What the prompt and the suggestion's text tell of its chance, whatever model wrote it: a name
    the file already has is likely typed again (a new one is the model's guess), above all when no other
    name of the file starts as typed; how many keys (Tab, or a word each) it is worth."""
    head = typed_word(prompt)
    rest = text if head else text.lstrip()
    word = head + rest[: len(rest) - len(rest.lstrip(IDENTIFIER_CHARS))]
    before = prompt[: len(prompt) - len(head)]
    known = len(word) > len(head) and has_name(before, word)
    begun = names_begun(before, head)
    return {
        "log_chars": math.log1p(len(text.strip())),
        "mid_word": float(bool(head)),
        "line_start": float(not prompt.rsplit("\n", 1)[-1].strip()),
        "known_word": float(known),
        "chunks": math.log1p(len(WORDS.findall(text))),
        # the word is the only one of the file's that starts as typed (`compute_chec` -> `compute_checksum`)
        "only_known_start": float(known and begun == {word}),
    }


@dataclass
class Result:
    prompt_tokens: int
    context_tokens: int  # of the context, how many tokens the model saw
    cropped_tokens: int  # of the prompt itself, how many did not fit the window
    seed: int
    seconds: float
    candidates: list[Candidate]  # best first; one for a plain completion
    steps: int = 0  # tokens decoded per row, a retry's included: what the speed is read from

    @property
    def text(self) -> str:
        return self.candidates[0].text

    @property
    def stop_reason(self) -> str:
        return self.candidates[0].stop_reason

    @property
    def tokens(self) -> int:
        return self.candidates[0].tokens

    @property
    def why_empty(self) -> str | None:
        """Why nothing was completed, in words (None when something was)."""
        if self.text.strip():
            return None
        best = self.candidates[0]
        return {
            "low confidence": f"nothing confident enough to suggest (confidence {best.confidence:.2f}, below min_confidence)",
            "unsure start": "nothing sure enough to suggest (the model finds its first words less likely than cut_below)",
            "no valid candidate": "no candidate was valid Python here",
            "repetition": "the model only repeated what is already there",
            "end of text": "the model ended the file here",
            "end of middle": "the model found nothing to fill in",
            "interrupted": "interrupted before the first token",
            "superseded": "a newer request came first",
            "inside a word": "the cursor is inside a word: nothing to add there",
        }.get(best.stop_reason, "the model ended the statement or block here")

    @property
    def tokens_per_second(self) -> float:
        """The model's decoding speed, not the answer's length over the time (a retry, or a best-of-n
        row that ran longer than the winner, would make a fast model look slow)."""
        return max(self.steps, self.tokens) / self.seconds if self.seconds else 0.0

    def record(self) -> dict[str, Any]:
        """What a program reading `--json` (or the server) needs, the same from every face."""
        record = {
            "completion": self.text,
            "confidence": round(self.candidates[0].confidence, 4),
            "tokens": self.tokens,
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 4),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "seed": self.seed,
            "prompt_tokens": self.prompt_tokens,
            "context_tokens": self.context_tokens,
            "cropped_tokens": self.cropped_tokens,
        }
        if self.why_empty:
            record["note"] = self.why_empty
        if self.candidates[0].withheld:  # what was held back, for a program that wants to look anyway
            record["withheld"] = self.candidates[0].withheld
        if len(self.candidates) > 1:
            record["candidates"] = [
                {
                    "completion": c.text,
                    "tokens": c.tokens,
                    "mean_logprob": round(c.mean_logprob, 4),
                    "confidence": round(c.confidence, 4),
                    "syntax_ok": c.syntax_ok,
                    "stop_reason": c.stop_reason,
                }
                for c in self.candidates
            ]
        return record


def typed_word(prompt: str) -> str:
    """The part of a word typed so far at the end of `prompt`."""
    return prompt[len(prompt.rstrip(IDENTIFIER_CHARS)) :]


def inside_word(prompt: str, after: str) -> bool:
    """Does the cursor split a word (`compu|te`)? What an editor shows there would be typed twice."""
    return bool(typed_word(prompt)) and re.match(r"\w", after) is not None


def has_name(code: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", code) is not None


def names_begun(code: str, head: str) -> set[str]:
    """The names of `code` that start with `head` and are longer."""
    return set(re.findall(rf"(?<!\w){re.escape(head)}\w+", code)) if head else set()


def known_name_rest(typed: str, after: str = "", project: Sequence[str] = (), shortest: int = 3) -> str:
    """What the names of the user's code (`typed`, and `after` the cursor) that start with the word
    being typed all go on with: the rest of the one such name, or the part several share past the word
    when that is two characters or more (a shell's Tab); "" otherwise. Only for a word of `shortest`
    characters or more that is not itself a name there and that the cursor ends: a short head, or one
    that is already a whole name, is as often the start of something new. Where the code has no name
    that starts so, their project's names (`project`, sorted: what --index holds). Where the model has
    nothing confident to say mid-word, this is right two times in three (benchmarks/keystrokes.py)."""
    head = typed_word(typed)
    if len(head) < shortest or head[0].isdigit() or inside_word(typed, after):
        return ""
    code = typed[: len(typed) - len(head)] + "\n" + after
    if has_name(code, head):
        return ""
    begun = sorted(names_begun(code, head)) or _begun_in(project, head)
    if not begun:
        return ""
    rest = os.path.commonprefix([begun[0], begun[-1]])[len(head) :]  # sorted: what the first and last share, all do
    return rest if len(begun) == 1 or len(rest) >= 2 else ""


def _begun_in(names: Sequence[str], head: str) -> list[str]:
    """Of the sorted `names`, the first and the last that start with `head` and are longer (one when
    only one does), or none when `head` is itself one of them."""
    i, j = bisect_left(names, head), bisect_left(names, head + "\U0010ffff")
    if i == j or names[i] == head:
        return []
    return [names[i], names[j - 1]] if j - i > 1 else [names[i]]
