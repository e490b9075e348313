"""`copilot-repl serve` as editors use it: the official openai client against the real server process."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from conftest import CHECKOUT, CLI, OUTSIDE


@pytest.fixture(scope="module")
def server(tiny_model):
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--model", str(tiny_model)], stderr=subprocess.PIPE, text=True, cwd=OUTSIDE
    )
    line = proc.stderr.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
    assert match, line + proc.stderr.read()
    yield match.group(1), proc
    if proc.poll() is None:
        proc.kill()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0, timeout=60)


def test_completions_with_the_openai_client(server):
    url, _ = server
    api = client(url)
    (model,) = [m.id for m in api.models.list().data]
    done = api.completions.create(model=model, prompt="def f(x):", max_tokens=8, temperature=0, seed=1)
    assert done.choices[0].finish_reason in ("stop", "length") and done.usage.completion_tokens <= 8
    again = api.completions.create(model=model, prompt="def f(x):", max_tokens=8, temperature=0, seed=1)
    assert again.choices[0].text == done.choices[0].text
    pieces = list(api.completions.create(model=model, prompt="def f(x):", max_tokens=8, temperature=0, seed=1, stream=True))
    assert "".join(p.choices[0].text for p in pieces) == done.choices[0].text
    assert pieces[-1].choices[0].finish_reason == done.choices[0].finish_reason
    several = api.completions.create(model=model, prompt="x = ", max_tokens=5, n=3, seed=2)
    assert [c.index for c in several.choices] == [0, 1, 2]
    fill = api.completions.create(model=model, prompt="def f(x):\n    ", suffix="\n    return y\n", max_tokens=5)
    assert fill.choices[0].finish_reason in ("stop", "length")


def test_log_has_a_line_per_request_and_usage_counts_every_choice(tiny_model):
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--log", "--model", str(tiny_model)], stderr=subprocess.PIPE, text=True, cwd=OUTSIDE
    )
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)/v1", proc.stderr.readline()).group(1)
        body = {"prompt": "x = ", "max_tokens": 6, "n": 3, "seed": 2, "min_confidence": 0}
        status, answer = raw(url, json.dumps(body).encode())
        line = proc.stderr.readline()
        assert status == 200 and re.match(r"POST /v1/completions 200 \d+ ms, \d+ tokens, ", line), line
        assert int(re.search(r"(\d+) tokens", line).group(1)) == answer["usage"]["completion_tokens"]
        assert answer["usage"]["completion_tokens"] > 6 or any(c["stop_reason"] != "max_tokens" for c in answer["choices"])
        assert raw(url, b"{not json")[0] == 400 and proc.stderr.readline().startswith("POST /v1/completions 400 ")
    finally:
        proc.kill()


def raw(url: str, body: bytes, path: str = "/v1/completions") -> tuple[int, dict]:
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize(
    "body, status, param",
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"prompt": 5}', 400, "prompt"),
        (b'{"prompt": "x", "max_tokens": "ten"}', 400, "max_tokens"),
        (b'{"prompt": "x", "max_tokens": 100000}', 400, "max_tokens"),
        (b'{"prompt": "x", "temperature": -1}', 400, "temperature"),
        (b'{"prompt": "x", "cut_below": 2}', 400, "cut_below"),
        (b'{"prompt": "x", "stream": "yes"}', 400, "stream"),
        (b'{"prompt": "x", "stop": [1]}', 400, "stop"),
        (b'{"prompt": "x", "model": "no-such-model"}', 404, "model"),
        (b'{"language": "python"}', 400, "prompt"),  # neither OpenAI's prompt nor Tabby's segments
        (b'{"language": "python", "segments": {"suffix": ""}}', 400, "segments"),
        (b"x" * (2 << 20), 413, None),
    ],
)
def test_bad_requests_get_openai_shaped_errors_and_the_server_lives_on(server, body, status, param):
    url, proc = server
    code, payload = raw(url, body)
    assert code == status and payload["error"]["param"] == param and payload["error"]["message"]
    with urllib.request.urlopen(url + "/health", timeout=30) as health:  # the server lives on
        assert health.status == 200 and proc.poll() is None


def test_sixteen_concurrent_requests_are_all_answered(server):
    url, _ = server
    api = client(url)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: api.completions.create(model="tiny", prompt=f"x{i} = ", max_tokens=6), range(16)))
    assert len(answers) == 16 and all(a.choices for a in answers)


def test_sigterm_stops_the_server_cleanly(tiny_model):
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--model", str(tiny_model)], stderr=subprocess.PIPE, text=True, cwd=OUTSIDE
    )
    assert "serving" in proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0 and "Traceback" not in proc.stderr.read()


CONTEXT = "def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n"
EXPECTED = "ksum_of_payload(data)"  # what the shipped model suggests after `result = compute_chec`, or a start of it
# tabby-agent 1.5.0's body, as its createSegments and provideCompletions build it (clients/tabby-agent)
TABBY = {
    "language": "python",
    "segments": {
        "prefix": CONTEXT + "result = compute_chec",
        "suffix": "\n",
        "filepath": "app.py",
        "git_url": "https://github.com/example/app",
        "declarations": [{"filepath": "util.py", "body": "def helper():\n    return 1\n"}],
        "relevant_snippets_from_changed_files": [{"filepath": "b.py", "body": "x = 1", "score": 0.5}],
    },
    "user": "someone",
}
# llama.vim's body (autoload/llama.vim, llama#fim): the lines above, the line to the cursor, the rest
LLAMA_VIM = {
    "input_prefix": CONTEXT,
    "input_suffix": "\n\n",
    "input_extra": [{"text": "import os\n", "time": 0, "filename": "other.py"}],
    "prompt": "result = compute_chec",
    "n_predict": 128,
    "n_indent": 0,
    "top_k": 40,
    "top_p": 0.99,
    "stream": False,
    "samplers": ["top_k", "top_p", "infill"],
    "cache_prompt": True,
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 1000,
    "response_fields": ["content", "timings/prompt_n", "timings/predicted_ms", "truncated", "tokens_cached"],
}


@pytest.fixture(scope="module")
def shipped_server():
    proc = subprocess.Popen([*CLI, "serve", "--port", "0"], stderr=subprocess.PIPE, text=True, cwd=OUTSIDE)
    match = re.search(r"(http://127\.0\.0\.1:\d+)/v1", proc.stderr.readline())
    assert match
    yield match.group(1)
    proc.kill()


def test_tabby_agents_health_check_completion_and_events(shipped_server):
    with urllib.request.urlopen(shipped_server + "/v1/health", timeout=30) as response:
        health = json.loads(response.read())
    assert health["model"] == "default" and health["device"] == "cpu"  # what tabby-agent needs to call it ready
    status, answer = raw(shipped_server, json.dumps(TABBY).encode())
    text = answer["choices"][0]["text"]
    assert status == 200 and answer["id"] and len(text) >= 4 and EXPECTED.startswith(text)
    assert raw(shipped_server, b'{"type": "view", "completion_id": "x", "choice_index": 0}', "/v1/events")[0] == 200


def test_llama_vims_infill_request(shipped_server):
    status, answer = raw(shipped_server, json.dumps(LLAMA_VIM).encode(), "/infill")
    assert status == 200 and set(answer) == set(LLAMA_VIM["response_fields"])
    assert len(answer["content"]) >= 4 and EXPECTED.startswith(answer["content"])
    warm = {**LLAMA_VIM, "n_predict": 0}  # llama.vim sends context ahead this way: nothing to write
    status, answer = raw(shipped_server, json.dumps(warm).encode(), "/infill")
    assert status == 200 and answer["content"] == ""


def test_an_editors_text_after_the_cursor_is_read_not_written_again(shipped_server):
    """The suffix an editor sends is not filled up to, but it is the file's: a cursor inside a word
    gets nothing (whatever is shown there would be typed twice), and a name defined below the cursor
    is finished where the model is unsure (its own `_to` after `frobn` has confidence 0.1)."""
    inside = {**LLAMA_VIM, "prompt": "result = compute_chec", "input_suffix": "ksum_of_payload(x)\n"}
    status, answer = raw(shipped_server, json.dumps(inside).encode(), "/infill")
    assert status == 200 and answer["content"] == ""
    below = "\n\n\ndef frobnicate_the_widget_registry(widgets):\n    return sorted(widgets)\n"
    tabby = {"language": "python", "segments": {"prefix": "print(frobn", "suffix": ")" + below}}
    status, answer = raw(shipped_server, json.dumps(tabby).encode())
    assert status == 200 and answer["choices"][0]["text"] == "icate_the_widget_registry"


def test_a_fill_prompt_rendered_by_the_plugin_continue_style(shipped_server):
    api = client(shipped_server)
    prompt = f"<fim_prefix>{CONTEXT}result = compute_chec<fim_suffix>\n<fim_middle>"
    pieces = api.completions.create(model="default", prompt=prompt, max_tokens=64, temperature=0, stream=True)
    text = "".join(piece.choices[0].text for piece in pieces)
    assert len(text) >= 4 and EXPECTED.startswith(text)


def test_where_the_model_is_unsure_mid_word_the_one_name_of_the_file_begun_is_suggested(shipped_server):
    """The shipped model's own `icate_the_widget_registry(widgets)` has confidence 0.30: below 0.6 it
    used to show nothing, though the file has one name that starts `frobn`."""
    prompt = "def frobnicate_the_widget_registry(widgets):\n    return widgets\n\n\nresult = frobn"
    api = client(shipped_server)
    done = api.completions.create(
        model="default", prompt=prompt, max_tokens=16, temperature=0, stop=["\n"], extra_body={"min_confidence": 0.6}
    )
    choice = done.choices[0]
    assert choice.text.startswith("icate_the_widget_registry") and choice.finish_reason == "stop"
    assert choice.model_extra["stop_reason"] == "known name" or choice.model_extra["confidence"] >= 0.6
    unsure = api.completions.create(
        model="default", prompt=prompt, max_tokens=16, temperature=0, stop=["\n"], extra_body={"min_confidence": 0.9}
    )
    assert unsure.choices[0].text == ""  # nor is a name shown above its own confidence


def test_serve_indexes_a_project_whose_names_it_finishes(tmp_path):
    """`serve --index`: the shipped model writes `_to` after `result = frobn` (confidence 0.1); the
    project's one name that starts so is suggested instead, at serve's own threshold."""
    (tmp_path / "app.py").write_text("def frobnicate_the_widget_registry(widgets):\n    return sorted(widgets)\n")
    command = [*CLI, "serve", "--port", "0", "--index", str(tmp_path)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE)
    try:
        assert "indexed 1 file" in proc.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/v1", proc.stderr.readline())
        assert match
        done = client(match.group(1)).completions.create(
            model="default", prompt="result = frobn", max_tokens=16, temperature=0, stop=["\n"]
        )
        assert done.choices[0].text == "icate_the_widget_registry"
        assert done.choices[0].model_extra["stop_reason"] == "known name"
    finally:
        proc.kill()
    missing = subprocess.run([*CLI, "serve", "--port", "0", "--index", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1 and "nowhere" in missing.stderr


TABBY_AGENT = Path(os.environ.get("COPILOT_REPL_TABBY_AGENT", CHECKOUT / ".ci/node/node_modules/tabby-agent/dist/cli.js"))


class LspClient:
    """An editor's side of the Language Server Protocol over a process's stdio: framed JSON-RPC."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.inbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            headers = {}
            while (line := self.proc.stdout.readline().decode().strip()) or not headers:
                if not line and self.proc.poll() is not None:
                    return
                if line:
                    name, _, value = line.partition(":")
                    headers[name.lower()] = value.strip()
            self.inbox.put(json.loads(self.proc.stdout.read(int(headers["content-length"]))))

    def notify(self, method: str, params: dict, **number) -> None:
        data = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, **number}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def request(self, number: int, method: str, params: dict) -> dict:
        self.notify(method, params, id=number)
        while (message := self.inbox.get(timeout=60)).get("id") != number:
            pass  # the server's own notifications and requests (logs, status)
        return message["result"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed: tabby-agent runs on it")
@pytest.mark.skipif(not TABBY_AGENT.is_file(), reason=f"no tabby-agent at {TABBY_AGENT} (.ci/run installs it with npm)")
def test_tabby_agent_over_lsp_suggests_what_continues_the_open_document(shipped_server, tmp_path):
    """tabby-agent from the npm registry, the agent Tabby's VS Code, IntelliJ and Vim plugins run, driven
    over LSP as an editor drives it, with our server as its Tabby endpoint."""
    config = tmp_path / ".tabby-client" / "agent" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[server]\nendpoint = "{shipped_server}"\n\n[anonymousUsageTracking]\ndisable = true\n')
    agent = LspClient(["node", str(TABBY_AGENT), "--lsp", "--stdio"], {**os.environ, "HOME": str(tmp_path)})
    try:
        agent.request(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}, "clientInfo": {"name": "test"}})
        agent.notify("initialized", {})
        uri = (tmp_path / "app.py").as_uri()
        text = CONTEXT + "result = compute_chec\n"
        agent.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
        position = {"line": 3, "character": len("result = compute_chec")}
        items = agent.request(2, "textDocument/completion", {"textDocument": {"uri": uri}, "position": position})["items"]
        inserted = items[0]["textEdit"]["newText"]  # the word under the cursor and what follows it
        assert inserted.startswith("compute_chec") and EXPECTED.startswith(inserted[len("compute_chec") :])
        assert len(inserted) >= len("compute_chec") + 4
    finally:
        agent.proc.kill()
