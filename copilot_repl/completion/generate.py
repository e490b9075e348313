"""The completion runner: a request in, text pieces streamed out, then one result record.

Every face (`--once`, batch mode, the REPL, `serve`) sends a `Request` and renders what comes back;
none of them samples, stops or ranks on its own. One token loop serves one completion and best-of-n
alike (n rows in one batch): the runtime gives logits, the buffer cache and the corpus index are
mixed in, recent tokens are penalised, one sampler draws, the stop rules cut.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from copilot_repl.completion.confidence import Confidence
from copilot_repl.completion.cursor import Cursor, place
from copilot_repl.completion.judging import judge, known_name_instead
from copilot_repl.completion.result import Result, inside_word
from copilot_repl.completion.retrieval import MAX_MATCH, CorpusIndex, Gate, buffer_match, is_word, mix
from copilot_repl.completion.row import Row
from copilot_repl.completion.sampler import log_softmax, penalize, sample
from copilot_repl.completion.scope import Scope, in_scope, strangers_less_likely
from copilot_repl.completion.settings import Sampling
from copilot_repl.completion.stops import StopRules, answered_lines, defined_names
from copilot_repl.completion.syntax import ClosedLines, closed
from copilot_repl.completion.window import Window, heal, read_window
from copilot_repl.tokenizer import EOT, Tokenizer

RESAMPLE_ROWS = 4  # a completion with nothing valid in it is tried again this many times at once


class Runtime(Protocol):
    """A model that reads a prompt and then one token per row at a time (numpy on a CPU, torch on a GPU)."""

    name: str  # "numpy", "torch", "torch int8": what :show and --json say
    block_size: int
    vocab_size: int
    length: int  # tokens in the cache

    def prefill(self, ids: np.ndarray) -> np.ndarray: ...  # (rows, T) -> logits (rows, vocab)
    def step(self, tokens: np.ndarray) -> np.ndarray: ...  # (rows,) -> logits (rows, vocab)
    def num_params(self) -> int: ...


@dataclass(frozen=True)
class Request:
    prompt: str
    suffix: str | None = None  # given: fill the gap between prompt and suffix
    context: str = ""  # code before the prompt: the session so far, or a file an editor sends
    sampling: Sampling = field(default_factory=Sampling)
    copyable: str | None = None  # of the context, what the buffer cache may copy from (None: all of it)
    max_seconds: float | None = None  # stop writing after this long (an editor's budget per suggestion)
    superseded: Callable[[], bool] | None = None  # asked at each token: a newer request has come, stop
    after: str = ""  # text after the cursor that is not filled up to (an editor's line): its names count


@dataclass
class Engine:
    """What completing needs of a model: its runtime, tokenizer, and what it may copy from."""

    runtime: Runtime
    tokenizer: Tokenizer
    indexes: list[CorpusIndex] = field(default_factory=list)  # what the model was trained on
    project: CorpusIndex | None = None  # the user's own code (--index), with a gate of its own
    project_names: tuple[str, ...] = ()  # the names in it, sorted: the user's, never a stranger's (scope.py)
    gate: Gate = field(default_factory=Gate)
    confidence: Confidence = field(default_factory=Confidence)
    heal: bool = True  # False only to measure what token healing is worth (benchmarks)
    stranger_nats: float = 2.0  # how much less likely the model makes a name the code here lacks (scope.py)
    _tables: dict = field(default_factory=dict, repr=False)
    _agreeing: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False)

    def complete(self, request: Request) -> Stream:
        return Stream(self, request)

    def agreeing(self, pending: bytes) -> np.ndarray:
        """The ids of tokens that agree with bytes still to be written again: they start with them, or
        are a start of them. Kept per `pending` (a server heals the same few words while a user types on)."""
        if pending not in self._agreeing:
            if len(self._agreeing) >= 4096:
                self._agreeing.clear()
            pieces = (self.tokenizer.token_bytes(i) for i in range(self.tokenizer.vocab_size))
            agree = [bool(b) and (b.startswith(pending) or pending.startswith(b)) for b in pieces]
            self._agreeing[pending] = np.flatnonzero(agree)
        return self._agreeing[pending]

    def banned(self) -> np.ndarray:
        """Tokens a completion never writes: the special ones but end-of-text, and ids past the vocabulary."""
        if "banned" not in self._tables:
            banned = np.zeros(self.runtime.vocab_size, dtype=bool)
            banned[[i for name, i in self.tokenizer.special_ids.items() if name != EOT]] = True
            banned[self.tokenizer.vocab_size :] = True
            self._tables["banned"] = banned
        return self._tables["banned"]

    def pieces(self) -> list[str]:
        """Each token id's text (a part of a character shows as the replacement character)."""
        if "pieces" not in self._tables:
            decode = lambda i: self.tokenizer.token_bytes(i).decode("utf-8", "replace")  # noqa: E731
            self._tables["pieces"] = [decode(i) for i in range(self.tokenizer.vocab_size)]
        return self._tables["pieces"]

    def token_table(self, test: Callable[[bytes], bool]) -> np.ndarray:
        """Which token ids pass `test` on their bytes (vocab,), computed once per test's code."""
        key = test.__code__
        if key not in self._tables:
            table = np.zeros(self.runtime.vocab_size, dtype=bool)
            table[: self.tokenizer.vocab_size] = [test(self.tokenizer.token_bytes(i)) for i in range(self.tokenizer.vocab_size)]
            self._tables[key] = table
        return self._tables[key]


