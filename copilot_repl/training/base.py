"""The model a fine-tuning run starts from (`train --init-from`). It is found, opened and checked
against the flags before anything is written, so a bad base costs nothing; the run then keeps the
base's tokenizer and shape, starts from its weights, replays its training text (what its index holds)
in half the windows, and indexes the project's files after the base's text."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from copilot_repl import checkpoint, data
from copilot_repl.completion.engine import INDEX_DIR
from copilot_repl.completion.retrieval import TOKENS
from copilot_repl.errors import UsageError

if TYPE_CHECKING:
    from copilot_repl.training.recipe import TrainConfig

REPLAY_SHARE = 0.5  # of training windows drawn from the base's own text: a quarter forgot twice as much (docs/benchmarks.md)
REPLAY_PIECE = 2048  # tokens of the base's text per piece replayed: eight windows of the shipped model's


@dataclass
class Base:
    ref: str  # as the user named it
    opened: checkpoint.Opened
    fingerprint: str  # of its weights file: which version of a name that may be trained again

    @property
    def directory(self) -> Path:
        return self.opened.directory

    @property
    def tokenizer_dir(self) -> Path:
        return self.directory / checkpoint.TOKENIZER_DIR

    def shape(self) -> dict:
        """The flags the base fixes, as the base has them."""
        config = self.opened.config
        return {
            "tokenizer": self.opened.tokenizer.name,
            "vocab_size": self.opened.tokenizer.vocab_size,
            "block_size": config.block_size,
            "layers": config.n_layer,
            "heads": config.n_head,
            "dim": config.n_embd,
        }

    def record(self) -> dict:
        """What checkpoint.json says of the base: enough to find it again and to know it changed."""
        corpus = self.opened.meta.get("corpus", {})
        return {
            "name": self.ref,
            "path": str(self.directory.resolve()),
            "fingerprint": self.fingerprint,
            "corpus": {k: corpus[k] for k in ("spec", "fingerprint") if k in corpus},
            "val_bpb": self.opened.meta.get("metrics", {}).get("val_bpb"),
        }

    def index_tokens(self) -> np.ndarray | None:
        """The base's training text as its index holds it (each document once), or None without one."""
        path = self.directory / INDEX_DIR / TOKENS
        return np.load(path, mmap_mode="r", allow_pickle=False) if path.is_file() else None

    def with_replay(self, splits: data.TokenSplits, corpus_fingerprint: str, corpus_spec: Sequence[str] = ()) -> data.TokenSplits:
        """The project's splits with pieces of the base's text spread over its whole index appended to
        the training tokens (REPLAY_SHARE of them), and the base's index to be held by the new one,
        unless the project holds the base's own corpus (training it for longer, or on it and more):
        its own index then holds that text once already."""
        inherited = self.index_tokens()
        if inherited is None or len(inherited) < 2 * REPLAY_PIECE:
            return splits
        wanted = int(len(splits.train) * REPLAY_SHARE / (1 - REPLAY_SHARE))
        starts = np.linspace(0, len(inherited) - REPLAY_PIECE, max(1, wanted // REPLAY_PIECE)).astype(np.int64)
        replay = [np.asarray(inherited[s : s + REPLAY_PIECE], dtype=splits.train.dtype) for s in starts]
        train = np.concatenate([np.asarray(splits.train), *replay])
        corpus = self.opened.meta.get("corpus", {})
        base_spec = set(corpus.get("spec") or ())
        own_corpus = corpus_fingerprint == corpus.get("fingerprint") or bool(base_spec) and base_spec <= set(corpus_spec)
        return replace(splits, train=train, inherited=None if own_corpus else inherited, replayed=len(train) - len(splits.train))

    def on_base(self, config: TrainConfig) -> TrainConfig:
        """`config` with the base's tokenizer, context and shape; a flag that contradicts them is an error,
        but for more --layers than the base's (the model grows from it: see `starting.deepened`) and a longer
        --block-size (rotary positions have no weights: the same weights read a longer window, and learn to)."""
        shape = self.shape()
        for grows in ("layers", "block_size"):
            if getattr(config, grows) is not None and getattr(config, grows) > shape[grows]:
                shape[grows] = getattr(config, grows)
        for flag, value in shape.items():
            given = getattr(config, flag)
            if given is not None and given != value:
                word = flag.replace("_", "-")
                raise UsageError(
                    f"--{word} {given} contradicts the base {self.ref} ({word} {value}); "
                    "a fine-tuned model keeps its base's tokenizer and shape (it may only grow deeper or read further back): "
                    "leave the flag out"
                )
        batch_size = config.batch_size or self.opened.meta.get("train", {}).get("batch_size")
        fixed = {k: v for k, v in shape.items() if k != "vocab_size"}
        return replace(config, **fixed, batch_size=batch_size).filled(fine_tuning=True)


def weights_fingerprint(directory: Path) -> str:
    return hashlib.sha256((directory / checkpoint.WEIGHTS).read_bytes()).hexdigest()[:16]


def open_base(ref: str, paras: str | None) -> Base:
    """The base named by `ref` (NAME, folder or `default`), opened and checked; a CheckpointError says
    what is wrong with it (missing, unreadable, a tokenizer that cannot be loaded)."""
    opened = checkpoint.open_checkpoint(checkpoint.resolve(ref, paras))
    return Base(ref, opened, weights_fingerprint(opened.directory))
