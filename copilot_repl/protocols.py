"""What editors send and expect, turned into the runner's `Request` and back, one protocol each:

- OpenAI's `/v1/completions` (prompt, suffix, the usual sampling fields), also with a fill prompt that
  a plugin rendered itself in one of the common marker spellings (Continue does);
- Tabby's `/v1/completions` (`segments`: the prefix and suffix of the file, snippets of other files),
  with `/v1/health` in Tabby's shape, as tabby-agent and so Tabby's VS Code, IntelliJ and Vim plugins ask;
- llama.cpp's `/infill` (`input_prefix`, `prompt`, `input_suffix`, `input_extra` chunks of other files),
  as llama.vim and llama.vscode send it.

An editor's request becomes the same completion whichever protocol carries it (`editor_request`): the
file up to the cursor is the prompt, other files' snippets are context the buffer cache may copy from,
with text after the cursor on its line only the line is completed, and that text is read (its names,
a word the cursor is inside) but not filled up to."""

from __future__ import annotations

import os
import platform
import re
from typing import Any

from copilot_repl import __version__
from copilot_repl.completion.generate import Request
from copilot_repl.completion.result import Candidate, Result
from copilot_repl.completion.settings import MAX_TOKENS_LIMIT, SETTINGS, Sampling
from copilot_repl.errors import UsageError

MAX_STOPS = 4


class BadRequest(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


def _typed(body: dict, name: str, kinds: tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise BadRequest(400, f"'{name}' must be {names}, got {type(value).__name__}", name)
    return value


def parse_completion_request(body: Any, base: Sampling, model_id: str) -> tuple[Request, bool]:
    """The runner's request from an OpenAI completions body, and whether to stream; BadRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest(400, "the request body must be a JSON object")
    model = _typed(body, "model", (str,))
    if model is not None and model != model_id:
        raise BadRequest(404, f"the model '{model}' does not exist; GET /v1/models lists it", "model", "model_not_found")
    if "prompt" not in body:
        raise BadRequest(400, "'prompt' is required", "prompt")
    prompt = body["prompt"]
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest(400, "'prompt' must be a string (or a list of one string)", "prompt")
    suffix = _typed(body, "suffix", (str,))
    sampling = Sampling(**{**base.__dict__, **_sampling(body, base)})
    stream = _typed(body, "stream", (bool,), False)
    marked = fim_markers(prompt) if suffix is None else None
    if marked is not None:  # a plugin that renders its own fill prompt (Continue): the editor's two halves
        return editor_request(*marked, "", sampling), stream
    return Request(prompt, suffix, "", sampling), stream


def _sampling(body: dict, base: Sampling, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The sampling settings a body gives (checked as `:set` checks them); `names`: the body's own
    spelling of a setting (llama.cpp's `n_predict` for max_tokens)."""
    names = names or {}
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOPS:
        raise BadRequest(400, f"'stop' must be a string or a list of at most {MAX_STOPS} strings", "stop")
    values: dict[str, Any] = {"stop": stops} if stops else {}
    for name, kinds in (
        ("max_tokens", (int,)),
        ("temperature", (int, float)),
        ("top_p", (int, float)),
        ("n", (int,)),
        ("seed", (int,)),
        ("top_k", (int,)),
        ("min_p", (int, float)),
        ("repeat_penalty", (int, float)),
        ("min_confidence", (int, float)),
        ("cut_below", (int, float)),
    ):
        field = names.get(name, name)
        value = _typed(body, field, kinds)
        if value is not None:
            try:
                values[name] = SETTINGS[name].parse(str(value))
            except UsageError as e:
                raise BadRequest(400, f"'{field}': {e}", field) from None
    if values.get("max_tokens", base.max_tokens) > MAX_TOKENS_LIMIT:
        raise BadRequest(400, f"'{names.get('max_tokens', 'max_tokens')}' is at most {MAX_TOKENS_LIMIT}", "max_tokens")
    return values


# -- one completion for an editor ----------------------------------------------------------------------
FIM_SPELLINGS = (  # (before the prefix, between prefix and suffix, after the suffix)
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, and Continue for a model it does not know
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),  # DeepSeek-Coder
    ("<PRE> ", " <SUF>", " <MID>"),  # Code Llama
)


def fim_markers(prompt: str) -> tuple[str, str] | None:
    """(prefix, suffix) of a fill prompt rendered with one of FIM_SPELLINGS (text before its first
    marker is dropped), or None for a plain prompt."""
    for start, hole, end in FIM_SPELLINGS:
        match = re.search(re.escape(start) + "(.*?)" + re.escape(hole) + "(.*?)" + re.escape(end) + r"\s*\Z", prompt, re.S)
        if match:
            return match.group(1), match.group(2)
    return None


def editor_request(prefix: str, suffix: str, extra: str, sampling: Sampling, **options: Any) -> Request:
    """What an editor asks at its cursor: complete `prefix`; with text after the cursor on its line
    (the suffix's first line), only the line; `extra` (other files' snippets) is context to copy from.
    The suffix is not filled up to (a one-line completion reads better from the prefix alone), but its
    names are the file's, and a cursor inside a word gets nothing."""
    if suffix.split("\n", 1)[0].strip():
        sampling = Sampling(**{**sampling.__dict__, "stop": [*sampling.stop, "\n"]})
    return Request(prefix, None, extra, sampling, after=suffix, **options)


def snippets(chunks: Any, field: str, name: str) -> str:
    """Other files' code as context: the `field` text of each chunk (llama.cpp's `input_extra`, Tabby's
    declarations and snippets), each ending in a newline; BadRequest when it is not a list of such."""
    if chunks is None:
        return ""
    if not isinstance(chunks, list) or not all(isinstance(c, dict) and isinstance(c.get(field, ""), str) for c in chunks):
        raise BadRequest(400, f"'{name}' must be a list of objects with a string '{field}'", name)
    texts = [c.get(field, "") for c in chunks]
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts if t.strip())


