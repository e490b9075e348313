"""The real copilot-repl process in a pseudo-terminal, driven with pexpect, and in batch mode."""

from __future__ import annotations

import re
import time

import pexpect
import pytest

from conftest import TINY_CLI, run_cli, spawn_repl

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
STATS = r"\[(\d+) tokens, \d+ tok/s, ([a-z ]+), confidence [0-9.]+[^\]]*\]"


def plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture
def repl(tiny_model, tmp_path):
    child = spawn_repl("--model", str(tiny_model), env={"XDG_STATE_HOME": str(tmp_path / "state")}, dimensions=(40, 160))
    child.expect(">>> ")
    child.send(":show\r")  # waits for the model, which loads behind the first prompt
    child.expect("parameters")
    child.expect(">>> ")
    yield child
    if child.isalive():
        child.terminate(force=True)


def submit(child, line: str) -> None:
    child.send(line + "\r")


def command(child, line: str, response: str) -> str:
    """Run a command and wait for its response, then for the next prompt (typing ahead of the
    prompt would meet the terminal's cooked mode, where Enter arrives as a newline)."""
    submit(child, line)
    child.expect(response)
    shown = plain(child.before + child.after)
    child.expect(">>> ")
    return shown


def long_stream(child, max_tokens: int) -> None:
    """Settings under which the next completion runs to `max_tokens`: greedy, so that the tiny model
    cannot end it early by sampling its end-of-text token (a sampled one sometimes did, and the keys a
    test typed during the stream then met the next prompt instead)."""
    for setting in (f"max_tokens {max_tokens}", "stop_mode none", "temperature 0"):
        command(child, ":set " + setting, " = ")


def on_screen(child, text: str, size: tuple[int, int]) -> list[str]:
    """The lines on the terminal once one shows `text`, as drawn from here on (`size`: rows, columns).
    The renderer redraws only the cells that changed, so text on the screen need not pass through the
    output in one piece: a suggestion drawn for the word one key shorter leaves the same letters in the
    same cells, and only the typed key is written."""
    import pyte

    screen, stream = pyte.Screen(size[1], size[0]), pyte.Stream()
    stream.attach(screen)
    deadline = time.monotonic() + child.timeout
    while not any(text in line for line in screen.display):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not on the screen:\n" + "\n".join(line for line in screen.display if line.strip()))
        try:
            stream.feed(child.read_nonblocking(4096, timeout=1))
        except pexpect.TIMEOUT:
            pass
    return [line.rstrip() for line in screen.display if line.strip()]


def complete(child, prompt: str) -> tuple[str, str]:
    """Submit a prompt; return the completion as shown and why it stopped."""
    submit(child, prompt)
    child.expect(STATS)
    shown = plain(child.before)
    reason = child.match.group(2)
    child.expect(">>> ")
    return shown[shown.rfind(prompt) + len(prompt) :], reason


def test_prompt_appears_and_quit_exits_zero(repl):
    submit(repl, ":quit")
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 0


def test_greedy_completion_is_repeatable(repl):
    for setting in ("temperature 0", "stop_mode none", "max_tokens 30"):
        command(repl, ":set " + setting, " = ")
    first = complete(repl, "def f(x):")
    command(repl, ":reset", "fresh context")  # the first turn is now context: start afresh to repeat it
    second = complete(repl, "def f(x):")
    assert first == second and first[1] in ("max tokens", "repetition")
    command(repl, ":set temperature 1", " = ")
    command(repl, ":set seed 5", " = ")
    command(repl, ":reset", "fresh context")
    sampled = complete(repl, "class A:")
    command(repl, ":reset", "fresh context")
    assert complete(repl, "class A:") == sampled


def test_ctrl_c_stops_a_long_generation_and_the_session_lives_on(repl):
    long_stream(repl, 8000)
    submit(repl, "x = 1")
    time.sleep(1.5)
    repl.sendintr()
    repl.expect(STATS)
    assert repl.match.group(2) == "interrupted" and int(repl.match.group(1)) < 8000
    repl.expect(">>> ")
    command(repl, ":set max_tokens 20", "max_tokens = 20")
    _, reason = complete(repl, "y = 2")  # still alive and still completing
    assert reason


