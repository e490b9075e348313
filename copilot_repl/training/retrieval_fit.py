"""What training leaves for retrieval: the training split to copy from, and the gate fitted to the
trained model on the validation split."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from copilot_repl import data
from copilot_repl.completion.scoring import bits_per_byte
from copilot_repl.model import GPT

GATE_POSITIONS = 16384  # validation tokens the retrieval gate is fitted on (a few seconds)
INDEX_MAX_TOKENS = 16_000_000  # completions copy from at most this much of the training split (32 MB saved)
GATE_FIT_STEPS = 150


@dataclass
class GateInputs:
    val: np.ndarray  # the validation tokens the gate is fitted on, after an end-of-text
    features: Any  # scoring.Features: what the two predictors offer at each of them
    fit_seconds: float  # what fitting will cost here, measured on one evaluation of the objective


def indexed_tokens(splits: data.TokenSplits) -> np.ndarray:
    """The training split once through (repeats of weighted sources would only be found twice), after
    a fine-tuning base's index where there is one (cut first where the two exceed INDEX_MAX_TOKENS)."""
    own = np.asarray(splits.train[: min(splits.unique_train, INDEX_MAX_TOKENS)])
    if splits.inherited is None:
        return own
    return np.concatenate([splits.inherited[: INDEX_MAX_TOKENS - len(own)], own])


def retrieval_features(splits: data.TokenSplits, tokenizer, progress: data.Progress = lambda done, total: None) -> GateInputs:
    """What the two predictors offer at each fitting position of the validation split. It does not
    depend on the model, so it is computed before training and counted in a --time budget. `progress`
    hears (per cent done, 100): the suffix array is the first half, the features the second."""
    from copilot_repl.completion.retrieval import CorpusIndex, Gate, word_table
    from copilot_repl.completion.scoring import Features, mixed_logprobs

    val = np.concatenate([[tokenizer.eot_id], np.asarray(splits.val[:GATE_POSITIONS], dtype=np.int64)])
    half = lambda offset: lambda done, total: progress(offset + 50 * done // max(total, 1), 100)  # noqa: E731
    index = CorpusIndex.build(indexed_tokens(splits), tokenizer.vocab_size, half(0))
    features = Features.compute(val, np.arange(1, len(val)), index, tokenizer.eot_id, word_table(tokenizer), None, half(50))
    progress(100, 100)
    began = time.perf_counter()
    mixed_logprobs(np.zeros(len(val) - 1), features, Gate())
    return GateInputs(val, features, (time.perf_counter() - began) * GATE_FIT_STEPS * 12)  # 12 evaluations a step


def fit_retrieval(
    model: GPT, splits: data.TokenSplits, inputs: GateInputs, start: dict | None = None, progress: data.Progress | None = None
) -> tuple[dict, bytes]:
    """The gate fitted to the trained model (for checkpoint.json), from a base's gate (`start`, as
    saved) where there is one, and the training tokens to index. `progress` hears (steps, steps in all)."""
    from copilot_repl.completion.retrieval import Gate
    from copilot_repl.completion.runtime_torch import TorchRuntime
    from copilot_repl.completion.scoring import fit_gate, mixed_logprobs, model_logprobs

    val, features = inputs.val, inputs.features
    model_lp = model_logprobs(TorchRuntime(model), val)  # on the training device: the same numbers as numpy's
    gate = fit_gate(model_lp, features, GATE_FIT_STEPS, Gate.from_dict(start) if start else None, progress)
    scale = splits.val_bytes * (len(val) - 1) / max(len(splits.val), 1)  # bytes behind the fitted tokens, roughly
    gate.fitted_on = {
        "split": "val",
        "positions": len(val) - 1,
        "bits_per_byte_model": round(bits_per_byte(model_lp.sum(), scale), 4),
        "bits_per_byte_mixed": round(bits_per_byte(mixed_logprobs(model_lp, features, gate).sum(), scale), 4),
    }
    buffer = io.BytesIO()
    np.save(buffer, indexed_tokens(splits))
    return gate.to_dict(), buffer.getvalue()
