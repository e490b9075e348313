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
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from copilot_repl.fim import infill_prompt
from copilot_repl.retrieval import MAX_MATCH, CorpusIndex, Gate, buffer_match, mix
from copilot_repl.sampler import log_softmax, penalize, sample
from copilot_repl.settings import Sampling
from copilot_repl.stops import StopRules, block_primer
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


@dataclass
class Candidate:
    text: str
    tokens: int
    mean_logprob: float
    syntax_ok: bool
    stop_reason: str


@dataclass
class Result:
    prompt_tokens: int
    context_tokens: int  # of the context, how many tokens the model saw
    cropped_tokens: int  # of the prompt itself, how many did not fit the window
    seed: int
    seconds: float
    candidates: list[Candidate]  # best first; one for a plain completion

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
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def record(self) -> dict[str, Any]:
        """What a program reading `--json` (or the server) needs, the same from every face."""
        record = {
            "completion": self.text,
            "tokens": self.tokens,
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 4),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "seed": self.seed,
            "prompt_tokens": self.prompt_tokens,
            "context_tokens": self.context_tokens,
            "cropped_tokens": self.cropped_tokens,
        }
        if len(self.candidates) > 1:
            record["candidates"] = [
                {
                    "completion": c.text,
                    "tokens": c.tokens,
                    "mean_logprob": round(c.mean_logprob, 4),
                    "syntax_ok": c.syntax_ok,
                    "stop_reason": c.stop_reason,
                }
                for c in self.candidates
            ]
        return record