# -- Tabby --------------------------------------------------------------------------------------------
def is_tabby(body: Any) -> bool:
    return isinstance(body, dict) and "segments" in body and "prompt" not in body


def parse_tabby(body: dict, base: Sampling) -> Request:
    segments = body["segments"]
    if not isinstance(segments, dict) or not isinstance(segments.get("prefix"), str):
        raise BadRequest(400, "'segments' must be an object with a string 'prefix'", "segments")
    suffix = _typed(segments, "suffix", (str,), "")
    extra = snippets(segments.get("declarations"), "body", "declarations") + snippets(
        segments.get("relevant_snippets_from_changed_files"), "body", "relevant_snippets_from_changed_files"
    )
    given = _sampling({k: v for k, v in body.items() if k in ("temperature", "seed")}, base)
    values = {"temperature": 0.0, **given}  # no temperature sent: greedy, the same suggestion for the same text
    return editor_request(segments["prefix"], suffix, extra, Sampling(**{**base.__dict__, **values}))


def tabby_body(result: Result, request_id: str) -> dict:
    return {"id": request_id, "choices": [{"index": i, "text": c.text} for i, c in enumerate(result.candidates)]}


def tabby_health(model_id: str, device: str) -> dict:
    """What tabby-agent reads to call a server ready: `model` and `device`, with the rest of Tabby's fields."""
    return {
        "model": model_id,
        "device": device,
        "arch": platform.machine(),
        "cpu_info": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 1,
        "cuda_devices": [],
        "version": {"build_date": "", "git_describe": f"copilot-repl {__version__}"},
    }


# -- llama.cpp's /infill ------------------------------------------------------------------------------
INFILL_NAMES = {"max_tokens": "n_predict"}  # llama.cpp's names where they differ from ours


def parse_infill(body: Any, base: Sampling) -> Request | None:
    """The request, or None for `n_predict: 0` (llama.vim's way to send context ahead: nothing to write)."""
    if not isinstance(body, dict):
        raise BadRequest(400, "the request body must be a JSON object")
    prefix = _typed(body, "input_prefix", (str,), "") + _typed(body, "prompt", (str,), "")
    suffix = _typed(body, "input_suffix", (str,), "")
    extra = snippets(body.get("input_extra"), "text", "input_extra")
    if body.get("n_predict") == 0:
        return None
    if isinstance(body.get("n_predict"), int) and body["n_predict"] < 0:  # llama.cpp's "no limit": ours
        body = {k: v for k, v in body.items() if k != "n_predict"}
    values = {"temperature": 0.0, **_sampling(body, base, INFILL_NAMES)}  # no temperature sent: greedy
    budget = _typed(body, "t_max_predict_ms", (int, float))
    seconds = budget / 1000 if budget and budget > 0 else None
    return editor_request(prefix, suffix, extra, Sampling(**{**base.__dict__, **values}), max_seconds=seconds)


def nothing_written(reason: str = "stop") -> Result:
    """The answer to a request that wrote nothing: `n_predict: 0`, or one superseded before it started."""
    return Result(0, 0, 0, 0, 0.0, [Candidate("", 0, 0.0, True, reason)])


def infill_body(result: Result | None, fields: Any) -> dict:
    """llama.cpp's answer (`content`, `stop`, `timings`, ...); with `response_fields`, only those,
    a nested field named by its path (`timings/prompt_n`) as llama.cpp does."""
    result = result or nothing_written()
    predicted, ms = result.tokens, 1000 * result.seconds
    body = {
        "content": result.text,
        "stop": True,
        "stop_type": "limit" if result.stop_reason in ("max tokens", "time limit") else "eos",
        "tokens_predicted": predicted,
        "tokens_evaluated": result.prompt_tokens,
        "tokens_cached": 0,
        "truncated": bool(result.cropped_tokens),
        "confidence": round(result.candidates[0].confidence, 4),
        "timings": {
            "prompt_n": result.prompt_tokens,
            "prompt_ms": 0.0,
            "prompt_per_token_ms": 0.0,
            "prompt_per_second": 0.0,
            "predicted_n": predicted,
            "predicted_ms": round(ms, 3),
            "predicted_per_token_ms": round(ms / predicted, 3) if predicted else 0.0,
            "predicted_per_second": round(1000 * predicted / ms, 1) if ms else 0.0,
        },
    }
    if not isinstance(fields, list):
        return body
    picked = {}
    for field in fields:
        value: Any = body
        for part in str(field).split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            picked[str(field)] = value
    return picked
