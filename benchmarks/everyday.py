"""Everyday definitions, typed as at the REPL, completed by the real runner, and tested.

Each prompt is the first line a person types (`def is_prime(n):`); the completion is the body the
runner writes at the default stop (the end of the block). Prompt and completion then run with a small
test in a separate Python process, with a timeout: model output runs here and nowhere in the product.
pass@1 is greedy; best-of-5 takes the runner's best of five samples (`n = 5`).
"""

from __future__ import annotations

import builtins
import subprocess
import symtable
import sys
import tempfile
from dataclasses import replace

import numpy as np

from copilot_repl.completion.settings import Sampling

CASES: list[tuple[str, str]] = [
    ("def is_prime(n):", "assert is_prime(7) and not is_prime(8) and not is_prime(1) and is_prime(2)"),
    ("def factorial(n):", "assert factorial(0) == 1 and factorial(5) == 120"),
    ("def fib(n):", "assert [fib(i) for i in range(7)] == [0, 1, 1, 2, 3, 5, 8]"),
    ("def reverse_string(s):", "assert reverse_string('abc') == 'cba'"),
    ("def is_palindrome(s):", "assert is_palindrome('racecar') and not is_palindrome('abc')"),
    ("def sum_of_digits(n):", "assert sum_of_digits(1234) == 10"),
    ("def count_vowels(s):", "assert count_vowels('hello world') == 3"),
    ("def gcd(a, b):", "assert gcd(12, 18) == 6 and gcd(7, 3) == 1"),
    ("def lcm(a, b):", "assert lcm(4, 6) == 12"),
    ("def is_even(n):", "assert is_even(4) and not is_even(3)"),
    ("def square(x):", "assert square(3) == 9"),
    ("def add(a, b):", "assert add(2, 3) == 5"),
    ("def maximum(numbers):", "assert maximum([3, 9, 2]) == 9"),
    ("def average(numbers):", "assert average([1, 2, 3]) == 2"),
    ("def flatten(lists):", "assert flatten([[1, 2], [3]]) == [1, 2, 3]"),
    ("def unique(items):", "assert sorted(unique([1, 2, 2, 3])) == [1, 2, 3]"),
    ("def count_words(text):", "assert count_words('a b  c') == 3"),
    ("def word_count(text):", "assert word_count('to be or not to be')['be'] == 2"),
    ("def capitalize_words(s):", "assert capitalize_words('hello world') == 'Hello World'"),
    ("def celsius_to_fahrenheit(c):", "assert celsius_to_fahrenheit(100) == 212"),
    ("def fahrenheit_to_celsius(f):", "assert fahrenheit_to_celsius(212) == 100"),
    ("def power(base, exp):", "assert power(2, 10) == 1024"),
    ("def is_leap_year(year):", "assert is_leap_year(2000) and is_leap_year(2024) and not is_leap_year(1900)"),
    ("def binary_search(items, target):", "assert binary_search([1, 3, 5, 7], 5) == 2"),
    ("def bubble_sort(items):", "assert bubble_sort([3, 1, 2]) == [1, 2, 3]"),
    ("def merge_dicts(a, b):", "assert merge_dicts({'x': 1}, {'y': 2}) == {'x': 1, 'y': 2}"),
    ("def chunks(items, size):", "assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]"),
    ("def read_lines(path):", "open('f', 'w').write('a\\nb\\n')\nassert [x.strip() for x in read_lines('f')] == ['a', 'b']"),
    ("def first(items):", "assert first([4, 5]) == 4"),
    ("def last(items):", "assert last([4, 5]) == 5"),
    ("def clamp(x, low, high):", "assert clamp(5, 0, 3) == 3 and clamp(-1, 0, 3) == 0 and clamp(2, 0, 3) == 2"),
    ("def abs_value(x):", "assert abs_value(-3) == 3 and abs_value(2) == 2"),
    ("def is_empty(items):", "assert is_empty([]) and not is_empty([1])"),
    ("def contains(items, x):", "assert contains([1, 2], 2) and not contains([1, 2], 3)"),
    ("def to_upper(s):", "assert to_upper('ab') == 'AB'"),
    ("def join_words(words):", "assert join_words(['a', 'b']) == 'a b'"),
    ("def get_extension(filename):", "assert get_extension('a.txt') in ('txt', '.txt')"),
    ("class Stack:", "s = Stack()\ns.push(1)\ns.push(2)\nassert s.pop() == 2 and s.pop() == 1"),
    ("class Counter:", "c = Counter()\nc.increment()\nc.increment()\nassert c.count == 2"),
    ("class Point:", "p = Point(1, 2)\nassert (p.x, p.y) == (1, 2)"),
    ("def distance(x1, y1, x2, y2):", "assert distance(0, 0, 3, 4) == 5"),
    ("def remove_duplicates(items):", "assert remove_duplicates([1, 1, 2]) == [1, 2]"),
]


