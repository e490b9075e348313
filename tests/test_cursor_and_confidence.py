"""Pure pieces behind suggestions: where the cursor is, the confidence fit, the gate's word feature."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot_repl.completion.confidence import FEATURES, Confidence
from copilot_repl.completion.cursor import Cursor, place
from copilot_repl.completion.retrieval import Gate, Match, log_odds, mix


def test_a_block_opener_starts_the_body_one_level_deeper():
    assert place("def f(x):") == Cursor(9, "\n   ", indent_first=True, body=True)
    assert place("    if x:").lead == "\n" + " " * 7


def test_only_a_new_body_is_kept_from_opening_with_a_string():
    assert place("def f(x):\n").body and place("def f(x):\n    ").body and place("class A:\n\n    ").body
    assert not place("x = 1\n    ").body and not place("def f(x):\n    y = 1\n    ").body and not place("x = f(").body


def test_a_newline_after_a_block_opener_is_taken_as_the_bodys_start():
    cursor = place("def f(x):\n")
    assert cursor.keep == len("def f(x):") and cursor.lead == "\n   " and cursor.shown == "   " and cursor.indent_first


def test_at_the_bodys_indentation_nothing_typed_is_written_again():
    cursor = place("def f(x):\n    ")
    assert cursor.shown == "" and cursor.hide_space and cursor.indent_first


def test_at_the_left_margin_the_model_reads_the_newline_and_writes_the_line():
    cursor = place("import os\n")
    assert cursor.lead == "\n" and cursor.shown == "" and not cursor.indent_first


def test_inside_a_line_nothing_is_added():
    assert place("x = compute_chec") == Cursor(len("x = compute_chec"))


@settings(deadline=None)
@given(st.text(alphabet="ab:( )\n\t#", max_size=40))
def test_the_model_and_the_user_reach_the_same_column(prompt):
    """The model reads prompt[:keep] + lead (and writes `retype` again) and its first word after a space; the user sees the
    prompt, what is shown, and that space unless it is hidden: the word lands at the same column."""
    cursor = place(prompt)
    space = 1 if cursor.indent_first else 0
    model = (prompt[: cursor.keep] + cursor.lead + cursor.retype).rsplit("\n", 1)[-1].expandtabs(8)
    user = (prompt + cursor.shown).rsplit("\n", 1)[-1].expandtabs(8)
    assert len(model) + space == len(user) + (0 if cursor.hide_space else space)
    assert cursor.keep == len(prompt) or prompt[cursor.keep] == "\n"


def test_confidence_fit_separates_and_survives_a_round_trip():
    rng = np.random.default_rng(0)
    rows = [{name: float(rng.normal()) for name in FEATURES} for _ in range(400)]
    taken = [r["mean_logprob"] + 0.5 * r["valid"] > 0 for r in rows]
    fitted = Confidence.fit(rows, taken)
    scores = np.array([fitted.score(r) for r in rows])
    assert scores[np.array(taken)].mean() > 0.7 > 0.3 > scores[~np.array(taken)].mean()
    again = Confidence.from_dict(fitted.to_dict())
    assert again.weights == fitted.weights and again.bias == fitted.bias
    assert Confidence.from_dict({"features": ["other"], "weights": [1.0], "bias": 0}).weights == Confidence().weights


def test_a_long_specific_match_outweighs_a_short_generic_one():
    gate = Gate((0.3, -3.0, 0.0), (0.1, -4.8, 0.6))
    generic = Match(4, 1, np.array([7]), np.array([1]), words=1)  # `(n):` and a newline
    specific = Match(4, 1, np.array([7]), np.array([1]), words=4)  # `compute_checksum(`
    assert log_odds(specific, *gate.corpus) > log_odds(generic, *gate.corpus) + 1.5
    logp = np.log(np.full(10, 0.1))
    mixed, copied = mix(logp, [(generic, gate.corpus)])
    assert 0 < copied < 0.05 and np.isclose(np.exp(mixed).sum(), 1.0)


def test_an_old_two_number_gate_still_loads():
    gate = Gate.from_dict({"buffer": [0.3, -2.0], "corpus": [0.5, -4.0]})
    assert gate.buffer == (0.3, -2.0, 0.0) and gate.corpus == (0.5, -4.0, 0.0) and gate.project == Gate().project
    assert Gate.from_dict({"buffer": [0.3, -2.0, 0.1]}).corpus == Gate().corpus


def test_after_a_line_inside_a_block_the_model_writes_the_newline_and_its_indentation():
    cursor = place('def f(x):\n    """Say why."""\n')
    assert (cursor.keep, cursor.lead, cursor.retype, cursor.shown) == (len('def f(x):\n    """Say why."""'), "", "\n", "")
    assert place("import os\n").lead == "\n"  # at the margin a lone newline is how lines start there
