"""The completion runner: a request in, text pieces streamed out, then one result record.

Every face (`--once`, batch mode, the REPL, `serve`) sends a `Request` and renders what comes back;
none of them samples, stops or ranks on its own. One token loop serves one completion and best-of-n
alike (n rows in one batch): the runtime gives logits, the buffer cache and the corpus index are
mixed in, recent tokens are penalised, one sampler draws, the stop rules cut.
"""

from __future__ import annotations

import codecs
import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from copilot_repl.confidence import Confidence, confident_part
from copilot_repl.cursor import Cursor, place
from copilot_repl.fim import infill_prompt
from copilot_repl.result import Candidate, Result, TokenStats
from copilot_repl.retrieval import MAX_MATCH, CorpusIndex, Gate, buffer_match, is_word, mix
from copilot_repl.sampler import log_softmax, penalize, sample
from copilot_repl.settings import Sampling
from copilot_repl.stops import StopRules
from copilot_repl.syntax import closed, syntax_ok, valid_prefix
from copilot_repl.tokenizer import EOT, Tokenizer

HEAL_TOKENS = 3  # at most this many tokens of an unfinished word are taken back and written again


class Runtime(Protocol):
    """A model that reads a prompt and then one token per row at a time (numpy on a CPU, torch on a GPU)."""

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


