"""Settings and `:` command lines: bad values are refused with the project's own error, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot_repl.completion.settings import SETTINGS, Sampling, apply, parse_setting
from copilot_repl.errors import UsageError


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
