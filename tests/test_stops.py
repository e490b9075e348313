"""Where completions end: the block rule, stop modes, held-back text and repetition (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot_repl.completion.stops import StopRules, answered_lines, defined_names, redefinition_cut, repetition_cut


@pytest.mark.parametrize(
    "prompt, completion, expected",
    [
        ("def fib(n):", "\n    return n\n\ndef other():\n    pass", "\n    return n"),
        (
            "def fib(n):\n",
            "    if n < 2:\n        return n\n    return fib(n - 1)\nprint(1)",
            "    if n < 2:\n        return n\n    return fib(n - 1)",
        ),
        ("class A:\n    def f(self):", "\n        return 1\n    def g(self):\n", "\n        return 1"),
        ("import os\n", "import sys\n\n\ndef main():\n", "import sys"),
        ("import os", "\nimport sys\nimport re\n", "\nimport sys"),  # a simple statement ends with its line
        ("import os", ".path\nimport re\n", ".path"),
        ("x = f(", "a,\n      b)\ny = 2\n", "a,\n      b)"),
        ("x = [i for i in", " range(10))\n'junk'\n", " range(10)"),  # a bracket of the wrong kind: lost
        ("s = 'a(", "b'\nz = 1\n", "b'"),
        ("result = compute_chec", "ksum(data):\n    return 1\n", "ksum(data)"),  # only a compound statement opens
        ("", "for x in y:\n    print(x)\nz = 1\n", "for x in y:\n    print(x)"),  # unless its line opens a block
        ("def f():\n    x = 1\n", "    y = 2\nz = 3\n", "    y = 2"),
        ("def f():", '\n    """Doc.\n\nmore doc\n"""\n    return 1\nx', '\n    """Doc.\n\nmore doc\n"""\n    return 1'),
        ("    return x", "\n    y = 1\n", ""),  # after a return, a line at its level is never run
        ("        raise E", "\n            y = 1\n", ""),
        ("def f(x):\n    return x", "\nprint(f(1))\n", "\nprint(f(1))"),  # one that dedents is
        ("        return load(f)", "\n    return None\n", "\n    return None"),
    ],
)
def test_block_rule(prompt, completion, expected):
    rules = StopRules(prompt, [], "block")
    cut = rules.find_stop(completion)
    assert StopRules.finish(completion[:cut] if cut is not None else completion) == expected


def test_a_line_that_may_repeat_an_earlier_one_is_held_back_until_it_ends():
    rules = StopRules("import os", [], "block")
    assert rules.safe_length("\nimport o") == 0  # it may become `import os` again: nothing shown yet
    assert rules.safe_length("\nimport sys") == len("\nimport sys")  # no earlier line starts so
    assert rules.find_stop("\nimport os\n") == 1  # and when it does repeat, it is cut before it was shown


def test_line_mode_and_none_mode():
    assert StopRules("x = ", [], "line").find_stop("1\ny = 2\n") == 1
    assert StopRules("def f():", [], "none").find_stop("\n    pass\nx = 1\n") is None


@given(st.text(alphabet=" \n\tab:#\"'", max_size=60), st.text(alphabet=" \n\tab:#\"'", max_size=40))
def test_streamed_text_is_never_taken_back(prompt, text):
    """Whatever was shown while streaming stays a prefix of the final completion."""
    rules = StopRules(prompt, ["b:"], "block", repeats=False)  # a repetition cut is clamped by the stream instead
    shown = ""
    for end in range(1, len(text) + 1):
        part = text[:end]
        cut = rules.find_stop(part)
        if cut is not None:
            assert StopRules.finish(part[:cut]).startswith(shown)
            return
        shown = part[: max(len(shown), rules.safe_length(part))]
        assert part.startswith(shown)
    assert StopRules.finish(text).startswith(shown)


@pytest.mark.parametrize(
    "text, earlier, expected",
    [
        ("\n    self.name = name\n    self.name = name\n", set(), 22),
        ("\nimport os\n", {"import os"}, 1),
        ("PosixPosixPosixPosix", set(), 5),
        ("    return x\n    pass\n    pass\n", set(), None),  # short lines repeat in real code
        ("x = '----------'\n", set(), None),
        ("a = 1\nb = 2\n", set(), None),
    ],
)
def test_repetition_is_cut_where_it_starts(text, earlier, expected):
    assert repetition_cut(text, earlier) == expected


def test_a_line_of_an_earlier_answer_is_a_repeat_in_a_new_definition():
    """The session's context holds what the user typed and what the model answered; only the answers'
    lines count as repeats (a name typed earlier is still completed)."""
    typed = "def area(radius):\ndef compute(data):\n"
    context = "def area(radius):\n    return pi * radius**2\ndef compute(data):\n"
    answered = answered_lines(context, typed)
    assert answered == {"return pi * radius**2"} and answered_lines(context, None) == frozenset()
    rules = StopRules("def compute(data):", [], answered=answered)
    text = "\n    total = 0\n    return pi * radius**2\n"
    assert rules.find_stop(text) == text.index("    return") and rules.reason == "repetition"


def test_a_function_or_class_the_code_has_is_not_defined_again():
    """After a finished function the small model writes its header again; a REPL or a file never wants
    the second one, so it is a repetition, and not shown while it may become one."""
    defined = defined_names("import json\n\ndef load(path):\n    return json.load(open(path))\n\nclass Store:\n    pass\n")
    assert defined == {"load", "Store"}
    rules = StopRules("    return json.load(open(path))", [], defined=defined)
    assert rules.find_stop("\n\n\ndef load(path):\n    pass\n") == 3 and rules.reason == "repetition"
    assert rules.safe_length("\n\n\ndef lo") <= 3 and rules.safe_length("\n\n\nclass St") <= 3
    assert rules.safe_length("\n\n\ndef save") == len("\n\n\ndef save")  # no name of the code starts so
    assert redefinition_cut("\nclass Store(Base):\n", defined, False) == 1
    assert redefinition_cut("\ndef loader(path):\n", defined, False) is None
    assert redefinition_cut("\n    def load(self):\n", defined, False) is None  # a method may share a name
    assert redefinition_cut("def load(self):\n", defined, at_line_start=False) is None  # not a line's start
