"""What an editor waits for a suggestion from `serve`: llama.vim's one-line `/infill` request sent at
every keystroke of a real file, alone (a pause after each key) and in bursts (keys 30 ms apart, each
request sent without waiting for the one before, as a plugin does), next to a plain `--once`.

In a burst every request but the last is superseded by the next one from the same editor, so the
last one's wait is what a person sees: without supersession it would queue behind the stale ones."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

BURST = 5  # keys per burst
GAP = 0.03  # seconds between the keys of a burst


def _post(url: str, body: dict) -> float:
    began = time.perf_counter()
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"User-Agent": "bench"})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - began


def _burst(url: str, body: dict, line: str) -> float:
    """Send the line as it was BURST keys ago, up to the line itself, GAP apart without waiting for
    answers; the wait of the last."""
    waits: dict[int, float] = {}

    def send(key: int, typed: dict) -> None:
        waits[key] = _post(url, typed)

    senders = []
    for back in range(BURST - 1, -1, -1):
        sender = threading.Thread(target=send, args=(back, {**body, "prompt": line[: len(line) - back]}))
        sender.start()
        senders.append(sender)
        time.sleep(GAP)
    for sender in senders:
        sender.join()
    return waits[0]


def _positions(count: int) -> list[tuple[str, str]]:
    """(lines above, the line to the cursor) at `count` places spread over the keystroke benchmark's files."""
    from benchmarks.keystrokes import TEST_PACKAGE, package_files

    text = "\n".join(p.read_text(encoding="utf-8") for p in package_files(*TEST_PACKAGE)[0])
    places = []
    for pos in range(len(text) // (count + 1), len(text), len(text) // (count + 1)):
        start = text.rfind("\n", 0, pos) + 1
        if text[start:pos].strip():
            places.append((text[:start], text[start:pos]))
    return places[:count]


def latency(places: int = 40) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "copilot_repl", "serve", "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stderr.readline()).group(1) + "/infill"
        alone, last_of_burst = [], []
        for above, line in _positions(places):
            body = {"input_prefix": above, "prompt": line, "input_suffix": "\n", "n_predict": 32, "t_max_predict_ms": 1000}
            alone.append(_post(url, body))
            last_of_burst.append(_burst(url, body, line))
        once = []
        for above, line in _positions(5):
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "copilot_repl", "--once", "-", "--stop", "\\n"],
                input=above + line,
                capture_output=True,
                text=True,
                check=True,
            )
            once.append(time.perf_counter() - began)
    finally:
        proc.kill()
    q = lambda xs: statistics.quantiles(xs, n=20)[18]  # noqa: E731  the 95th percentile
    return {
        "requests": len(alone),
        "alone_p50_s": round(statistics.median(alone), 4),
        "alone_p95_s": round(q(alone), 4),
        "burst_last_p50_s": round(statistics.median(last_of_burst), 4),
        "burst_last_p95_s": round(q(last_of_burst), 4),
        "once_p50_s": round(statistics.median(once), 4),
    }
