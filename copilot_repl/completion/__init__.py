"""The completing side: from a checkpoint to completions. Nothing here imports torch on a CPU (the torch
runtime is imported only for a GPU device); tests/test_layout.py holds it."""
