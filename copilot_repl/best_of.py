"""Best-of-n: sample several completions in one batch, drop those that are not valid Python, and rank
the rest by their mean token log-probability (how sure the model was of its own words)."""

from __future__ import annotations

import codecs
import time
import warnings
from dataclasses import dataclass

from copilot_repl.generate import Completion
from copilot_repl.stops import StopRules


@dataclass
class Candidate:
    text: str
    tokens: int
    mean_logprob: float
    syntax_ok: bool
    reason: str


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


def best_of(completion: Completion, n: int) -> tuple[list[Candidate], float]:
    """`n` candidates for the completion's prompt, best first, and the seconds it took. Candidates
    that break the syntax go last, unless the prompt itself does not parse."""
    eot, max_tokens = completion.tokenizer.eot_id, completion.sampling.max_tokens
    rules = [completion.rules() for _ in range(n)]
    decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in range(n)]
    texts, logprobs, counts, reasons = [""] * n, [0.0] * n, [0] * n, [""] * n
    start, stream = time.perf_counter(), completion.stream(rows=n)
    try:
        for step, (tokens, token_logprobs) in enumerate(stream, start=1):
            for row in (r for r in range(n) if not reasons[r]):
                token = int(tokens[row])
                counts[row] += 1
                logprobs[row] += float(token_logprobs[row])
                if token == eot:
                    reasons[row] = "end of middle" if completion.suffix is not None else "end of text"
                    continue
                texts[row] += decoders[row].decode(completion.piece(token, first=step == 1))
                cut = rules[row].find_stop(texts[row])
                if cut is not None:
                    texts[row], reasons[row] = texts[row][:cut], "stop"
            if all(reasons) or step >= max_tokens:
                break
    finally:
        stream.close()
    source = completion.prompt if completion.suffix is None else None
    prompt_parses = source is None or syntax_ok(source)
    candidates = []
    for row in range(n):
        text = StopRules.finish(texts[row])
        whole = text if source is None else source + text
        ok = syntax_ok(whole + (completion.suffix or ""))
        candidates.append(Candidate(text, counts[row], logprobs[row] / max(counts[row], 1), ok, reasons[row] or "max tokens"))
    candidates.sort(key=lambda c: (not c.syntax_ok and prompt_parses, -c.mean_logprob))
    return candidates, time.perf_counter() - start
