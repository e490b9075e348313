"""The corpus recipe's distilled definitions: what a prompt asks for, and nothing a benchmark tests."""

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus.definitions import definitions  # noqa: E402

SOURCE = '''
"""A module."""
import math
from typing import Iterable


def hypotenuse(a: float, b: float) -> float:
    """The long side."""
    return math.sqrt(a * a + b * b)


def long_one(xs: Iterable[int]) -> int:
    total = 0
    for x in xs:
        total += x
        total *= 2
        total -= 1
        total //= 3
        total += x
        total ^= 5
    return total


def is_prime(n):
    return n > 1


class Box:
    """Holds one thing."""

    def __init__(self, item: object) -> None:
        self.item = item

    def get(self) -> object:
        return self.item


class Outer:
    def helper(self):
        def is_prime(n):
            return True
        return is_prime


def stub(x):
    raise NotImplementedError
'''


def test_short_definitions_come_bare_with_their_imports():
    text = definitions(SOURCE, skip={"is_prime"})
    ast.parse(text)
    assert text.startswith("import math\nfrom typing import Iterable\n\n\ndef hypotenuse(a, b):\n    return math.sqrt(")
    assert "class Box:\n\n    def __init__(self, item):\n        self.item = item" in text
    assert '"""' not in text and "->" not in text and ": float" not in text


def test_long_bodies_stubs_and_benchmark_names_are_left_out():
    text = definitions(SOURCE, skip={"is_prime"})
    for absent in ("long_one", "is_prime", "Outer", "stub", "A module"):
        assert absent not in text
    assert "def long_one" in definitions(SOURCE.replace("        total ^= 5\n", ""), skip=set())


def test_a_file_with_nothing_to_keep_gives_nothing():
    assert definitions("import os\nx = 1\n", skip=set()) == ""
    assert definitions("def broken(:\n", skip=set()) == ""
