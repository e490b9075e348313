from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot_repl import checkpoint
from copilot_repl.errors import UsageError
from copilot_repl.generate import Completion
from copilot_repl.settings import SETTINGS, Sampling, apply, parse_setting
from copilot_repl.stops import StopRules


def complete(loaded, prompt: str, **kw) -> Completion:
    c = Completion(loaded.model, loaded.tokenizer, prompt, Sampling(**{"max_tokens": 40, "stop_mode": "none", **kw}))
    c.streamed = "".join(c)
    return c


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return checkpoint.load(tiny_model)


def test_same_seed_same_output(loaded):
    a, b = complete(loaded, "def f(x):", seed=7), complete(loaded, "def f(x):", seed=7)
    assert a.text == b.text and a.tokens == b.tokens
    greedy = [complete(loaded, "import os\n", temperature=0).text for _ in range(2)]
    assert greedy[0] == greedy[1]


def test_streamed_text_is_the_completion(loaded):
    c = complete(loaded, "class Stack:", seed=1, max_tokens=30)
    assert c.streamed == c.text and 0 < c.tokens <= 30
    assert c.reason in ("max tokens", "end of text", "stop")


def test_long_prompt_is_cropped_from_the_left(loaded):
    c = complete(loaded, "x = 1\n" * 500, seed=1, max_tokens=80)  # generation also runs past the context
    assert c.cropped_tokens > 0 and c.tokens <= 80


def test_odd_prompts_do_not_crash(loaded):
    for prompt in ["", "   ", "\x00\x1b[31m", "\ud800 lone surrogate", "日本語🐍"]:
        complete(loaded, prompt, seed=2, max_tokens=5)


def test_stop_strings_cut_the_output(loaded):
    free = complete(loaded, "def f(x):", seed=3, max_tokens=40).text
    stop = free[5:7]
    cut = complete(loaded, "def f(x):", seed=3, max_tokens=40, stop=[stop])
    assert stop not in cut.text and free.startswith(cut.text)


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
        ("def f():\n    x = 1\n", "    y = 2\nz = 3\n", "    y = 2"),
        ("def f():", '\n    """Doc.\n\nmore doc\n"""\n    return 1\nx', '\n    """Doc.\n\nmore doc\n"""\n    return 1'),
    ],
)
def test_block_rule(prompt, completion, expected):
    rules = StopRules(prompt, [], "block")
    cut = rules.find_stop(completion)
    assert StopRules.finish(completion[:cut] if cut is not None else completion) == expected


def test_line_mode_and_none_mode():
    assert StopRules("x = ", [], "line").find_stop("1\ny = 2\n") == 1
    assert StopRules("def f():", [], "none").find_stop("\n    pass\nx = 1\n") is None


@given(st.text(alphabet=" \n\tab:#\"'", max_size=60), st.text(alphabet=" \n\tab:#\"'", max_size=40))
def test_streamed_text_is_never_taken_back(prompt, text):
    """Whatever was shown while streaming stays a prefix of the final completion."""
    rules = StopRules(prompt, ["b:"], "block")
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
    "name, value",
    [
        ("temperature", "-1"),
        ("temperature", "hot"),
        ("top_p", "0"),
        ("top_p", "1.5"),
        ("top_k", "-1"),
        ("max_tokens", "0"),
        ("max_tokens", "10000000"),
        ("seed", "1.5"),
        ("stop_mode", "sometimes"),
        ("nope", "1"),
        ("temperature", "nan"),
    ],
)
def test_bad_settings_are_refused(name, value):
    with pytest.raises(UsageError):
        parse_setting(name, value)


def test_apply_changes_one_setting_only():
    base = Sampling()
    changed = apply(base, "temperature", "0")
    assert changed.temperature == 0 and base.temperature == Sampling().temperature
    assert apply(base, "stop", "\\n\\n|###").stop == ["\n\n", "###"]
    assert apply(base, "seed", "random").seed is None


@given(st.sampled_from(sorted(SETTINGS)), st.text(max_size=20))
def test_settings_parser_raises_only_usage_errors(name, text):
    try:
        parse_setting(name, text)
    except UsageError:
        pass


@given(st.text(max_size=60))
def test_command_parser_raises_only_usage_errors(text):
    """Any typed `:` line parses, or fails with the project's own UsageError (never argparse's exit)."""
    from copilot_repl.commands import parse_command, split_line

    try:
        words = split_line(":" + text)
        parse_command(words[0], words[1:])
    except UsageError:
        pass


@given(st.sampled_from(["train", "eval", "set", "load", "help", "read", "tokenize"]), st.lists(st.text(max_size=12), max_size=5))
def test_each_command_parser_raises_only_usage_errors(name, argv):
    from copilot_repl.commands import parse_command

    try:
        parse_command(name, argv)
    except UsageError:
        pass


@pytest.fixture(scope="module")
def untrained_bpe():
    from copilot_repl.model import GPT, GPTConfig
    from copilot_repl.tokenizer import tokenizer_class

    text = "def read(self):\n    return self.value\n\n" * 20 + "import os\nimport sys\n" * 20
    tokenizer = tokenizer_class("bpe").train([text], 300)
    return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32)), tokenizer


@given(st.sampled_from(["    ret", "    return self.va", "import o", "def re", "x = "]), st.integers(0, 2**31))
def test_token_healing_lets_the_model_finish_a_cut_word(untrained_bpe, prompt, seed):
    model, tokenizer = untrained_bpe
    c = Completion(model, tokenizer, prompt, Sampling(max_tokens=1, stop_mode="none", seed=seed))
    assert prompt.encode().endswith(c.healed) and len(c.first_from or []) != 1
    first = int(next(iter(c.stream()))[0][0])
    assert tokenizer.token_bytes(first).startswith(c.healed)  # the cut word may only be extended
    text = "".join(c)
    assert (prompt + text).encode() == prompt.encode() + c.piece(first, first=True)  # nothing is repeated


def test_token_healing_takes_back_the_partial_word(untrained_bpe):
    model, tokenizer = untrained_bpe
    c = Completion(model, tokenizer, "    return self.va", Sampling(max_tokens=1, stop_mode="none"))
    assert c.healed and c.first_from and c.ids[1:] == tokenizer.encode("    return self.va")[:-1]
