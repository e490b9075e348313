"""Checkpoints averaged weight by weight (a model soup), saved as a new checkpoint.

Runs that go on from one another end in one basin of the loss, and the mean of their weights often
lies lower in it than either end (docs/benchmarks.md: the shipped model and its continuation, a
fine-tune and its base). Runs from different starts share no basin and average to noise, so the
command scores the sources and their mean on the same held-out text and says which is best; nothing
is judged from the weights alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from copilot_repl import checkpoint
from copilot_repl.checkpoint_write import exclusive, save, torch_model
from copilot_repl.completion.engine import INDEX_DIR
from copilot_repl.completion.retrieval import TOKENS
from copilot_repl.errors import UsageError
from copilot_repl.wording import plural

# what belongs to one run and not to a mean of several: its loss curve, figures, base and command
RUN_ONLY = ("format", "model", "tokenizer", "versions", "metrics", "history", "base", "continued_from", "made_by", "sizing")


@dataclass
class Source:
    ref: str  # as the user named it
    opened: checkpoint.Opened
    share: float  # of the mean, the shares summing to 1


def open_sources(refs: Sequence[str], shares: Sequence[float] | None, paras: str | None) -> list[Source]:
    """The models to average, opened and checked: one shape, one tokenizer (the window each read may
    differ: rotary positions are computed, so every weight has one shape whatever the window). A
    UsageError (or a CheckpointError for a model that cannot be read) says what does not fit, before
    anything is written."""
    if len(refs) < 2:
        raise UsageError("average needs two models or more")
    if shares is not None and len(shares) != len(refs):
        raise UsageError(f"--weights gives {plural(len(shares), 'share')} for {plural(len(refs), 'model')}")
    shares = shares or [1.0] * len(refs)
    opened = [checkpoint.open_checkpoint(checkpoint.resolve(ref, paras)) for ref in refs]
    first = opened[0]
    tokenizer = first.tokenizer.fingerprint(first.directory / checkpoint.TOKENIZER_DIR)
    for ref, other in zip(refs[1:], opened[1:]):
        if replace(other.config, block_size=first.config.block_size) != first.config:
            shapes = f"{_shape(other)} against {_shape(first)}"
            raise UsageError(f"{ref} and {refs[0]} differ in shape ({shapes}); only models of one shape average")
        if other.tokenizer.fingerprint(other.directory / checkpoint.TOKENIZER_DIR) != tokenizer:
            raise UsageError(f"{ref} and {refs[0]} have different tokenizers; only models of one tokenizer average")
    total = sum(shares)
    return [Source(ref, o, share / total) for ref, o, share in zip(refs, opened, shares)]


def mean_weights(sources: Sequence[Source]) -> dict[str, np.ndarray]:
    """Each weight's mean over the sources, in their shares (summed in float64, kept in float32)."""
    mean = {}
    for name in sources[0].opened.weights:
        total = np.zeros_like(sources[0].opened.weights[name], dtype=np.float64)
        for source in sources:
            total += source.share * np.asarray(source.opened.weights[name], dtype=np.float64)
        mean[name] = total.astype(np.float32)
    return mean


def save_average(sources: Sequence[Source], directory: Path, made_by: dict) -> Path:
    """The sources' mean saved at `directory` (atomically), with the first source's tokenizer, index,
    corpus record and fitted gate and confidence, and a record of what was averaged. It reads the
    shortest window any source was trained at: past that, some of its weights never saw a position."""
    first = sources[0].opened
    window = min(s.opened.config.block_size for s in sources)
    meta = {key: value for key, value in first.meta.items() if key not in RUN_ONLY}
    meta["averaged"] = [{"name": s.ref, "path": str(s.opened.directory.resolve()), "share": round(s.share, 6)} for s in sources]
    meta["made_by"] = made_by
    index = first.directory / INDEX_DIR / TOKENS
    model = torch_model(replace(first, config=replace(first.config, block_size=window), weights=mean_weights(sources)))
    files = {f"{INDEX_DIR}/{TOKENS}": index.read_bytes()} if index.is_file() else None
    with exclusive(directory):
        save(directory, model, first.tokenizer, meta, files=files)
    return directory


def _shape(opened: checkpoint.Opened) -> str:
    c = opened.config
    return f"{c.n_layer} layers x {c.n_embd}, {c.n_head} heads, context {c.block_size}, {c.vocab_size} ids"