def test_keys_typed_during_a_completion_wait_for_the_next_prompt(repl):
    long_stream(repl, 3000)
    submit(repl, "x = 1")
    time.sleep(0.5)
    repl.send("zq = 7\r")  # typed ahead while the completion streams
    repl.expect(STATS)
    assert repl.match.group(2) == "max tokens"  # still streaming when the keys came
    streamed = plain(repl.before)
    repl.expect(STATS)  # the early Enter submitted the typed-ahead line once the prompt was back
    assert "zq = 7" not in streamed  # not echoed into the completion
    assert "zq = 7" in plain(repl.before)


def test_bad_input_gives_one_error_line_and_changes_nothing(repl):
    command(repl, ":set temperature 0.3", "temperature = 0.3")
    for bad, message in [
        (":bogus", "unknown command :bogus"),
        (":set temperature -1", "out of range"),
        (":set top_p 7", "out of range"),
        (":set nope 1", "unknown setting"),
        (":load /no/such/model", "no checkpoint"),
    ]:
        shown = command(repl, bad, "error: .*\n")
        lines = [line for line in shown.splitlines() if line.strip() and not line.startswith(">>> ")]
        assert len(lines) == 1 and message in lines[0], lines
    shown = command(repl, ":set", "stop_mode.*\n")
    assert re.search(r"temperature\s+0\.3\s+\(set\)", shown)


def test_ctrl_c_at_the_prompt(repl):
    repl.send("half typed")
    repl.sendintr()  # clears the line
    repl.sendintr()  # empty line: says how to exit
    repl.expect("Ctrl-D or :quit exits")
    repl.sendintr()  # a second Ctrl-C within a second exits with 130
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 130


def test_history_file_is_written(repl, tmp_path):
    complete(repl, "import os")
    submit(repl, ":quit")
    repl.expect(pexpect.EOF)
    history = (tmp_path / "state" / "copilot-repl" / "history").read_text()
    assert "+import os" in history and "+:quit" in history


def test_batch_mode_through_a_pipe(tiny_model):
    script = ":set temperature 0\ndef f(x):\ndef f(x):\n:set max_tokens 5\nclass A:\\\n    def\n"
    r = run_cli("--model", str(tiny_model), stdin=script)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout  # plain text, no colour
    assert r.stdout.count("\n") >= 3 and r.stderr.count("error") == 0  # one answer per prompt
    failing = run_cli("--model", str(tiny_model), stdin=":set temperature hot\nx = 1\n")
    assert failing.returncode == 1 and "temperature" in failing.stderr


def test_train_in_the_repl_then_ctrl_c_saves_and_activates(repl, corpus_dir):
    submit(repl, f":train --corpus {corpus_dir} {' '.join(TINY_CLI)} --tokenizer char --steps 100000 --name fromrepl")
    repl.expect(r"step \d+\s+loss")  # a step taken: before the first, Ctrl-C has nothing to save
    time.sleep(1)
    repl.sendintr()
    repl.expect("interrupted; saved")
    repl.expect(">>> ")
    shown = command(repl, ":show", "parameters.*\n")
    assert "fromrepl" in shown
    shown = command(repl, ":models", "fromrepl.*\n")
    assert "char" in shown


def test_save_keeps_set_values_as_the_checkpoint_defaults(repl, tmp_path):
    command(repl, ":set temperature 0.25", "temperature = 0.25")
    command(repl, f":save {tmp_path / 'kept'}", "saved /")
    command(repl, ":unset temperature", "temperature = ")
    command(repl, f":load {tmp_path / 'kept'}", "loaded")
    shown = command(repl, ":set", "stop_mode.*\n")
    assert re.search(r"temperature\s+0\.25\s+\(checkpoint\)", shown)


def test_best_of_n_and_next_candidate(repl):
    command(repl, ":set n 3", "n = 3")
    command(repl, ":set max_tokens 6", "max_tokens = 6")
    submit(repl, "x = 1")
    repl.expect(r"candidate 1/3")
    repl.expect(">>> ")
    command(repl, ":next", r"candidate 2/3")
    repl.send("\x1bn")  # Alt-N
    repl.expect(r"candidate 3/3")