class Stream:
    """Iterate for the completion's text as it comes (best-of-n gives its winner at the end);
    `result` is set once it is over, also when stopped early by `close()` or Ctrl-C, and then every
    `on_done` listener is told it. A result is never changed once it is out."""

    def __init__(self, engine: Engine, request: Request, tried: int = 0):
        self.engine, self.request = engine, request
        s = request.sampling
        # greedy rows that differ: row i opens with the model's (tried + i + 1)-th choice of token and is
        # greedy after it (best-of-n at temperature 0, or a retry after the `tried` greedy answer went wrong)
        self.opening = tried if s.temperature == 0 and (tried or s.n > 1) else None
        self.result: Result | None = None
        self.listeners: list[Callable[[Result], None]] = []
        self.marked_below = 0.0  # a face marks a shown completion less confident than this
        self.quiet = False  # nobody watches it stream: a stop may still take back any of its text
        self.seed = s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little")
        self.cursor = place(request.prompt, s.stop_mode == "block") if request.suffix is None else Cursor(len(request.prompt))
        self.scope = Scope(request.context + request.prompt, request.suffix or request.after, engine.project_names)
        self._pieces = self._run()

    def on_done(self, listener: Callable[[Result], None]) -> None:
        self.listeners.append(listener)

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def close(self) -> None:
        self._pieces.close()

    def finish(self) -> Result:
        """Run to the end without showing anything; the result."""
        self.quiet = True
        for _ in self._pieces:
            pass
        assert self.result is not None
        return self.result

    # -- the prompt ---------------------------------------------------------------------------------
    def _rows(self, window: Window) -> list[Row]:
        """The n rows, each starting where the cursor says (healing takes back the end of the window)."""
        req, s, cursor = self.request, self.request.sampling, self.cursor
        pending = cursor.retype.encode() or (b" " if cursor.hide_space else b"")
        if not cursor.lead and not cursor.retype and self.engine.heal:
            healed, pending = heal(self.engine.tokenizer, window.ids, req.prompt)
            window.buffer = window.buffer[: len(window.buffer) - (len(window.ids) - len(healed))]
            window.ids = healed
        mode = "none" if req.suffix is not None else s.stop_mode
        answered = answered_lines(req.context, req.copyable)
        defined = defined_names(req.context + req.prompt)
        return [
            Row(
                cursor.shown,
                pending,
                StopRules(req.prompt, s.stop, mode, repeats=s.stop_mode != "none", answered=answered, defined=defined),
                np.asarray(window.buffer, dtype=np.int64),
            )
            for _ in range(s.n)
        ]

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> Generator[str, None, None]:
        engine, req, s = self.engine, self.request, self.request.sampling
        tok, runtime = engine.tokenizer, engine.runtime
        window = read_window(tok, runtime.block_size, self.cursor, req.prompt, req.context, req.suffix, req.copyable)
        rows = self._rows(window)
        if inside_word(req.prompt, req.after):  # an editor's cursor inside a word: what is written is typed twice
            for row in rows:
                row.reason = "inside a word"
            self.result = self._publish(window, rows, True, 0, 0.0, 0)
            return
        rng = np.random.default_rng(self.seed)
        start, shown = time.perf_counter(), 0
        # streamed text is on a screen and stays; with a min_confidence nothing is shown before its end
        stream = s.n == 1 and s.min_confidence == 0 and not self.quiet
        source = req.context + req.prompt
        lines = ClosedLines(source, s.one_line) if stream and req.suffix is None and closed(source) else None
        ends = "end of middle" if req.suffix is not None else "end of text"
        logits = runtime.prefill(np.asarray([window.ids] * s.n))
        finished, opening, steps = False, self.opening, 0
        try:
            for step in range(s.max_tokens):
                steps = step + 1
                logp, model_logp, copied = self._next_logp(logits, rows, step)
                tokens = sample(logp, s, rng)
                if opening is not None and not any(row.pending for row in rows):
                    tokens, opening = self._openings(logp, opening), None
                for i, row in enumerate(rows):
                    if not row.reason:
                        token = int(tokens[i])
                        logprobs = (
                            float(logp[i, token]),
                            float(model_logp[i, token]),
                            float(copied[i]),
                            _margin(logp[i], token),
                        )
                        row.take(token, tok.token_bytes(token), logprobs, ends if token == tok.eot_id else "", shown)
                if stream:
                    first = rows[0]
                    safe = len(StopRules.finish(first.text)) if first.reason else first.rules.safe_length(first.text)
                    safe = min(safe, lines.limit(first.text)) if lines else safe
                    if safe > shown:
                        yield first.text[shown:safe]
                        shown = safe
                halt = self._halt(start)
                for row in rows if halt else ():
                    row.reason = row.reason or halt
                if all(row.reason for row in rows):
                    break
                if runtime.length >= runtime.block_size:  # the window is full: re-read its last half
                    # a row that stopped kept no more history; it stands in a running one's to keep one batch
                    running = next(row for row in rows if not row.reason)
                    half = [(running if row.reason else row).history[-(runtime.block_size // 2) :] for row in rows]
                    logits = runtime.prefill(np.stack(half))
                else:
                    logits = runtime.step(tokens)
            finished = True
        finally:  # also on Ctrl-C or close(): the result says how far it got
            self.result = self._publish(window, rows, finished, shown, time.perf_counter() - start, steps)
        text = self.result.text
        if len(text) > shown:
            yield text[shown:]

    @staticmethod
    def _openings(logp: np.ndarray, skip: int) -> np.ndarray:
        """For row i the (skip + i + 1)-th most likely token, or the least likely one allowed when fewer are."""
        chosen = np.empty(len(logp), dtype=np.int64)
        for i, values in enumerate(logp):
            order = np.argsort(-values, kind="stable")
            allowed = order[np.isfinite(values[order])]
            chosen[i] = allowed[min(skip + i, len(allowed) - 1)] if len(allowed) else order[0]
        return chosen

    def _halt(self, start: float) -> str:
        """Why every row must stop now, from outside the text: a newer request, or the time is up."""
        req = self.request
        if req.superseded is not None and req.superseded():
            return "superseded"
        if req.max_seconds is not None and time.perf_counter() - start >= req.max_seconds:
            return "time limit"
        return ""

    def _next_logp(self, logits: np.ndarray, rows: list[Row], step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step's log-probabilities to sample from for each row, the model's own, and the weight the
        copies got: special tokens masked, the copies mixed in, recent tokens penalised, the first token
        held to the cursor, and a row still writing taken-back bytes held to tokens that agree with them."""
        engine, req, s = self.engine, self.request, self.request.sampling
        tok, vocab = engine.tokenizer, engine.runtime.vocab_size
        banned = engine.banned()
        logits = logits.astype(np.float64)
        logits[:, banned] = -np.inf
        model_logp = log_softmax(logits)
        logp, copied = np.empty_like(model_logp), np.zeros(len(rows))
        for i, row in enumerate(rows):
            logp[i], copied[i] = self._mixed(model_logp[i], row)
            logp[i, banned] = -np.inf
        # llama.cpp's repeat penalty over the last tokens, prompt included, after the mixture: copying
        # from the index must not bring back the loop the penalty is there to stop
        recent = [row.history[-s.repeat_last_n :].tolist() if s.repeat_last_n else [] for row in rows]
        logp = log_softmax(penalize(logp, recent, s.repeat_penalty))
        free, first = logp.copy(), step == 0
        if first and self.cursor.indent_first:
            logp[:, ~self._space_and_word()] = -np.inf
        if first and self.cursor.body:
            logp[:, self._prose_starts()] = -np.inf
        if step == 1 and self.cursor.body:  # nor a prefix and then the quotes (` r` then `"""`)
            for i, row in enumerate(rows):
                if re.fullmatch(rb"\s*[rRbBuUfF]{1,2}", tok.token_bytes(int(row.history[-1]))):
                    logp[i, self._quote_starts()] = -np.inf
        if first and req.suffix is None:  # a request for a completion is never answered by ending the text
            logp[:, tok.eot_id] = -np.inf
        for i, row in enumerate(rows):
            if row.pending:
                allowed = np.full(vocab, -np.inf)
                allowed[engine.agreeing(row.pending)] = 0.0
                logp[i] += allowed
            if not np.isfinite(logp[i]).any():  # no token of this vocabulary can obey: let it be
                logp[i] = free[i]
        # the chance among the tokens allowed here: what the user typed of a word is not the model's
        # guess, so `hook` after a typed `ho` is as sure as the model is among the tokens that agree
        return log_softmax(logp), model_logp, copied

    def _publish(self, window: Window, rows: list[Row], finished: bool, shown: int, seconds: float, steps: int) -> Result:
        """The result, judged and ranked, and every listener told it."""
        reasons = [row.reason or ("max tokens" if finished else "interrupted") for row in rows]
        candidates = judge(
            self.request, self.engine.confidence, [row.final() for row in rows], reasons, [row.stats for row in rows], shown
        )
        if shown and len(candidates[0].text) < shown:
            candidates[0].text = rows[0].text[:shown]  # streamed is shown: it stays
        req, s = self.request, self.request.sampling
        left = None if req.max_seconds is None else req.max_seconds - seconds  # an editor's budget is for both
        best = candidates[0]
        # a block that began by repeating a line already there is empty, not an answer (a one-line
        # suggestion that would only repeat one is better unsaid)
        repeated = best.stop_reason == "repetition" and not best.text.strip() and not s.one_line
        wrong = finished and not shown and s.n == 1 and (best.stop_reason == "no valid candidate" or repeated)
        if wrong and (left is None or left > 0):
            # an answer that went wrong: a few more, in one batch, before saying nothing; greedy ones open
            # with the model's next choices, so that the same prompt still gets the same answer
            began = time.perf_counter()
            retry = replace(req, sampling=replace(s, n=RESAMPLE_ROWS, seed=self.seed + 1), max_seconds=left)
            again = Stream(self.engine, retry, tried=1)
            retried = again.finish()
            seconds, steps = seconds + time.perf_counter() - began, steps + retried.steps
            # a valid retry stands, shown or withheld as not confident enough (that is why nothing shows)
            if retried.candidates[0].text.strip() or retried.candidates[0].stop_reason in ("low confidence", "unsure start"):
                candidates = retried.candidates[:1]
        known_name_instead(req, candidates[0], self.engine.project_names)
        result = Result(window.prompt_tokens, window.context_tokens, window.cropped, self.seed, seconds, candidates, steps)
        for listener in self.listeners:
            listener(result)
        return result

    def _mixed(self, logp: np.ndarray, row: Row) -> tuple[np.ndarray, float]:
        """The model's log-probabilities mixed with what the buffer, the training index and the user's
        project offer, and the weight the copies got. Of the training indexes the longest match counts.
        A name the code here does not have is made less likely for the model and is never copied."""
        engine, history = self.engine, row.history
        tail, words = history[-MAX_MATCH:].tolist(), self._word_tokens()
        best = None
        for index in engine.indexes:
            match = index.match(tail, words)
            if match is not None and (best is None or match.length > best.length):
                best = match
        project = engine.project.match(tail, words) if engine.project is not None else None
        gates = (engine.gate.buffer, engine.gate.corpus, engine.gate.project)
        found = [buffer_match(history, words), best, project]
        place = None if row.pending else self.scope.at(row.text)
        if place is not None:
            logp = strangers_less_likely(logp, place, engine.pieces(), engine.stranger_nats)
            found = [in_scope(match, place, engine.pieces()) for match in found]
        elif not self.cursor.lead:  # inside a line: writing its end again, or going on with the user's word
            taken = row.pending.decode("utf-8", "replace")
            before = self.scope.before(taken) if taken and not row.text else self.scope.within_word(row.text)
            if before is not None and taken and not taken.strip():  # a space: the next word is the completion's
                logp = strangers_less_likely(logp, before, engine.pieces(), engine.stranger_nats)
            if before is not None:  # the user's word: the model may finish it as it likes, a copy may not
                found = [in_scope(match, before, engine.pieces()) for match in found]
        return mix(logp, list(zip(found, gates)))

    def _space_and_word(self) -> np.ndarray:
        """Tokens that are one space and then a word or symbol: how the first line of a body starts once
        the model has read its indentation one space short."""
        words = self.engine.token_table(lambda b: len(b) > 1 and b[:1] == b" " and not b[1:2].isspace())
        return words if words.any() else self.engine.token_table(lambda b: b == b" ")  # a vocabulary of characters

    def _prose_starts(self) -> np.ndarray:
        """Tokens that open a comment or a string literal after the indentation's last space (`#`, a
        docstring's quotes, `r'`, `f"`)."""
        return self.engine.token_table(lambda b: re.match(rb"\s*(#|[rRbBuUfF]{0,2}[\"'])", b) is not None)

    def _quote_starts(self) -> np.ndarray:
        return self.engine.token_table(lambda b: b[:1] in (b'"', b"'"))

    def _word_tokens(self) -> np.ndarray:
        return self.engine.token_table(is_word)


def _margin(logp: np.ndarray, token: int) -> float:
    """How far `token`'s log-probability is above the best other token's: a close second means the
    model was torn, whatever the chosen token's own probability."""
    runner_up = max(logp[:token].max(initial=-np.inf), logp[token + 1 :].max(initial=-np.inf))
    return float(logp[token] - runner_up)