# A right body for each prompt, written here, short and plain (each passes its test: see the tests).
# Scored, not run: how many bits the model spends on them (`reference_bits_per_byte`).
REFERENCES: dict[str, str] = {
    "def is_prime(n):": """
    if n < 2:
        return False
    for i in range(2, int(n**0.5) + 1):
        if n % i == 0:
            return False
    return True""",
    "def factorial(n):": """
    result = 1
    for i in range(2, n + 1):
        result *= i
    return result""",
    "def fib(n):": """
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a""",
    "def reverse_string(s):": """
    return s[::-1]""",
    "def is_palindrome(s):": """
    return s == s[::-1]""",
    "def sum_of_digits(n):": """
    return sum(int(d) for d in str(n))""",
    "def count_vowels(s):": """
    return sum(1 for c in s.lower() if c in "aeiou")""",
    "def gcd(a, b):": """
    while b:
        a, b = b, a % b
    return a""",
    "def lcm(a, b):": """
    x, y = a, b
    while y:
        x, y = y, x % y
    return a * b // x""",
    "def is_even(n):": """
    return n % 2 == 0""",
    "def square(x):": """
    return x * x""",
    "def add(a, b):": """
    return a + b""",
    "def maximum(numbers):": """
    return max(numbers)""",
    "def average(numbers):": """
    return sum(numbers) / len(numbers)""",
    "def flatten(lists):": """
    return [item for sublist in lists for item in sublist]""",
    "def unique(items):": """
    return list(set(items))""",
    "def count_words(text):": """
    return len(text.split())""",
    "def word_count(text):": """
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts""",
    "def capitalize_words(s):": """
    return " ".join(word.capitalize() for word in s.split())""",
    "def celsius_to_fahrenheit(c):": """
    return c * 9 / 5 + 32""",
    "def fahrenheit_to_celsius(f):": """
    return (f - 32) * 5 / 9""",
    "def power(base, exp):": """
    return base**exp""",
    "def is_leap_year(year):": """
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)""",
    "def binary_search(items, target):": """
    low, high = 0, len(items) - 1
    while low <= high:
        mid = (low + high) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1""",
    "def bubble_sort(items):": """
    n = len(items)
    for i in range(n):
        for j in range(n - i - 1):
            if items[j] > items[j + 1]:
                items[j], items[j + 1] = items[j + 1], items[j]
    return items""",
    "def merge_dicts(a, b):": """
    return {**a, **b}""",
    "def chunks(items, size):": """
    for i in range(0, len(items), size):
        yield items[i : i + size]""",
    "def read_lines(path):": """
    with open(path) as f:
        return f.readlines()""",
    "def first(items):": """
    return items[0]""",
    "def last(items):": """
    return items[-1]""",
    "def clamp(x, low, high):": """
    return max(low, min(x, high))""",
    "def abs_value(x):": """
    return x if x >= 0 else -x""",
    "def is_empty(items):": """
    return len(items) == 0""",
    "def contains(items, x):": """
    return x in items""",
    "def to_upper(s):": """
    return s.upper()""",
    "def join_words(words):": """
    return " ".join(words)""",
    "def get_extension(filename):": """
    return filename.rsplit(".", 1)[-1]""",
    "class Stack:": """
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()""",
    "class Counter:": """
    def __init__(self):
        self.count = 0

    def increment(self):
        self.count += 1""",
    "class Point:": """
    def __init__(self, x, y):
        self.x = x
        self.y = y""",
    "def distance(x1, y1, x2, y2):": """
    return ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5""",
    "def remove_duplicates(items):": """
    return list(dict.fromkeys(items))""",
}


