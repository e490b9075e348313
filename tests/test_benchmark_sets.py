"""The benchmarks' own answers are right: a reference that failed its test would make its bits/byte
measure nearness to a wrong body."""

from __future__ import annotations

import importlib.util

from conftest import CHECKOUT


def load_everyday():
    spec = importlib.util.spec_from_file_location("everyday_benchmark", CHECKOUT / "benchmarks" / "everyday.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_everyday_prompt_has_a_reference_body_that_passes_its_test():
    everyday = load_everyday()
    assert list(everyday.REFERENCES) == [prompt for prompt, _ in everyday.CASES]
    failing = [prompt for prompt, test in everyday.CASES if not everyday.passes(prompt + everyday.REFERENCES[prompt], test)]
    assert failing == []
    assert not everyday.passes("def square(x):\n    return x + x", "assert square(3) == 9")  # a wrong body fails
