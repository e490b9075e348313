"""The REPL's input handling, driven headless through prompt_toolkit's pipe input."""

from __future__ import annotations

import threading

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from copilot_repl.completion.session import Session
from copilot_repl.repl.app import build_prompt_session
from copilot_repl.repl.history import history_path
from copilot_repl.repl.suggest import ModelSuggest

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def submit(keys: str, history: bool = False, then: str = "") -> str:
    """Type `keys`; `then` is typed once Tab's background completion has grown the line past what was typed.

    Completion runs after the keys are read, so `then` waits for the buffer to change rather than for a clock:
    if nothing is ever inserted, `then` is typed after a generous wait and the assertion on the text fails.
    """
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        prompt = build_prompt_session(Session(), history=history)
        if then:
            typed = len(keys.replace("\t", ""))
            fallback = threading.Timer(30, pipe.send_text, [then])

            def send_then_once_completed(buffer) -> None:
                if len(buffer.text) > typed and not fallback.finished.is_set():
                    fallback.cancel()
                    pipe.send_text(then)

            prompt.default_buffer.on_text_changed += send_then_once_completed
            fallback.start()
        pipe.send_text(keys)
        return prompt.prompt(">>> ")


def test_enter_submits():
    assert submit("x = 1\r") == "x = 1"


@pytest.mark.parametrize("newline_key", ["\x1b\r", "\n"])  # Esc-Enter (also Alt-Enter), Ctrl-J
def test_newline_keys_insert_a_line_keeping_indentation(newline_key):
    assert submit(f"def f():{newline_key}return 1\r") == "def f():\n    return 1"
    assert submit(f"    x = 1{newline_key}y\r") == "    x = 1\n    y"


def test_bracketed_paste_is_inserted_verbatim_and_not_submitted():
    pasted = "def f():\r\n    return 1\r\n\r\nprint(f())"
    assert submit(PASTE_START + pasted + PASTE_END + "\r") == "def f():\n    return 1\n\nprint(f())"


def test_ctrl_c_clears_a_non_empty_line():
    assert submit("garbage\x03x\r") == "x"


def test_ctrl_c_on_an_empty_line_interrupts():
    with pytest.raises(KeyboardInterrupt):
        submit("\x03")


def test_ctrl_d_on_an_empty_line_exits():
    with pytest.raises(EOFError):
        submit("\x04")


@pytest.mark.parametrize(
    "typed, expected",
    [
        (":se\t", ":set"),
        (":set temp\t", ":set temperature"),
        (":set stop_mode li\t", ":set stop_mode line"),
        (":train --toke\t", ":train --tokenizer"),
        (":train --device cu\t", ":train --device cuda"),
        (":train --tokenizer tik\t", ":train --tokenizer tiktoken"),
    ],
)
def test_tab_completes_commands_flags_and_values(typed, expected):
    assert submit(typed, then="\r").rstrip() == expected


def test_tab_completes_paths(tmp_path, monkeypatch):
    (tmp_path / "corpus_folder").mkdir()
    monkeypatch.chdir(tmp_path)
    assert submit(":read corp\t", then="\r").rstrip("/ ") == ":read corpus_folder"


def test_history_is_written_and_searchable():
    submit("import os\r", history=True)
    assert "import os" in history_path().read_text()
    assert submit("\x12impo\r\r", history=True) == "import os"  # Ctrl-R reverse search


