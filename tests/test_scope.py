"""Which names a copy may bring (scope.py): a name read where the code around it has none is a stranger."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot_repl.completion.retrieval import Match
from copilot_repl.completion.scope import Scope, in_scope, strangers_less_likely


def stranger(source: str, completion: str, piece: str) -> bool:
    place = Scope(source).at(completion)
    return place is not None and place.stranger(piece)


def test_a_name_neither_the_code_nor_the_completion_has_is_a_stranger_where_it_is_read():
    assert stranger("def is_even(n):", "\n    if not n", "x")  # `nx`, from networkx
    assert stranger("def is_even(n):", "\n    if not nx.is_connected(", "G):")
    assert stranger("def factorial(n):", "\n    if len(s", ")")  # `s` ends there: a stranger after all
    assert stranger("def f(n):", "\n   ", " main(")  # a call at a line's start reads its name
    assert stranger("def f(n):", "\n    left = ", "left")  # a target is not bound before its line ends


def test_names_the_code_has_builtins_and_bound_names_are_not():
    assert not stranger("def is_even(n):", "\n    if not", " n")
    assert not stranger("def is_even(n):", "\n    return", " isinstance(")
    assert not stranger("def f(n):", "\n   ", " total")  # a line's start may bind it
    assert not stranger("def f(n):", "\n    total = 0\n    return", " total")  # the completion bound it
    assert not stranger("def f(n):", "\n    for", " i")
    assert not stranger("def f(n):", "\n    return [x for x in n if", " x")  # bound by `for` on the line
    assert not stranger("import numpy", " as", " np")
    assert not stranger("def f(n):", "\n    return n.", "keys")  # an attribute: no scope lists it
    assert not stranger("def f(n):", "\n    return s", "orted(")  # becoming a builtin


def test_inside_a_comment_or_a_string_any_word_goes():
    assert not stranger("def f(n):", '\n    raise ValueError("', "perfect_cube")
    assert not stranger("def f(n):", "\n    # see", " networkx")
    assert not stranger('def f(n):\n    """', "Return the", " graph")


def test_a_name_bound_after_the_cursor_is_known():
    assert not Scope("def f(n):\n    return ", after="\n\ndef helper(x):\n    pass\n").at("").stranger("helper(")


def test_a_name_of_the_users_own_indexed_code_is_theirs():
    assert Scope("names = f(").at("").stranger("widgets)")
    assert not Scope("names = f(", project=("items", "widgets")).at("").stranger("widgets)")
    assert not Scope("names = f(", project=("items", "widgets")).at("").stranger("widg")


def test_a_name_the_user_began_is_theirs():
    assert not stranger("x = compute_chec", "", "ksum")


PIECES = [" n", " nx", " isinstance"]
PLACE = Scope("def is_even(n):").at("\n    if not")


def test_a_copy_keeps_only_followers_in_scope():
    match = Match(5, 30, np.array([0, 1, 2]), np.array([10, 10, 10]), 3)
    kept = in_scope(match, PLACE, PIECES)
    assert kept is not None and kept.ids.tolist() == [0, 2] and kept.count == 20
    assert in_scope(Match(5, 3, np.array([1]), np.array([3]), 3), PLACE, PIECES) is None


def test_the_model_is_pushed_off_a_stranger_not_barred():
    logp = np.log(np.array([0.2, 0.7, 0.1]))
    lowered = strangers_less_likely(logp, PLACE, PIECES, 2.0)
    assert np.isclose(np.exp(lowered).sum(), 1) and lowered[1] < logp[1] and np.isfinite(lowered[1])
    assert np.argmax(lowered) == 0
    assert strangers_less_likely(logp, PLACE, PIECES, 0.0) is logp


@settings(deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=8))
def test_any_text_is_read_without_error(source, completion, piece):
    place = Scope(source).at(completion)
    assert place is None or place.stranger(piece) in (True, False)


def test_a_copy_may_not_turn_the_users_word_into_a_name_the_code_lacks():
    """`at` leaves the word the user began to the model; the copies' place reads it as the completion's."""
    scope = Scope("def is_even(n):\n    if not n")
    assert scope.at("") is None
    for place in (scope.within_word(""), scope.before(" n")):
        assert place is not None
    assert scope.within_word("").stranger("x") and not scope.within_word("").stranger(":")
    assert scope.before(" n").stranger(" nx") and not scope.before(" n").stranger(" n")
    assert scope.within_word("x.y") is None and scope.before("zz") is None
