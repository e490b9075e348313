"""What a person sees where they type, through the installed program on the shipped model: each case is a
reproduction from the issue that asked for suggestions worth accepting."""

from __future__ import annotations

import json
import re

import pytest

from conftest import run_cli
from copilot_repl.completion.cursor import indent_of
from copilot_repl.completion.result import Candidate, Result
from copilot_repl.completion.session import Turn
from copilot_repl.completion.syntax import ClosedLines, closed


def once(*args: str, stdin: str | None = None) -> dict:
    r = run_cli("--once", *args, "--temperature", "0", "--json", stdin=stdin)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def batch(lines: list[str]) -> list[dict]:
    r = run_cli("--json", stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{"completion"')]


def first_line(text: str) -> str:
    return next(line for line in text.split("\n") if line.strip())


def sampled(*args: str, stdin: str | None = None, seed: int = 3) -> dict:
    r = run_cli("--once", *args, "--seed", str(seed), "--json", stdin=stdin)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_prompt_ending_in_a_newline_writes_the_body_at_its_indentation():
    """The newline the user typed changes nothing: the same body, at the body's indentation."""
    text = sampled("-", stdin="def fib(n):\n")["completion"]
    assert text.strip(), "empty after a newline"
    assert indent_of(first_line(text)) == 4 and closed("def fib(n):\n" + text)
    assert "\n" + text == sampled("def fib(n):")["completion"]


@pytest.mark.parametrize("prompt", ["if __name__ ==", "from collections import"])
def test_a_space_typed_before_the_cursor_changes_nothing_but_the_space(prompt):
    """After `x = ` the model used to read a lone space token, which it never saw before code, and
    wrote `~~~~` to max_tokens; now it reads the space with the word after it, as without it."""
    without = once(prompt)["completion"]
    assert without.startswith(" ") and once(prompt + " ")["completion"] == without[1:]


@pytest.mark.parametrize(
    "prompt, level",
    [("def fib(n):\n    ", 4), ("class Shape:\n    def area(self):\n        ", 8)],
)
def test_at_the_bodys_indentation_the_completion_starts_at_the_cursor_and_stays_in_the_block(prompt, level):
    """Valid where it ends and inside the block, or nothing with the reason (never a run through other methods)."""
    record = sampled("-", stdin=prompt)
    text = record["completion"]
    if not text:
        assert record["note"] and level == 8  # the method's body: the shipped model writes no valid one
        return
    assert not text[0].isspace()
    body = (prompt + text).split("\n")[prompt.count("\n") :]
    assert all(indent_of(line) >= level for line in body if line.strip()), body
    assert closed(prompt + text)


def test_a_file_ending_in_a_newline_completes(tmp_path):
    """README's `copilot-repl --once - < prompt.py`: files end in a newline."""
    text = once("-", stdin="import math\n\n\ndef area(radius):\n")["completion"]
    assert text.strip() and indent_of(first_line(text)) == 4


def test_a_body_starts_one_level_deeper_whatever_the_seed():
    """Sampled at the default temperature: the first line of the body is at 4 spaces, every time."""
    prompts = ["class Stack:", "for i in range(10):", 'with open("data.txt") as f:']
    lines = [f":set seed {seed}\n{prompt}\n:reset" for prompt in prompts for seed in range(1, 7)]
    for record in batch(lines):
        if record["completion"].strip():
            assert indent_of(first_line(record["completion"])) == 4, record["completion"]


def test_a_new_body_starts_with_code_not_a_docstring_or_a_comment():
    """`def factorial(n):` opened a docstring and ran out of tokens inside it (nothing valid to show);
    `for i in range(10):` wrote a comment about coprime integers."""
    prompts = ["def factorial(n):", "for i in range(10):", "class Stack:", "def fib(n):\n"]
    lines = [f":set seed {seed}\n{prompt}\n:reset" for prompt in prompts[:3] for seed in (1, 2)]
    records = [once(p) for p in prompts[:3]] + [once("-", stdin=prompts[3])] + batch(lines)
    starts = [first_line(r["completion"]).lstrip()[:1] for r in records if r["completion"].strip()]
    assert len(starts) >= len(records) // 2 and not set(starts) & {'"', "'", "#"}, starts


def test_nor_with_a_string_prefix_and_then_the_quotes():
    """` r` and then `\"\"\"` opened a raw docstring past the first-token rule (`def area(radius):`, the
    fourth of four greedy rows)."""
    candidates = once("def area(radius):", "--n", "4")["candidates"]
    starts = [first_line(c["completion"]).lstrip() for c in candidates if c["completion"].strip()]
    assert starts and not [s for s in starts if re.match(r"[rRbBuUfF]{0,2}[\"']", s)], starts


def test_an_unrelated_function_is_not_copied_because_two_tokens_matched():
    """`(n):` matched random.py's `randrange(-n,n+1)` for every one-argument function."""
    texts = [once(p)["completion"] for p in ("def fib(n):", "def is_prime(n):", "def sum_of_digits(n):")]
    assert not any("randrange" in t for t in texts), texts


def test_a_previous_answer_is_not_copied_into_a_new_definition():
    records = batch([":set temperature 0", "def fib(n):", "def is_prime(n):", "def count_words(text):"])
    first, *later = [r["completion"] for r in records]
    assert all(t != first or not t.strip() for t in later), [first, *later]


def test_best_of_n_never_shows_an_invalid_candidate():
    prompt = 'with open("data.txt") as f:'
    for seed in (1, 2, 3):
        record = once(prompt, "--n", "4", "--seed", str(seed))
        assert closed(prompt + record["completion"]) or (record["completion"] == "" and record["note"])


def test_an_empty_completion_says_why():
    record = once("import os", "--max-tokens", "64", "--seed", "1")
    assert record["completion"].strip() or record["note"]
    r = run_cli("--once", "import os", "--temperature", "0", "--max-tokens", "64")
    assert r.stdout.strip() or "nothing to complete" in r.stderr


def test_the_users_index_wins_where_it_matches_better(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "app.py").write_text(
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
        "        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n"
    )
    text = once("class Stack:", "--index", str(project))["completion"]
    assert text.startswith("\n    def __init__(self):\n        self.items = []"), text


def test_mid_word_the_one_name_of_the_users_project_that_starts_so_is_suggested(tmp_path):
    """The shipped model writes `_to` after `result = frobn` (confidence 0.1): the project says which name it is."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "app.py").write_text("def frobnicate_the_widget_registry(widgets):\n    return sorted(widgets)\n")
    line = ("result = frobn", "--index", str(project), "--stop", "\\n", "--min-confidence", "0.6")
    record = once(*line)
    assert record["completion"] == "icate_the_widget_registry" and record["stop_reason"] == "known name"
    assert record["confidence"] == 0.6 and once(*line[:-1], "0.7")["completion"] == ""


def test_cut_below_decides_how_much_of_a_suggestion_shows():
    line = ("def __init__(self", "--stop", "\\n", "--min-confidence", "0.01")
    longer, shorter, none = (once(*line, "--cut-below", floor) for floor in ("0.01", "0.5", "0.99"))
    assert longer["completion"].startswith(shorter["completion"]) and len(shorter["completion"]) < len(longer["completion"])
    assert none["completion"] == "" and none["stop_reason"] == "unsure start" and "cut_below" in none["note"]
    assert none["confidence"] == longer["confidence"] >= 0.01  # the same suggestion, cut in three places


def test_confidence_is_in_the_record_and_min_confidence_withholds():
    record = once("def area(radius):")
    assert record["completion"] and 0.0 <= record["confidence"] <= 1.0
    withheld = once("def area(radius):", "--min-confidence", "1")
    assert withheld["completion"] == "" and withheld["stop_reason"] == "low confidence" and withheld["note"]
    assert withheld["withheld"] == record["completion"]


def _turn(prompt: str, text: str, reason: str) -> Turn:
    return Turn(prompt, None, Result(1, 0, 0, 0, 0.0, [Candidate(text, 5, -1.0, True, reason)]))


def test_a_completion_cut_inside_a_string_does_not_leave_the_next_prompt_inside_it():
    cut = _turn("def f(x):", '\n    """Return the first\n    of', "max tokens")
    assert cut.code() == "def f(x):\n"
    looped = _turn("def fib(n):", "\n    return frozen_frozen", "repetition")
    assert looped.code() == "def fib(n):\n"
    ended = _turn("def f(x):", "\n    return x + 1", "stop")
    assert ended.code() == "def f(x):\n    return x + 1\n"
    assert _turn("x = [i * i for i in", " range(", "max tokens").code() == ""  # left open: out of the context


def test_a_header_left_without_a_body_stays_out_unless_the_next_prompt_goes_on_inside_it():
    empty = _turn("def fib(n):", "\n    return frozen_frozen", "repetition")
    assert empty.code(continued=True) == "def fib(n):\n" and empty.code(continued=False) == ""
    assert _turn("import os", "", "stop").code(continued=False) == "import os\n"


def test_every_completion_of_a_session_is_valid_where_it_ends():
    """After `def fib(n):` got no body, the session's code no longer compiled (`def fib(n):` then
    `import json`), and from then on nothing was checked: `x_p = [0, 0, 1,` and `self.n = n):` were shown."""
    prompts = ["def fib(n):", "import json", 'with open("data.txt") as f:', "class Stack:", "def is_prime(n):", "import os"]
    for seed in (5, 6):
        for prompt, record in zip(prompts, batch([f":set seed {seed}", *prompts])):
            text = record["completion"]
            assert not text.strip() or closed(prompt + text, bodiless=False), (seed, prompt, text)


def test_a_streamed_completion_shows_only_whole_lines_after_which_the_code_is_closed():
    lines = ClosedLines("def f(x):", bodiless=False)
    assert lines.limit("\n    y = [1,") == 0 and lines.limit("\n    y = [1,\n") == 0
    assert lines.limit("\n    y = [1,\n         2]\n    if y:") == len("\n    y = [1,\n         2]")
    assert lines.limit("\n    y = [1,\n         2]\n    if y:\n        return y\n") == len(
        "\n    y = [1,\n         2]\n    if y:\n        return y"
    )


@pytest.mark.parametrize("prompt", ["def reverse_string(s):", "def read_lines(path):"])
def test_a_greedy_answer_that_went_wrong_is_retried_greedily_not_left_empty(prompt):
    """The shipped model's greedy path for these leaves nothing valid (for the 4-layer model before it,
    `def is_prime(n):` did); the retry opens the body with the model's next choices, so the answer is
    still valid Python, and still the same every time."""
    first, again = once(prompt), once(prompt)
    assert first["completion"].strip() and closed(prompt + first["completion"]), first
    assert again["completion"] == first["completion"]


SECOND_FUNCTION = '''def area(width, height):
    """The area of a rectangle."""
    result = width * height
    return result


def perimeter(width, height):
    """The perimeter of a rectangle."""
'''


def test_a_body_that_would_only_repeat_a_line_already_there_is_written_anew():
    """The second function of a file: greedy opened its body with the first one's `result = ...` line,
    the repetition rule cut it there, and the answer was empty; the model's next choices answer now."""
    done = once("-", stdin=SECOND_FUNCTION)
    written = {line.strip() for line in done["completion"].splitlines() if line.strip()}
    assert written and not written & {line.strip() for line in SECOND_FUNCTION.splitlines()}, done
    assert closed(SECOND_FUNCTION + done["completion"])
