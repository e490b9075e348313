"""One candidate as the token loop writes it."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

import numpy as np

from copilot_repl.completion.result import TokenStats
from copilot_repl.completion.stops import StopRules


@dataclass
class Row:
    """Its text so far, what it must still write again before anything shows, the rules that stop
    it, and the tokens the copies and the repeat penalty read."""

    text: str
    pending: bytes
    rules: StopRules
    history: np.ndarray
    decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    stats: TokenStats = field(default_factory=TokenStats)
    reason: str = ""  # why it stopped; empty while it runs

    def take(self, token: int, raw: bytes, logprobs: tuple[float, float, float, float], ends: str, keep: int) -> None:
        """Write `token` (its bytes `raw`; `logprobs`: sampled, the model's own, the copies'
        weight, the lead over the next best).
        `ends`: the reason when the token ends the text; a stop never cuts into the first `keep` characters."""
        self.history = np.append(self.history, token)
        if ends:
            self.stats.add(*logprobs, len(self.text))
            self.reason = ends
            return
        self.text += self.decoder.decode(raw[len(self.pending) :])
        self.pending = self.pending[len(raw) :]
        self.stats.add(*logprobs, len(self.text))
        cut = self.rules.find_stop(self.text)
        if cut is not None:
            self.text, self.reason = self.text[: max(cut, keep)], self.rules.reason

    def final(self) -> str:
        return StopRules.finish(self.text + self.decoder.decode(b"", final=True))
