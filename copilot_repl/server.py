"""`copilot-repl serve`: the model kept warm behind an OpenAI-compatible HTTP API, for editors and scripts.

POST /v1/completions is the raw-completion route that editor plugins use for tab completion (prompt,
suffix for a fill, max_tokens, temperature, top_p, stop, n, seed, stream as server-sent events);
GET /v1/models and GET /health. Each choice carries the completion's `confidence` (0-1, the fitted chance
that a person takes some of it); one below `min_confidence` (the request's, else serve's default) comes
back empty, with `stop_reason` "low confidence" ("unsure start" where its first words are less likely
than `cut_below`): an editor shows nothing rather than noise.
The standard library's threading server is enough: a request is a few milliseconds of model time,
so requests wait their turn for the one model (a lock), and none is dropped. Like llama.cpp's server,
a prompt longer than the model's window is cropped from the left (the window is small; editors send
whole files) and the response says how many tokens were cut.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from copilot_repl.completion.generate import Request
from copilot_repl.completion.result import Result
from copilot_repl.protocols import (
    BadRequest,
    infill_body,
    is_tabby,
    nothing_written,
    parse_completion_request,
    parse_infill,
    parse_tabby,
    tabby_body,
    tabby_health,
)

MAX_BODY = 1 << 20  # bytes


def _finish_reason(stop_reason: str) -> str:
    return "length" if stop_reason == "max tokens" else "stop"


class CompletionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], session, model_id: str, log: Callable[[str], None] | None = None):
        super().__init__(address, Handler)
        self.session, self.model_id, self.log = session, model_id, log
        self.lock = threading.Lock()  # one model: requests take turns
        self.created = int(time.time())
        self.latest: dict[tuple, int] = {}  # per editor: the newest request's number; older ones give way
        self.numbers = itertools.count(1)

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
        route = self.path.rstrip("/")
        if route == "/health":
            self._json(200, {"status": "ok", "model": self.server.model_id})
        elif route == "/v1/health":  # Tabby's: tabby-agent calls a server ready once it answers
            self._json(200, tabby_health(self.server.model_id, self.server.session.device))
        elif route == "/v1/models":
            model = {"id": self.server.model_id, "object": "model", "created": self.server.created, "owned_by": "copilot-repl"}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._error(BadRequest(404, f"no route GET {self.path}"))

    def do_POST(self) -> None:
        route = self.path.split("?")[0].rstrip("/")
        try:
            if route == "/v1/health":  # older tabby-agents ask with POST
                self._json(200, tabby_health(self.server.model_id, self.server.session.device))
            elif route == "/v1/events":  # Tabby's telemetry of shown and accepted suggestions: heard, not kept
                self._read_json()
                self._json(200, {})
            elif route == "/infill":
                body = self._read_json()
                request = parse_infill(body, self.server.session.sampling)
                result = self._complete(self._editor(request, "infill")) if request is not None else None
                self._json(200, infill_body(result, body.get("response_fields")))
            elif route == "/v1/completions":
                body = self._read_json()
                if is_tabby(body):
                    request = self._editor(parse_tabby(body, self.server.session.sampling), "tabby")
                    self._json(200, tabby_body(self._complete(request), f"cmpl-{uuid.uuid4().hex[:24]}"))
                else:
                    self._openai(*parse_completion_request(body, self.server.session.sampling, self.server.model_id))
            else:
                raise BadRequest(404, f"no route POST {self.path}; completions are POST /v1/completions")
        except BadRequest as e:
            self._error(e)

    def _editor(self, request: Request, protocol: str) -> Request:
        """An editor's request, numbered: a newer one from the same editor (address, client, protocol)
        supersedes it, so a burst of keystrokes leaves no queue of stale work."""
        key = (self.client_address[0], self.headers.get("User-Agent", ""), protocol)
        number = self.server.latest[key] = next(self.server.numbers)
        return replace(request, superseded=lambda: self.server.latest.get(key) != number)

    def _complete(self, request: Request) -> Result:
        with self.server.lock:
            if request.superseded is not None and request.superseded():
                self.served = ", superseded before it started"
                return nothing_written("superseded")
            result = self.server.session.engine.complete(request).finish()
        self._note(result)
        return result

    def _note(self, result: Result) -> None:
        top = result.candidates[0]
        self.served = f", {completion_tokens(result)} tokens, {top.stop_reason}, confidence {top.confidence:.2f}"

    def _openai(self, request: Request, stream: bool) -> None:
        request_id = f"cmpl-{uuid.uuid4().hex[:24]}"
        with self.server.lock:
            completion = self.server.session.engine.complete(request)
            if stream:
                self._stream(completion, request_id)
            else:
                self._json(200, self.server.body(completion.finish(), request_id))
            if completion.result is not None:
                self._note(completion.result)

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
