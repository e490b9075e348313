"""Training progress: every long phase reports how far it is, to its end, and a terminal shows one bar
per phase, each left whole on its own line."""

from __future__ import annotations

import io

import pyte
from rich.console import Console

from conftest import TINY
from copilot_repl.progress import PHASES, rich_progress
from copilot_repl.training.train import TrainConfig, train


def test_every_phase_reports_its_progress_to_its_end_and_the_terminal_shows_one_bar_each(corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_REPL_CACHE", str(tmp_path))  # a tokenizer and tokens cached by another test: no such phases
    events: list[tuple[str, dict]] = []
    config = TrainConfig(corpus=[str(corpus_dir)], tokenizer="bpe", vocab_size=300, name="phases", **{**TINY, "steps": 5})
    train(config, [lambda event, info: events.append((event, info))])

    last = {event: info for event, info in events if event in PHASES}
    assert set(last) == set(PHASES)
    assert all(info["done"] == info["total"] for info in last.values()), last
    first = [event for event, _ in events if event in (*PHASES, "start")]
    assert sorted(set(first), key=first.index) == ["read", "tokenizer", "encode", "index", "start", "evaluate", "gate"]

    screen = pyte.Screen(110, 60)
    stream = pyte.Stream(screen)
    out = io.StringIO()
    callback = rich_progress(Console(file=out, force_terminal=True, width=110, color_system=None))
    for event, info in events:
        callback(event, info)
    stream.feed(out.getvalue().replace("\n", "\r\n"))
    lines = [line.rstrip() for line in screen.display if line.strip()]
    for phase in (*PHASES, "train"):
        bars = [line for line in lines if line.startswith(f"{phase} ")]
        assert len(bars) == 1 and "100%" in bars[0], (phase, lines)
