"""How long a suggestion takes to appear while typing in the REPL: from the last keystroke to the
suggestion ready to draw, at positions spread over real files typed line by line.

In the REPL the buffer is the line being typed and the session's code before it is the context; the
REPL waits `PAUSE` seconds without a key before asking (a keystroke itself never waits). Measured in
process, one thread, on the shipped model, against the package the keystroke benchmark types."""

from __future__ import annotations

import statistics
import time


def latency(positions: int = 300) -> dict:
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.document import Document

    from benchmarks.keystrokes import TEST_PACKAGE, package_files
    from copilot_repl.completion.session import Session
    from copilot_repl.repl.suggest import PAUSE, ModelSuggest

    session = Session()
    session.model()
    session.set("min_confidence", "0.0001")  # time every suggestion, shown or not
    suggest = ModelSuggest(session, pause=0.0)
    text = "\n".join(path.read_text(encoding="utf-8") for path in package_files(*TEST_PACKAGE)[0])
    step = max(1, len(text) // positions)
    seconds, shown = [], 0
    for pos in range(step, len(text), step):
        line_start = text.rfind("\n", 0, pos) + 1
        typed = text[line_start:pos]
        if not typed.strip():
            continue
        session.file_context = text[:line_start]
        buffer = Buffer()
        buffer.document = Document(typed)
        began = time.perf_counter()
        shown += suggest.get_suggestion(buffer, buffer.document) is not None
        seconds.append(time.perf_counter() - began)
    quantiles = statistics.quantiles(seconds, n=20)
    return {
        "positions": len(seconds),
        "pause_s": PAUSE,
        "suggestion_p50_s": round(statistics.median(seconds), 4),
        "suggestion_p95_s": round(quantiles[18], 4),
        "keystroke_to_suggestion_p50_s": round(PAUSE + statistics.median(seconds), 4),
        "keystroke_to_suggestion_p95_s": round(PAUSE + quantiles[18], 4),
        "shown_share": round(shown / max(len(seconds), 1), 3),
    }
