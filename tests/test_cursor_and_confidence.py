"""Pure pieces behind suggestions: where the cursor is, the confidence fit, the gate's word feature."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot_repl.completion.confidence import FEATURES, IDLE, TERMS, Confidence, confident_part
from copilot_repl.completion.cursor import Cursor, place
from copilot_repl.completion.generate import _margin
from copilot_repl.completion.judging import already_there
from copilot_repl.completion.result import inside_word, known_name_rest, text_features
from copilot_repl.completion.retrieval import Gate, Match, log_odds, mix
from copilot_repl.completion.settings import CUT_BELOW, Sampling, apply
from copilot_repl.errors import UsageError


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


def test_after_a_space_inside_a_line_the_model_reads_it_with_the_next_word():
    assert place("x = ") == Cursor(3, retype=" ") and place("return  ") == Cursor(6, retype="  ")
    assert place("def f(): ").body  # a header still opens its body


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
    assert cursor.keep == len(prompt) or prompt[cursor.keep] == "\n" or prompt[cursor.keep :] == cursor.retype


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


def test_confidence_learns_a_signal_that_means_opposite_things_in_two_places():
    """A sure first token is a good sign mid-word and (here, by construction) a bad one at a line's start:
    no sum of single features can say that, the product of the two can."""
    rng = np.random.default_rng(1)
    rows = [{"first_logprob": float(rng.normal()), "mid_word": float(rng.integers(2))} for _ in range(600)]
    taken = np.array([(r["first_logprob"] > 0) == bool(r["mid_word"]) for r in rows])
    fitted = Confidence.fit(rows, list(taken))
    scores = np.array([fitted.score(r) for r in rows])
    assert scores[taken].mean() > 0.65 > 0.35 > scores[~taken].mean()


def test_a_name_the_file_already_has_is_known_and_a_new_one_is_not():
    prompt = "def area(radius):\n    return 3.14 * ra"
    known = text_features(prompt, "dius * radius")
    assert known["known_word"] == 1.0 and known["mid_word"] == 1.0
    assert known["chunks"] == math.log1p(2)  # `dius` and ` * radius`: two Alt-F words
    new = text_features(prompt, "nge(10)")
    assert new["known_word"] == 0.0
    assert known["only_known_start"] == 1.0  # `radius` is the file's one name that starts `ra`
    two = text_features("def area(radius, range_):\n    return 3.14 * ra", "dius * radius")
    assert two["known_word"] == 1.0 and two["only_known_start"] == 0.0
    at_margin = text_features("import os\n", "import sys")
    assert at_margin["line_start"] == 1.0 and at_margin["mid_word"] == 0.0 and at_margin["known_word"] == 1.0
    assert text_features("imports = 1\n", "import")["known_word"] == 0.0  # a whole name, not a part of one
    assert text_features("x = ", "")["known_word"] == 0.0


def test_the_one_name_begun_at_the_cursor_is_finished_only_when_the_code_says_which():
    code = "def compute_checksum_of_payload(data):\n    return sum(data)\n\n"
    assert known_name_rest(code + "result = compute_chec") == "ksum_of_payload"
    assert known_name_rest(code + "result = com") == "pute_checksum_of_payload"
    assert known_name_rest(code + "result = co") == ""  # two letters begin too many new names
    assert known_name_rest(code + "compute_checksum = 1\nx = compute_chec") == "ksum"  # what both go on with
    assert known_name_rest(code + "compute_chart = 1\nx = compute_ch") == ""  # they share nothing past it
    assert known_name_rest("totax = totay = 0\ntot") == ""  # one character shared: not worth a key
    assert known_name_rest(code + "compute = 1\nx = compute") == ""  # the word is a whole name already
    assert known_name_rest(code + "x = compute_chec", after="ksum(y)") == ""  # the cursor is inside a word
    assert known_name_rest(code + "x = compute_chec", after=")\n") == "ksum_of_payload"
    assert known_name_rest("frobnicate_widgets = 1\nx = ") == ""  # no word is being typed
    assert known_name_rest("x = 1\ny = 123", after="") == ""
    assert known_name_rest("def f():\n    return total_count\n\nprint(tot", after=")") == "al_count"
    project = ("frobnicate_widgets", "frobulate", "zeta_function")  # sorted, as --index gives them
    assert known_name_rest("x = zeta", project=project) == "_function"  # the code has none: the project's one
    assert known_name_rest("x = frob", project=project) == ""  # two, that share nothing past the word
    assert known_name_rest("x = frob", project=("frobnicate_gadgets", "frobnicate_widgets")) == "nicate_"
    assert known_name_rest("frobz = 1\nx = frob", project=project) == "z"  # the code's own come first
    assert known_name_rest("x = zeta", project=("zeta", "zeta_function")) == ""


def test_what_the_line_after_an_editors_cursor_holds_already_is_not_suggested_again():
    assert already_there("x)", ")\n") == 1  # before the `)` the editor closed by itself
    assert already_there("f(x))", ")") == 1  # `f(x)` is shown, and the line reads `f(x))`
    assert already_there('data, "rb"):', "):\n    pass\n") == 2
    assert already_there("ksum_of_payload(data)", "(x)\n") == 0  # only what ends the suggestion
    assert already_there("abc", "\nabc") == 0  # only the cursor's own line
    assert already_there("x", "") == 0
    assert inside_word("x = compu", "te(y)") and not inside_word("x = compu", "(y)") and not inside_word("x = ", "y")


@settings(deadline=None)
@given(st.text("ab)]: ", max_size=8), st.text("ab)]: \n", max_size=8))
def test_the_part_already_there_is_the_longest_end_of_the_suggestion_that_starts_the_line(text, after):
    line, k = after.split("\n", 1)[0], already_there(text, after)
    assert text[len(text) - k :] == line[:k]
    assert not any(text.endswith(line[:longer]) for longer in range(k + 1, min(len(text), len(line)) + 1))


def typed_after_names(draw) -> tuple[str, str]:
    """(prompt, suggestion): a few names, a separator, then either the start of one of those names and
    its rest (finishing a name the file has) or any text."""
    names = draw(st.lists(st.text("ab_", min_size=1, max_size=4), min_size=1, max_size=4))
    separator = draw(st.sampled_from(["\n", "\n    ", " = ", "("]))
    if draw(st.booleans()):
        name = draw(st.sampled_from(names))
        cut = draw(st.integers(0, len(name) - 1))
        head, text = name[:cut], name[cut:] + draw(st.text(" =(\n", max_size=3))
    else:
        head, text = draw(st.text("ab_", max_size=3)), draw(st.text("ab_ =(\n", max_size=8))
    return " ".join(names) + separator + head, text


@settings(deadline=None)
@given(st.composite(typed_after_names)())
def test_the_products_left_out_of_the_confidence_could_only_ever_be_zero_or_a_copy(typed):
    """IDLE leaves out the products of places that exclude or imply each other: if the features ever
    stopped doing so, the product would say something new and belong back in TERMS."""
    features = text_features(*typed)
    assert not (features["mid_word"] and features["line_start"])
    assert not (features["line_start"] and features["only_known_start"])
    if features["only_known_start"]:
        assert features["mid_word"] and features["known_word"]


@settings(deadline=None)
@given(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True), min_size=1, max_size=5), st.data())
def test_a_known_name_shown_is_what_every_name_of_the_code_begun_so_goes_on_with(names, data):
    head = data.draw(st.text("abcdefgh_", min_size=0, max_size=5))
    typed = " ".join(names) + "\n" + head
    rest = known_name_rest(typed)
    begun = {n for n in names if n.startswith(head) and n != head}
    shared = os.path.commonprefix(sorted(begun))[len(head) :] if begun else ""
    if len(head) < 3 or head in names or not begun:
        assert rest == ""
    else:
        assert rest == (shared if len(begun) == 1 or len(shared) >= 2 else "")
        assert all(n.startswith(head + rest) for n in begun)


def test_no_left_out_product_is_among_the_terms():
    assert not any(frozenset(term.split("*")) in IDLE for term in TERMS)


def test_the_margin_is_the_lead_over_the_next_best_token():
    logp = np.log(np.array([0.5, 0.3, 0.2]))
    assert math.isclose(_margin(logp, 0), math.log(0.5 / 0.3))
    assert math.isclose(_margin(logp, 2), math.log(0.2 / 0.5))


def test_a_confident_suggestion_is_cut_where_it_becomes_a_guess_and_a_doubtful_one_is_withheld():
    steps = [(3, -0.1), (8, -0.4), (12, -1.0)]  # the whole of it: 0.9, then 0.61, then 0.22
    assert 0.61 > CUT_BELOW > 0.22
    assert confident_part("abc defg hij", steps, confidence=0.5, min_confidence=0.2) == "abc defg"
    assert confident_part("abc defg hij", steps, confidence=0.1, min_confidence=0.2) == ""
    assert confident_part("abc defg hij", steps, confidence=0.1, min_confidence=0.0) == "abc defg"
    # a block's many tokens are never all at even odds: it is cut only where it becomes a long shot
    assert confident_part("abc defg hij", steps, confidence=0.5, min_confidence=0.2, one_line=False) == "abc defg hij"


def test_cut_below_moves_where_a_one_line_suggestion_ends():
    """The floor decides most of what is shown: higher shows less (and less of it wrong), lower more."""
    steps = [(3, -0.1), (8, -0.4), (12, -1.0)]  # the whole of it: 0.9, then 0.61, then 0.22
    cut = [confident_part("abc defg hij", steps, 0.5, 0.2, cut_below=floor) for floor in (0.95, 0.7, 0.5, 0.1)]
    assert cut == ["", "abc", "abc defg", "abc defg hij"]
    assert apply(Sampling(), "cut_below", "0.5").cut_below == 0.5 and Sampling().cut_below == CUT_BELOW
    with pytest.raises(UsageError, match="cut_below"):
        apply(Sampling(), "cut_below", "2")


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
