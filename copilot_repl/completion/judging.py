"""A completion's candidates judged: each cut back to where it is valid Python, scored for confidence,
ranked (valid first, then the most confident), and the best withheld where it should not be shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from copilot_repl.completion.confidence import KNOWN_NAME_CONFIDENCE, Confidence, confident_part
from copilot_repl.completion.result import Candidate, TokenStats, known_name_rest
from copilot_repl.completion.syntax import closed, syntax_ok, valid_prefix

if TYPE_CHECKING:
    from copilot_repl.completion.generate import Request


def judge(
    req: Request, confidence: Confidence, texts: list[str], reasons: list[str], stats: list[TokenStats], shown: int
) -> list[Candidate]:
    """Each candidate cut back to where it is valid Python (when the prompt is), with its confidence;
    the best first: valid, then the most confident. Below `min_confidence`, the best is withheld."""
    source = req.context + req.prompt
    fill = req.suffix is not None
    prompt_parses = fill or syntax_ok(source)
    # a completion after code that ends closed must end closed too: not inside a bracket, a string,
    # or half a statement (a completion after `x = (` may well end inside the bracket)
    must_close = not fill and closed(source)
    candidates = [_candidate(req, confidence, *row, must_close, shown) for row in zip(texts, reasons, stats)]
    candidates.sort(key=lambda c: (not c.syntax_ok and prompt_parses, -c.confidence))
    best = candidates[0]
    if shown or best.stop_reason == "interrupted" or not best.text:  # what was streamed stays
        return candidates
    if not best.syntax_ok and (must_close or (prompt_parses and len(candidates) > 1)):
        best.withheld, best.text, best.stop_reason = best.text, "", "no valid candidate"
    elif req.sampling.min_confidence:
        s = req.sampling
        part = confident_part(best.text, best.steps, best.confidence, s.min_confidence, s.one_line, s.cut_below)
        if part != best.text:
            low = best.confidence < s.min_confidence
            reason = "confidence" if part.strip() else "low confidence" if low else "unsure start"
            best.withheld, best.text, best.stop_reason = best.text[len(part) :], part, reason
    return candidates


def _candidate(
    req: Request, confidence: Confidence, text: str, reason: str, stat: TokenStats, must_close: bool, shown: int
) -> Candidate:
    """One row's text as a candidate: cut back to its longest valid part when it must end closed."""
    source = req.context + req.prompt
    text = "" if reason == "superseded" else text  # a newer request came: nobody waits for this one
    one_line = req.sampling.one_line
    if one_line:
        text = text[: len(text) - already_there(text, req.after)]
    valid = closed(source + text, one_line or not text.strip()) if must_close else syntax_ok(source + text + (req.suffix or ""))
    if not valid and must_close and reason != "interrupted":
        kept = valid_prefix(source, text, shown, tuple(end for end, _ in stat.steps), one_line)
        if kept is not None and kept.strip():
            text, valid = kept, True
            reason = "stop" if reason in ("max tokens", "repetition") else reason
    features = stat.features(text, valid, typed(req))
    score = confidence.score(features) if text.strip() else 0.0
    return Candidate(text, stat.count, stat.mean, valid, reason, score, features, "", stat.steps)


def already_there(text: str, after: str) -> int:
    """How much of the end of a one-line `text` is the start of the line after the cursor (`x)` before
    the `)` an editor closed by itself): it is there already, and shown again it would be typed twice."""
    line = after.split("\n", 1)[0]
    return next((k for k in range(min(len(text), len(line)), 0, -1) if text.endswith(line[:k])), 0)


def typed(req: Request) -> str:
    """The code the user wrote, up to the cursor: a name known is one of theirs, not the model's."""
    return (req.context if req.copyable is None else req.copyable) + req.prompt


def known_name_instead(req: Request, best: Candidate, project: Sequence[str] = ()) -> None:
    """Where a one-line suggestion shows nothing, what the names of the user's code (else of their
    `project`) that start as typed go on with, when that is confident enough: mid-word, the model
    often guesses another name or goes on past the word where the code says which name it is. Not
    where nobody waits for it."""
    if not req.sampling.one_line or best.text.strip() or best.stop_reason in ("interrupted", "superseded"):
        return
    name = known_name_rest(typed(req), req.suffix or req.after, project)
    if name and KNOWN_NAME_CONFIDENCE >= req.sampling.min_confidence:
        best.text, best.confidence, best.stop_reason, best.steps = name, KNOWN_NAME_CONFIDENCE, "known name", []
        best.features = {"known_name": 1.0}