def clean_text(text: str) -> str:
    """Lone surrogates cannot be encoded by any tokenizer; replace them rather than fail."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def syntax_ok(source: str) -> bool:
    """Compiles (or is an unfinished prefix of something that could)? `codeop` only compiles, never runs."""
    import codeop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            codeop.compile_command(source, symbol="exec")
            return True
        except (SyntaxError, ValueError, OverflowError):
            return False


@dataclass
class Engine:
    """What completing needs of a model: its runtime, tokenizer, and what it may copy from."""

    runtime: Runtime
    tokenizer: Tokenizer
    indexes: list[CorpusIndex] = field(default_factory=list)  # the training split, then the user's own
    gate: Gate = field(default_factory=Gate)
    heal: bool = True  # False only to measure what token healing is worth (benchmarks)

    def complete(self, request: Request) -> Stream:
        return Stream(self, request)


class Stream:
    """Iterate for the completion's text as it comes (best-of-n gives its winner at the end);
    `result` is set once it is over, also when stopped early by `close()` or Ctrl-C."""

    def __init__(self, engine: Engine, request: Request):
        self.engine, self.request = engine, request
        self.result: Result | None = None
        self.done: Callable[[Result], None] | None = None  # told the result once (the session records its turn)
        s = request.sampling
        self.seed = s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little")
        self._pieces = self._run()

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def close(self) -> None:
        self._pieces.close()

    def finish(self) -> Result:
        """Run to the end without showing anything; the result."""
        for _ in self._pieces:
            pass
        assert self.result is not None
        return self.result

    # -- the prompt ---------------------------------------------------------------------------------
    def _prompt_ids(self) -> tuple[list[int], list[int], str, int, int, int]:
        """(ids the model reads, every id of the buffer for the cache, primer, prompt tokens,
        context tokens seen, prompt tokens cropped)."""
        tok, req = self.engine.tokenizer, self.request
        limit = self.engine.runtime.block_size - 1
        prompt, context = clean_text(req.prompt), clean_text(req.context)
        if req.suffix is not None:
            ids, cropped = infill_prompt(tok, context + prompt, clean_text(req.suffix), limit - 1)
            prompt_tokens = len(tok.encode(prompt))
            return [tok.eot_id, *ids], [tok.eot_id, *ids], "", prompt_tokens, 0, max(0, cropped - len(tok.encode(context)))
        primer = block_primer(prompt) if req.sampling.stop_mode == "block" else ""
        ids = [tok.eot_id, *tok.encode(context + prompt + primer)]  # files start after end-of-text
        prompt_tokens = len(tok.encode(prompt))
        context_tokens = len(tok.encode(context)) if context else 0
        window = ids[-limit:]
        cropped = max(0, prompt_tokens - (limit - 1)) if len(ids) > limit else 0
        seen_context = max(0, min(context_tokens, len(window) - prompt_tokens))
        return window, ids, primer, prompt_tokens, seen_context, cropped

    def _heal(self, ids: list[int]) -> tuple[list[int], bytes]:
        """Token healing. A prompt cut mid-word ("compute_chec") ends in tokens the model rarely saw
        there, since whole words were merged into longer tokens in training ("check", not "che" "c").
        Take back the tokens of the unfinished word (at most HEAL_TOKENS; one token after a symbol) and
        let the completion write them again: its first tokens must agree with the bytes taken back."""
        tok = self.engine.tokenizer
        if not self.engine.heal or self.request.suffix is not None or len(ids) < 2 or self.request.prompt[-1:].isspace():
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
        window, buffer, primer, prompt_tokens, context_tokens, cropped = self._prompt_ids()
        healed_window, pending = self._heal(window)
        buffer = buffer[: len(buffer) - (len(window) - len(healed_window))]
        window = healed_window
        banned = np.zeros(runtime.vocab_size, dtype=bool)
        banned[[i for name, i in tok.special_ids.items() if name != EOT]] = True
        banned[tok.vocab_size :] = True
        pendings = [pending] * rows  # per row: the healed bytes it has yet to write again
        mode = "none" if req.suffix is not None else s.stop_mode
        rules = [StopRules(req.prompt, s.stop, mode, repeats=s.stop_mode != "none") for _ in range(rows)]
        decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in range(rows)]
        texts, reasons = [primer] * rows, [""] * rows
        counts, logprob_sums = [0] * rows, [0.0] * rows
        histories = [np.asarray(buffer, dtype=np.int64) for _ in range(rows)]
        rng = np.random.default_rng(self.seed)
        start, shown = time.perf_counter(), 0
        logits = runtime.prefill(np.asarray([window] * rows))
        finished = False
        try:
            for _ in range(s.max_tokens):
                logits = logits.astype(np.float64)
                logits[:, banned] = -np.inf
                logp = log_softmax(logits)
                for row in range(rows):
                    logp[row] = self._mixed(logp[row], histories[row])
                    logp[row, banned] = -np.inf
                # llama.cpp's repeat penalty over the last tokens, prompt included, after the mixture: copying
                # from the index must not bring back the loop the penalty is there to stop
                recent = [h[-s.repeat_last_n :].tolist() if s.repeat_last_n else [] for h in histories]
                logp = log_softmax(penalize(logp, recent, s.repeat_penalty))
                for row in range(rows):
                    if pendings[row]:
                        allowed = np.full(runtime.vocab_size, -np.inf)
                        allowed[self._agreeing(pendings[row])] = 0.0
                        logp[row] += allowed
                tokens = sample(logp, s, rng)
                for row in range(rows):
                    if reasons[row]:
                        continue
                    token = int(tokens[row])
                    counts[row] += 1
                    logprob_sums[row] += float(logp[row, token])
                    histories[row] = np.append(histories[row], token)
                    if token == tok.eot_id:
                        reasons[row] = "end of middle" if req.suffix is not None else "end of text"
                        continue
                    raw, pending = tok.token_bytes(token), pendings[row]
                    pendings[row] = pending[len(raw) :]
                    texts[row] += decoders[row].decode(raw[len(pending) :])
                    cut = rules[row].find_stop(texts[row])
                    if cut is not None and rows == 1:
                        cut = max(cut, shown)  # what was streamed stays (a repetition is seen only once it is out)
                    if cut is not None:
                        texts[row], reasons[row] = texts[row][:cut], rules[row].reason
                if rows == 1:
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
            candidates = [
                Candidate(
                    StopRules.finish(texts[r] + decoders[r].decode(b"", final=True)),
                    counts[r],
                    logprob_sums[r] / max(counts[r], 1),
                    True,
                    reasons[r],
                )
                for r in range(rows)
            ]
            if rows > 1:
                self._rank(candidates)
            best = candidates[0]
            if rows == 1 and len(best.text) < shown:
                best.text = texts[0][:shown]
            seconds = time.perf_counter() - start
            self.result = Result(prompt_tokens, context_tokens, cropped, self.seed, seconds, candidates)
            if self.done is not None:
                self.done(self.result)
        text = self.result.text
        if len(text) > shown:
            yield text[shown:]

    def _mixed(self, logp: np.ndarray, history: np.ndarray) -> np.ndarray:
        gate, tail = self.engine.gate, history[-MAX_MATCH:].tolist()
        matches = [(buffer_match(history), gate.buffer)]
        matches += [(index.match(tail), gate.corpus) for index in self.engine.indexes]
        return mix(logp, matches)

    def _rank(self, candidates: list[Candidate]) -> None:
        """Candidates that break the syntax go last (unless the prompt itself does not parse), then by
        mean log-probability: how sure the model was of its own words."""
        req = self.request
        source = req.context + req.prompt
        prompt_parses = req.suffix is not None or syntax_ok(source)
        for c in candidates:
            c.syntax_ok = syntax_ok(source + c.text + (req.suffix or ""))
        candidates.sort(key=lambda c: (not c.syntax_ok and prompt_parses, -c.mean_logprob))