def clean_text(text: str) -> str:
    """Lone surrogates cannot be encoded by any tokenizer; replace them rather than fail."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@dataclass
class Engine:
    """What completing needs of a model: its runtime, tokenizer, and what it may copy from."""

    runtime: Runtime
    tokenizer: Tokenizer
    indexes: list[CorpusIndex] = field(default_factory=list)  # what the model was trained on
    project: CorpusIndex | None = None  # the user's own code (--index), with a gate of its own
    gate: Gate = field(default_factory=Gate)
    confidence: Confidence = field(default_factory=Confidence)
    heal: bool = True  # False only to measure what token healing is worth (benchmarks)
    _tables: dict = field(default_factory=dict, repr=False)

    def complete(self, request: Request) -> Stream:
        return Stream(self, request)

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
    `result` is set once it is over, also when stopped early by `close()` or Ctrl-C."""

    def __init__(self, engine: Engine, request: Request):
        self.engine, self.request = engine, request
        self.result: Result | None = None
        self.done: Callable[[Result], None] | None = None  # told the result once (the session records its turn)
        self.marked_below = 0.0  # a face marks a shown completion less confident than this
        self.quiet = False  # nobody watches it stream: a stop may still take back any of its text
        s = request.sampling
        self.seed = s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little")
        self._pieces = self._run()

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
    def _prompt_ids(self, cursor: Cursor) -> tuple[list[int], list[int], int, int, int]:
        """(ids the model reads, every id of the buffer for the cache, prompt tokens, context tokens
        seen, prompt tokens cropped)."""
        tok, req = self.engine.tokenizer, self.request
        limit = self.engine.runtime.block_size - 1
        prompt, context = clean_text(req.prompt), clean_text(req.context)
        if req.suffix is not None:
            ids, cropped = infill_prompt(tok, context + prompt, clean_text(req.suffix), limit - 1)
            prompt_tokens = len(tok.encode(prompt))
            return [tok.eot_id, *ids], [tok.eot_id, *ids], prompt_tokens, 0, max(0, cropped - len(tok.encode(context)))
        tail = prompt[: cursor.keep] + cursor.lead
        ids = [tok.eot_id, *tok.encode(context + tail)]  # files start after end-of-text
        buffer = ids if req.copyable is None else [tok.eot_id, *tok.encode(clean_text(req.copyable) + tail)]
        prompt_tokens = len(tok.encode(prompt))
        context_tokens = len(tok.encode(context)) if context else 0
        # cropped from the left in steps of an eighth of the window, so the window's start, and with it
        # the runtime's cached prompt, stays put while a user types on (one token a keystroke)
        step = max(1, self.engine.runtime.block_size // 8)
        start = -(-max(0, len(ids) - limit) // step) * step
        window = ids[start:]
        cropped = max(0, prompt_tokens - (len(window) - 1)) if start else 0
        seen_context = max(0, min(context_tokens, len(window) - prompt_tokens))
        return window, buffer, prompt_tokens, seen_context, cropped

    def _heal(self, ids: list[int]) -> tuple[list[int], bytes]:
        """Token healing. A prompt cut mid-word ("compute_chec") ends in tokens the model rarely saw
        there, since whole words were merged into longer tokens in training ("check", not "che" "c").
        Take back the tokens of the unfinished word (at most HEAL_TOKENS; one token after a symbol) and
        let the completion write them again: its first tokens must agree with the bytes taken back."""
        tok = self.engine.tokenizer
        if not self.engine.heal or len(ids) < 2 or self.request.prompt[-1:].isspace():
            return ids, b""
        word = re.findall(r"\w*\Z", self.request.prompt)[0].encode("utf-8")
        taken = 0
        removed = b""
        while taken < min(HEAL_TOKENS, len(ids) - 1):
            piece = tok.token_bytes(ids[-1 - taken])
            if not piece or (taken and len(removed) + len(piece) > len(word)):
                break
            removed, taken = piece + removed, taken + 1
            if len(removed) >= len(word):
                break
        return (ids[:-taken], removed) if taken else (ids, b"")

    def _agreeing(self, pending: bytes) -> np.ndarray:
        """Tokens that agree with the bytes still to be written again: they start with them, or are a
        start of them."""
        tok = self.engine.tokenizer
        return np.asarray(
            [i for i in range(tok.vocab_size) if (b := tok.token_bytes(i)) and (b.startswith(pending) or pending.startswith(b))]
        )

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> Generator[str, None, None]:
        engine, req, s = self.engine, self.request, self.request.sampling
        tok, runtime, rows = engine.tokenizer, engine.runtime, s.n
        cursor = place(req.prompt, s.stop_mode == "block") if req.suffix is None else Cursor(len(req.prompt))
        window, buffer, prompt_tokens, context_tokens, cropped = self._prompt_ids(cursor)
        pending = cursor.retype.encode() or (b" " if cursor.hide_space else b"")
        if not cursor.lead and not cursor.retype:
            healed_window, pending = self._heal(window)
            buffer = buffer[: len(buffer) - (len(window) - len(healed_window))]
            window = healed_window
        banned = np.zeros(runtime.vocab_size, dtype=bool)
        banned[[i for name, i in tok.special_ids.items() if name != EOT]] = True
        banned[tok.vocab_size :] = True
        pendings = [pending] * rows  # per row: the bytes it has yet to write again (not shown)
        mode = "none" if req.suffix is not None else s.stop_mode
        rules = [StopRules(req.prompt, s.stop, mode, repeats=s.stop_mode != "none") for _ in range(rows)]
        decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in range(rows)]
        texts, reasons = [cursor.shown] * rows, [""] * rows
        stats = [TokenStats() for _ in range(rows)]
        histories = [np.asarray(buffer, dtype=np.int64) for _ in range(rows)]
        rng = np.random.default_rng(self.seed)
        start, shown = time.perf_counter(), 0
        # streamed text is on a screen and stays; with a min_confidence nothing is shown before its end
        stream = rows == 1 and s.min_confidence == 0 and not self.quiet
        logits = runtime.prefill(np.asarray([window] * rows))
        finished = False
        try:
            for step in range(s.max_tokens):
                logits = logits.astype(np.float64)
                logits[:, banned] = -np.inf
                model_logp = log_softmax(logits)
                logp, copied = np.empty_like(model_logp), np.zeros(rows)
                for row in range(rows):
                    logp[row], copied[row] = self._mixed(model_logp[row], histories[row])
                    logp[row, banned] = -np.inf
                # llama.cpp's repeat penalty over the last tokens, prompt included, after the mixture: copying
                # from the index must not bring back the loop the penalty is there to stop
                recent = [h[-s.repeat_last_n :].tolist() if s.repeat_last_n else [] for h in histories]
                logp = log_softmax(penalize(logp, recent, s.repeat_penalty))
                free = logp.copy()
                if step == 0 and cursor.indent_first:
                    logp[:, ~self._space_and_word()] = -np.inf
                if step == 0 and req.suffix is None:  # a request for a completion is never answered by ending the text
                    logp[:, tok.eot_id] = -np.inf
                for row in range(rows):
                    if pendings[row]:
                        allowed = np.full(runtime.vocab_size, -np.inf)
                        allowed[self._agreeing(pendings[row])] = 0.0
                        logp[row] += allowed
                    if not np.isfinite(logp[row]).any():  # no token of this vocabulary can obey: let it be
                        logp[row] = free[row]
                tokens = sample(logp, s, rng)
                for row in range(rows):
                    if reasons[row]:
                        continue
                    token = int(tokens[row])
                    histories[row] = np.append(histories[row], token)
                    if token == tok.eot_id:
                        stats[row].add(float(logp[row, token]), float(model_logp[row, token]), copied[row], len(texts[row]))
                        reasons[row] = "end of middle" if req.suffix is not None else "end of text"
                        continue
                    raw, pending = tok.token_bytes(token), pendings[row]
                    pendings[row] = pending[len(raw) :]
                    texts[row] += decoders[row].decode(raw[len(pending) :])
                    stats[row].add(float(logp[row, token]), float(model_logp[row, token]), copied[row], len(texts[row]))
                    cut = rules[row].find_stop(texts[row])
                    if cut is not None and stream:
                        cut = max(cut, shown)  # what was streamed stays (a repetition is seen only once it is out)
                    if cut is not None:
                        texts[row], reasons[row] = texts[row][:cut], rules[row].reason
                if stream:
                    safe = len(StopRules.finish(texts[0])) if reasons[0] else rules[0].safe_length(texts[0])
                    if safe > shown:
                        yield texts[0][shown:safe]
                        shown = safe
                if all(reasons):
                    break
                if runtime.length >= runtime.block_size:  # the window is full: re-read its last half
                    logits = runtime.prefill(np.stack([h[-(runtime.block_size // 2) :] for h in histories]))
                else:
                    logits = runtime.step(tokens)
            finished = True
        finally:  # also on Ctrl-C or close(): the result says how far it got
            reasons = [r or ("max tokens" if finished else "interrupted") for r in reasons]
            finals = [StopRules.finish(texts[r] + decoders[r].decode(b"", final=True)) for r in range(rows)]
            candidates = self._judge(finals, reasons, stats, shown)
            if stream and len(candidates[0].text) < shown:
                candidates[0].text = texts[0][:shown]  # streamed is shown: it stays
            seconds = time.perf_counter() - start
            self.result = Result(prompt_tokens, context_tokens, cropped, self.seed, seconds, candidates)
            if self.done is not None:
                self.done(self.result)
        text = self.result.text
        if len(text) > shown:
            yield text[shown:]

    def _mixed(self, logp: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's log-probabilities mixed with what the buffer, the training index and the user's
        project offer, and the weight the copies got. Of the training indexes the longest match counts."""
        engine, tail = self.engine, history[-MAX_MATCH:].tolist()
        words = self._word_tokens()
        best = None
        for index in engine.indexes:
            match = index.match(tail, words)
            if match is not None and (best is None or match.length > best.length):
                best = match
        project = engine.project.match(tail, words) if engine.project is not None else None
        gate = engine.gate
        return mix(logp, [(buffer_match(history, words), gate.buffer), (best, gate.corpus), (project, gate.project)])

    def _judge(self, texts: list[str], reasons: list[str], stats: list[TokenStats], shown: int) -> list[Candidate]:
        """Each candidate cut back to where it is valid Python (when the prompt is), with its confidence;
        the best first: valid, then the most confident. Below `min_confidence`, the best is withheld."""
        req, s, engine = self.request, self.request.sampling, self.engine
        source = req.context + req.prompt
        fill = req.suffix is not None
        prompt_parses = fill or syntax_ok(source)
        # a completion after code that ends closed must end closed too: not inside a bracket, a string,
        # or half a statement (a completion after `x = (` may well end inside the bracket)
        must_close = not fill and closed(source)
        candidates = []
        for text, reason, stat in zip(texts, reasons, stats):
            valid = closed(source + text) if must_close else syntax_ok(source + text + (req.suffix or ""))
            if not valid and must_close and reason != "interrupted":
                kept = valid_prefix(source, text, shown)
                if kept is not None and kept.strip():
                    text, valid = kept, True
                    reason = "stop" if reason in ("max tokens", "repetition") else reason
            features = stat.features(text, valid, req.prompt)
            confidence = engine.confidence.score(features) if text.strip() else 0.0
            candidates.append(Candidate(text, stat.count, stat.mean, valid, reason, confidence, features, "", stat.steps))
        candidates.sort(key=lambda c: (not c.syntax_ok and prompt_parses, -c.confidence))
        best = candidates[0]
        if shown or best.stop_reason == "interrupted":  # what was streamed stays; its confidence says what it is worth
            return candidates
        if not best.syntax_ok and best.text and (must_close or (prompt_parses and len(candidates) > 1)):
            best.withheld, best.text, best.stop_reason = best.text, "", "no valid candidate"
        elif s.min_confidence and best.text:
            part = confident_part(best.text, best.steps, best.confidence, s.min_confidence)
            if part != best.text:
                reason = "confidence" if part.strip() else "low confidence"
                best.withheld, best.text, best.stop_reason = best.text[len(part) :], part, reason
        return candidates

    def _space_and_word(self) -> np.ndarray:
        """Tokens that are one space and then a word or symbol: how the first line of a body starts once
        the model has read its indentation one space short."""
        words = self.engine.token_table(lambda b: len(b) > 1 and b[:1] == b" " and not b[1:2].isspace())
        return words if words.any() else self.engine.token_table(lambda b: b == b" ")  # a vocabulary of characters

    def _word_tokens(self) -> np.ndarray:
        return self.engine.token_table(is_word)
