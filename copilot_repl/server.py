"""`copilot-repl serve`: the model kept warm behind an OpenAI-compatible HTTP API, for editors and scripts.

POST /v1/completions is the raw-completion route that editor plugins use for tab completion (prompt,
suffix for a fill, max_tokens, temperature, top_p, stop, n, seed, stream as server-sent events);
GET /v1/models and GET /health. Each choice carries the completion's `confidence` (0-1, the fitted chance
that a person takes some of it); one below `min_confidence` (the request's, else serve's default) comes
back empty, with `stop_reason` "low confidence": an editor shows nothing rather than noise.
The standard library's threading server is enough: a request is a few milliseconds of model time,
so requests wait their turn for the one model (a lock), and none is dropped. Like llama.cpp's server,
a prompt longer than the model's window is cropped from the left (the window is small; editors send
whole files) and the response says how many tokens were cut.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from copilot_repl.errors import UsageError
from copilot_repl.generate import Request
from copilot_repl.result import Result
from copilot_repl.settings import MAX_TOKENS_LIMIT, SETTINGS, Sampling

MAX_BODY = 1 << 20  # bytes
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
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest(400, "'prompt' must be a string (or a list of one string)", "prompt")
    suffix = _typed(body, "suffix", (str,))
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
    ):
        value = _typed(body, name, kinds)
        if value is not None:
            try:
                values[name] = SETTINGS[name].parse(str(value))
            except UsageError as e:
                raise BadRequest(400, f"'{name}': {e}", name) from None
    if values.get("max_tokens", base.max_tokens) > MAX_TOKENS_LIMIT:
        raise BadRequest(400, f"'max_tokens' is at most {MAX_TOKENS_LIMIT}", "max_tokens")
    stream = _typed(body, "stream", (bool,), False)
    sampling = Sampling(**{**base.__dict__, **values})
    return Request(prompt, suffix, "", sampling), stream


def _finish_reason(stop_reason: str) -> str:
    return "length" if stop_reason == "max tokens" else "stop"


class CompletionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], session, model_id: str, log: Callable[[str], None] | None = None):
        super().__init__(address, Handler)
        self.session, self.model_id, self.log = session, model_id, log
        self.lock = threading.Lock()  # one model: requests take turns
        self.created = int(time.time())

    def body(self, result: Result, request_id: str) -> dict:
        choices = [
            {
                "text": c.text,
                "index": i,
                "logprobs": None,
                "finish_reason": _finish_reason(c.stop_reason),
                "confidence": round(c.confidence, 4),
                "stop_reason": c.stop_reason,
            }
            for i, c in enumerate(result.candidates)
        ]
        return {
            "id": request_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": choices,
            "usage": {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": completion_tokens(result),
                "total_tokens": result.prompt_tokens + completion_tokens(result),
            },
            "cropped_tokens": result.cropped_tokens,
        }


def completion_tokens(result: Result) -> int:
    """Every choice's tokens: what `n` choices cost is what usage reports."""
    return sum(c.tokens for c in result.candidates)


class Handler(BaseHTTPRequestHandler):
    server: CompletionServer
    protocol_version = "HTTP/1.1"
    status: int | None = None
    served = ""  # what the log line says of a completion

    def log_message(self, format: str, *args) -> None:  # http.server's own lines: ours come after the answer
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status = code
        super().send_response(code, message)

    def handle_one_request(self) -> None:
        """One request, then (with a log) its line, once the answer is complete: route, status, time."""
        began, self.status, self.served = time.perf_counter(), None, ""
        super().handle_one_request()
        if self.server.log is not None and self.status is not None:
            route = self.path if len(self.path) <= 40 else self.path[:39] + "…"
            ms = (time.perf_counter() - began) * 1000
            self.server.log(f"{self.command} {route} {self.status} {ms:.0f} ms{self.served}")

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: BadRequest) -> None:
        kind = "invalid_request_error" if e.status < 500 else "server_error"
        self._json(e.status, {"error": {"message": str(e), "type": kind, "param": e.param, "code": e.code}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._json(200, {"status": "ok", "model": self.server.model_id})
        elif self.path.rstrip("/") == "/v1/models":
            model = {"id": self.server.model_id, "object": "model", "created": self.server.created, "owned_by": "copilot-repl"}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._error(BadRequest(404, f"no route GET {self.path}"))

    def do_POST(self) -> None:
        try:
            if self.path.rstrip("/") != "/v1/completions":
                raise BadRequest(404, f"no route POST {self.path}; completions are POST /v1/completions")
            request, stream = parse_completion_request(self._read_json(), self.server.session.sampling, self.server.model_id)
        except BadRequest as e:
            self._error(e)
            return
        request_id = f"cmpl-{uuid.uuid4().hex[:24]}"
        with self.server.lock:
            completion = self.server.session.engine.complete(request)
            if stream:
                self._stream(completion, request_id)
            else:
                self._json(200, self.server.body(completion.finish(), request_id))
            result = completion.result
            if result is not None:
                top = result.candidates[0]
                self.served = f", {completion_tokens(result)} tokens, {top.stop_reason}, confidence {top.confidence:.2f}"

    def _read_json(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise BadRequest(411, "a Content-Length header is required") from None
        if length > MAX_BODY:
            if length <= 16 * MAX_BODY:  # read it anyway, so the client hears the answer rather than a broken pipe
                self.rfile.read(length)
            else:
                self.close_connection = True
            raise BadRequest(413, f"the request body is over {MAX_BODY} bytes")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(400, f"the request body is not valid JSON: {e}") from None

    def _stream(self, completion, request_id: str) -> None:
        """Server-sent events: one chunk per piece, a last chunk with the finish reason, then [DONE]."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def chunk(text: str, index: int = 0, finish: str | None = None, confidence: float | None = None) -> dict:
            choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
            if confidence is not None:  # on the last chunk, once it is known
                choice["confidence"] = round(confidence, 4)
            return {
                "id": request_id,
                "object": "text_completion",
                "created": int(time.time()),
                "model": self.server.model_id,
                "choices": [choice],
            }

        try:
            n = completion.request.sampling.n
            for piece in completion:
                if n == 1:
                    event(chunk(piece))
            result = completion.result
            for i, candidate in enumerate(result.candidates):
                event(chunk(candidate.text if n > 1 else "", i, _finish_reason(candidate.stop_reason), candidate.confidence))
            event("[DONE]")
        except (BrokenPipeError, ConnectionResetError):  # the client went away: stop generating
            completion.close()


def serve(session, host: str, port: int, announce, log: Callable[[str], None] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM; `announce` is told the address once the model is loaded, `log`
    (if given) a line per request."""
    import signal

    from copilot_repl.checkpoint import model_name

    opened = session.model()
    model_id = model_name(opened.directory)
    server = CompletionServer((host, port), session, model_id, log)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:  # a signal may come as soon as the address is out
        announce(f"serving {model_id} on http://{host}:{server.server_address[1]}/v1 (Ctrl-C stops)")
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