def test_corrupt_or_unwritable_history_does_not_stop_the_repl(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    history_path().parent.mkdir(parents=True)
    history_path().write_bytes(b"\xff\xfe\x00garbage\n+\xff\n")
    assert submit("x = 1\r", history=True) == "x = 1"
    history_path().unlink()
    history_path().mkdir()  # a folder where the file should be: neither readable nor writable
    assert submit("y = 2\r", history=True) == "y = 2"


def test_ctrl_c_twice_within_the_window_exits_once_does_not():
    from copilot_repl.repl.app import Interrupts

    now = [100.0]
    interrupts = Interrupts(window=1.0, clock=lambda: now[0])
    assert not interrupts.again()  # the first says how to exit
    now[0] += 0.4
    assert interrupts.again()  # the second, at once, exits
    now[0] += 5.0
    assert not interrupts.again()  # much later: a first again


def type_then_take(session: Session, typed: str, key: str) -> tuple[str, str]:
    """Type `typed`, wait for the suggestion to be drawn, press `key` and Enter: (the input, the suggestion)."""
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        prompt = build_prompt_session(session, history=False)
        shown: list[str] = []
        fallback = threading.Timer(60, pipe.send_text, ["\r"])  # no suggestion at all: the assertion fails

        def take(buffer) -> None:
            if buffer.suggestion is not None and not shown:
                shown.append(buffer.suggestion.text)
                fallback.cancel()
                pipe.send_text(key + "\r")

        prompt.default_buffer.on_suggestion_set += take
        fallback.start()
        pipe.send_text(typed)
        return prompt.prompt(">>> "), (shown or [""])[0]


@pytest.mark.parametrize("key", ["\t", "\x1b[C"])  # Tab, Right
def test_a_suggestion_appears_while_typing_and_a_key_takes_it(key):
    """The shipped model, a name defined earlier in the session's code: the suggestion finishes it."""
    session = Session()
    session.model()
    session.file_context = "def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n"
    entered, suggested = type_then_take(session, "result = compute_chec", key)
    assert len(suggested) >= 4 and "ksum_of_payload(data)".startswith(suggested)  # right as far as it goes
    assert entered == "result = compute_chec" + suggested


def test_after_a_line_that_opens_a_block_the_suggestion_is_its_body_and_tab_takes_every_line():
    """Mechanics at a set threshold (0.05, pinned; the threshold's own test is below): the body of a definition
    typed earlier is suggested as lines under the input, and Tab takes all of them."""
    from copilot_repl.repl.suggest import BlockSuggestion, rest_lines

    session = Session()
    session.model()
    session.set("min_confidence", "0.05")
    session.file_context = "def is_even(n):\n    return n % 2 == 0\n\n\n"
    buffer = Buffer()
    buffer.document = Document("def is_even(n):")
    suggestion = ModelSuggest(session, pause=0).get_suggestion(buffer, buffer.document)
    assert isinstance(suggestion, BlockSuggestion) and suggestion.text == ""
    assert suggestion.rest == "    return n % 2 == 0"
    assert [text for _, text in rest_lines(suggestion, "... ")] == ["... ", "    return n % 2 == 0"]
    entered, _ = type_then_take(session, "def is_even(n):", "\t")
    assert entered == "def is_even(n):\n    return n % 2 == 0"


def test_typing_on_ends_the_pause_of_a_stale_suggestion_at_once():
    """prompt_toolkit joins the suggestion's thread when the prompt returns: a pause that ran its course
    whatever happened would hold Enter back. A 60-second pause ends as soon as the line changes."""
    session = Session()
    session.model()
    buffer = Buffer()
    buffer.document = Document("x = 1")
    answer: list = []
    suggest, typed = ModelSuggest(session, pause=60), buffer.document
    asked = threading.Thread(target=lambda: answer.append(suggest.get_suggestion(buffer, typed)))
    asked.start()
    buffer.document = Document("x = 12")  # typed on
    asked.join(timeout=30)
    assert not asked.is_alive() and answer == [None]


def test_a_suggestion_waits_for_a_busy_model_instead_of_giving_up():
    """After a pause mid-word the model may still be writing the suggestion for the text before the last
    key (it stops at its next token, stale). The new one waits for it and is shown; it used to give up,
    and nothing was shown until the next key. One whose line changes while it waits lets the model be."""
    session = Session()
    session.model()
    session.file_context = "def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n"
    buffer = Buffer()
    buffer.document = Document("result = compute_chec")
    answers: list = []

    def ask(typed: Document) -> threading.Thread:
        asked = threading.Thread(target=lambda: answers.append(ModelSuggest(session, pause=0).get_suggestion(buffer, typed)))
        asked.start()
        return asked

    with session.busy:
        asked = ask(buffer.document)
        asked.join(timeout=0.3)
        assert asked.is_alive()  # waiting for the model, not given up
    asked.join(timeout=60)
    assert answers[0] is not None and answers[0].text.startswith("ksum_of")
    with session.busy:
        asked = ask(buffer.document)
        buffer.document = Document("result = compute_chec_")  # typed on while it waited
        asked.join(timeout=30)
    assert answers[1] is None and session.busy.acquire(blocking=False)


def test_no_suggestion_when_turned_off_or_below_the_threshold():
    session = Session()
    session.model()
    session.file_context = "def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n"
    buffer = Buffer()
    buffer.document = Document("result = compute_chec")
    suggest = ModelSuggest(session, pause=0)
    assert suggest.get_suggestion(buffer, buffer.document) is not None
    session.set("suggest", "off")
    assert suggest.get_suggestion(buffer, buffer.document) is None
    session.set("suggest", "on")
    session.set("min_confidence", "1")
    assert suggest.get_suggestion(buffer, buffer.document) is None
