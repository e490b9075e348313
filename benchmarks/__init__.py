"""Measurements of copilot-repl, run with `python -m benchmarks`; every figure is a median of repeats."""