def passes(source: str, test: str, timeout: float = 5.0) -> bool:
    """Run the definition and its test in a fresh interpreter, isolated (-I), in an empty folder."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", source + "\n" + test], cwd=folder, capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def unbound_names(source: str) -> set[str]:
    """The names `source` reads that it binds nowhere and no builtin has (read by symtable: nothing runs).
    A completion that reads one fails when it runs, and is often a copy from unrelated code."""
    try:
        top = symtable.symtable(source, "<completion>", "exec")
    except SyntaxError:
        return set()
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    found: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (table is top or symbol.is_global()) and symbol.get_name() not in bound:
                found.add(symbol.get_name())
    return found - set(dir(builtins))


def reference_bits_per_byte(engine) -> float:
    """Bits per byte the model alone spends on REFERENCES' bodies after their prompts, each read from
    the start of a file. Pass counts move in steps of one definition in 42, and at this model's size
    hardly move at all; this moves with every change in how near the model is to a right body."""
    from copilot_repl.completion.scoring import bits_per_byte, model_logprobs

    tokenizer, nats, scored = engine.tokenizer, 0.0, 0
    for prompt, body in REFERENCES.items():
        text = prompt + body + "\n"
        ids = tokenizer.encode(text)
        # the prompt's tokens, as far as they stop short of the body (the last may run into it)
        head = next(k for k in range(len(ids), -1, -1) if prompt.startswith(tokenizer.decode(ids[:k])))
        logprobs = model_logprobs(engine.runtime, np.asarray([tokenizer.eot_id, *ids]))
        nats += float(logprobs[head:].sum())
        scored += len(text.encode()) - len(tokenizer.decode(ids[:head]).encode())
    return bits_per_byte(nats, scored)


SAMPLED_SEEDS = range(100, 110)  # each prompt answered once per seed at the default settings


def everyday(model: str | None = None, samples: int = 5, seeds: range = SAMPLED_SEEDS) -> dict:
    """Greedy and best-of-n answers, as a person at the REPL gets them, and the same prompts sampled at
    the default settings once per seed: at this model's size a pass or an unbound name is rare, and
    counting one answer per prompt turned two runs' difference of one definition into a verdict."""
    from copilot_repl.completion.session import Session

    session = Session(model_ref=model, chat=False)
    session.model()
    greedy = Sampling(temperature=0, max_tokens=128)
    sampled = replace(Sampling(max_tokens=128), n=samples, seed=1)
    passed = best = valid = unbound = 0
    for prompt, test in CASES:
        session.layers["set"] = greedy.__dict__
        text = session.submit(prompt, shown_anyway=True).finish().text
        passed += passes(prompt + text, test)
        valid += passes(prompt + text, "")
        session.layers["set"] = sampled.__dict__
        chosen = session.submit(prompt, shown_anyway=True).finish().text
        best += passes(prompt + chosen, test)
        unbound += bool(unbound_names(prompt + text)) + bool(unbound_names(prompt + chosen))
    sampled_pass = sampled_unbound = 0
    for seed in seeds:
        session.layers["set"] = replace(Sampling(max_tokens=128), seed=seed).__dict__
        for prompt, test in CASES:
            text = session.submit(prompt, shown_anyway=True).finish().text
            sampled_pass += passes(prompt + text, test)
            sampled_unbound += bool(unbound_names(prompt + text))
    n = len(CASES)
    return {
        "definitions": n,
        "pass_at_1_greedy": passed / n,
        f"best_of_{samples}": best / n,
        "runs_greedy": valid / n,
        "read_unbound_names": unbound / (2 * n),  # of the greedy and the best-of-n answers
        "sampled_pass": sampled_pass / (n * len(seeds)),
        "sampled_unbound_names": sampled_unbound / (n * len(seeds)),
        "reference_bits_per_byte": reference_bits_per_byte(session.engine),
    }