def test_two_repls_share_one_history_file(tiny_model, tmp_path):
    from prompt_toolkit.history import FileHistory

    children = [spawn_repl("--model", str(tiny_model), env={"XDG_STATE_HOME": str(tmp_path / "state")}) for _ in range(2)]
    for child in children:
        child.expect(">>> ")
    for i in range(5):
        for n, child in enumerate(children):
            command(child, f":set seed {n + 1}{i}", f"seed = {n + 1}{i}")
    for child in children:
        submit(child, ":quit")
        child.expect(pexpect.EOF)
    entries = list(FileHistory(str(tmp_path / "state" / "copilot-repl" / "history")).load_history_strings())
    expected = sorted(f":set seed {n + 1}{i}" for n in range(2) for i in range(5))
    assert sorted(e for e in entries if e.startswith(":set")) == expected


def test_a_suggestion_shows_while_typing_and_right_takes_it(tmp_path):
    """The shipped model, under a real terminal: a name from the session's earlier code is suggested
    before Enter, dim after the cursor, and the Right arrow takes it into the line. Greedy, so that the
    session's code (the context the suggestion is written after) is the same on every run: after a sampled
    answer the model's sure part of the name was sometimes only `ksum`."""
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    child = spawn_repl("--no-history", "--temperature", "0", env=state, dimensions=(40, 160))
    child.expect(">>> ")
    complete(child, "def compute_checksum_of_payload(data):\x1b\rreturn sum(data) % 256")
    child.send("result = compute_chec")
    on_screen(child, "result = compute_checksum_of", (40, 160))  # drawn after the cursor, with no key pressed
    child.send("\x1b[C\r")  # Right takes it; Enter submits the line
    child.expect(STATS)
    child.expect(">>> ")
    command(child, ":context", "result = compute_checksum_of")  # the line as taken is the session's code
    child.terminate(force=True)


def test_where_the_model_is_unsure_mid_word_the_one_name_typed_earlier_is_suggested(tmp_path):
    """At a raised threshold the model's own `ksum_of_payload(data)` (confidence 0.3) is withheld; the
    session's one name that starts `compute_chec` is drawn instead. Greedy, as above."""
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    child = spawn_repl("--no-history", "--temperature", "0", env=state, dimensions=(40, 160))
    child.expect(">>> ")
    command(child, ":set min_confidence 0.55", "min_confidence = 0.55")
    complete(child, "def compute_checksum_of_payload(data):\x1b\rreturn sum(data) % 256")
    child.send("result = compute_chec")
    lines = on_screen(child, "result = compute_checksum_of_payload", (40, 160))
    assert any(line.endswith("result = compute_checksum_of_payload") for line in lines), lines
    child.terminate(force=True)


def test_a_block_suggestion_shows_its_lines_under_the_input_and_tab_takes_them(tmp_path):
    """Under a real terminal, at a pinned threshold (0.05, serve's default now): after `def is_even(n):`
    (defined earlier in the session), the body is drawn on the line under the input; Tab takes it and Enter submits both lines.
    Greedy, so that the session's own answers (its context) are the same on every run."""
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    child = spawn_repl("--no-history", "--temperature", "0", env=state, dimensions=(30, 100))
    child.expect(">>> ")
    command(child, ":set min_confidence 0.05", "min_confidence = 0.05")
    complete(child, "def is_even(n):\x1b\rreturn n % 2 == 0")
    child.send("def is_even(n):")
    lines = on_screen(child, "return n % 2 == 0", (30, 100))  # drawn with no key pressed
    typed = max(i for i, line in enumerate(lines) if line.endswith("def is_even(n):"))
    assert lines[typed + 1].endswith("    return n % 2 == 0"), lines  # under the input, indented as the body
    child.send("\t\r")
    child.expect(STATS)
    child.expect(">>> ")
    shown = command(child, ":context", r"return n % 2 == 0[\s\S]*return n % 2 == 0")
    assert shown.count("def is_even(n):") == 2
    child.terminate(force=True)
