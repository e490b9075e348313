"""What a training run starts from: its data (corpus, tokenizer, token cache), its shape, and its
weights: new, a base's (`--init-from`), or its own saved ones (`--resume`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from copilot_repl import checkpoint, checkpoint_write, data
from copilot_repl.errors import CheckpointError, CorpusError
from copilot_repl.model import GPT, Block
from copilot_repl.tokenizer import tokenizer_class
from copilot_repl.training import distributed, sizing
from copilot_repl.training.base import Base, open_base
from copilot_repl.training.loop import probe_speed
from copilot_repl.training.recipe import SHAPE_FIELDS, TrainConfig, make_optimizers


# -- data ---------------------------------------------------------------------------------------------
def prepare_data(config: TrainConfig, world: distributed.World, emit: Callable[..., Any], base: Base | None = None):
    """Corpus, tokenizer and token cache. Rank 0 trains the tokenizer (or takes the base's) and fills
    the cache; the rest reuse them."""
    emit("status", message=f"reading corpus {' '.join(config.corpus)}")
    if not world.is_main:
        distributed.barrier(world)
    corpus = data.gather(config.corpus, lambda files, chars: emit("read", done=files, total=None, chars=chars))
    emit("read", done=len(corpus.sizes), total=len(corpus.sizes), chars=corpus.split_bytes("train") + corpus.split_bytes("val"))
    assert config.tokenizer and config.block_size, "fill the config first"
    if base is None:
        learned = lambda done, total: emit("tokenizer", done=done, total=total, name=config.tokenizer)  # noqa: E731
        tokenizer, tok_dir = data.cached_tokenizer(corpus, tokenizer_class(config.tokenizer), config.vocab_size, learned)
    else:
        tokenizer, tok_dir = base.opened.tokenizer, base.tokenizer_dir
    encoded = lambda done, total: emit("encode", done=done, total=total)  # noqa: E731
    splits = data.token_cache(corpus, tokenizer, tokenizer.fingerprint(tok_dir), encoded)
    if world.is_main:
        distributed.barrier(world)
    if base is not None:
        splits = base.with_replay(splits, corpus.fingerprint, corpus.spec)
    if len(splits.train) < config.block_size + 2:
        raise CorpusError(f"corpus too small: {len(splits.train)} training tokens for --block-size {config.block_size}")
    return corpus, tokenizer, splits


def shaped(
    config: TrainConfig, tokenizer, splits, device: str, world, spent: Callable[[], float], emit
) -> tuple[TrainConfig, dict]:
    """The config with every shape field filled: what the user gave, else with --time the shape
    sizing.py chooses from this machine's measured speed (and its record), else sizing.DEFAULT."""
    if any(getattr(config, f) is not None for f in SHAPE_FIELDS) or not config.time:
        return config.sized(sizing.DEFAULT), {}
    emit("status", message="measuring this machine's training speed to size the model for --time")
    probe = lambda shape: probe_speed(config.sized(shape), tokenizer, splits, device)  # noqa: E731
    budget = config.time
    agree = lambda index: int(distributed.agree_max(world, index))  # noqa: E731
    shape, record = sizing.choose(lambda: 0.9 * (budget - spent()), probe, agree)  # a tenth: indexing, final evaluation
    emit("status", message=f"model shape {shape.name}: {record['reason']}")
    return config.sized(shape), record


def build_model(config: TrainConfig, vocab_size: int, device: str, out_dir: Path, state: dict | None, base: Base | None):
    """The model (new, the base's weights, or the saved one when resuming), its optimizers, and the
    step and history to go on from."""
    torch.manual_seed(config.seed)  # the same initial weights on every rank, probed or not
    if state is not None:
        model = checkpoint_write.load(out_dir).model
    else:
        model = GPT(config.model_config(vocab_size)) if base is None else base_model(base, config.block_size)
        model = deepened(model, config.layers)
    model.to(device).train()
    optimizers = make_optimizers(model, config, device)
    if state is None:
        return model, optimizers, 0, []
    saved_states = state["optimizer"] if isinstance(state["optimizer"], list) else [state["optimizer"]]
    for optimizer, saved_state in zip(optimizers, saved_states):
        optimizer.load_state_dict(saved_state)
    return model, optimizers, int(state["step"]), checkpoint.read_meta(out_dir).get("history", [])


def base_model(base: Base, block_size: int | None) -> GPT:
    """The base's weights, reading a window of `block_size`: rotary positions are computed, not learnt,
    so a longer window needs no new weights, only training to use what lies further back."""
    opened = base.opened
    if block_size and block_size != opened.config.block_size:
        opened = replace(opened, config=replace(opened.config, block_size=block_size))
    return checkpoint_write.torch_model(opened)


def deepened(model: GPT, layers: int | None) -> GPT:
    """`model` with `layers` blocks, computing the same function: each block is followed by copies of
    itself whose outputs (the projections back into the residual stream) start at zero, as a new
    model's blocks do. The copies start as the identity but learn at once, their inputs already
    trained: a session's compute goes into a bigger model without losing what the base learnt."""
    old = len(model.blocks)
    if layers is None or layers == old:
        return model
    grown = GPT(replace(model.config, n_layer=layers))
    grown.wte.weight.data.copy_(model.wte.weight.data)
    for i, block in enumerate(grown.blocks):
        assert isinstance(block, Block)
        source = model.blocks[i * old // layers]
        block.load_state_dict(source.state_dict())
        if i and i * old // layers == (i - 1) * old // layers:  # a copy: it adds nothing until trained
            for projection in (block.attn.c_proj, block.mlp.c_proj):
                torch.nn.init.zeros_(projection.weight)
    return grown


def resumed(config: TrainConfig, out_dir: Path) -> tuple[TrainConfig, dict, Base | None]:
    """The config to go on with (the saved run's shape, data and rates), the saved optimizer state,
    and the base a fine-tuned model was started from (its tokenizer, replay text and index)."""
    if not (out_dir / checkpoint.META).is_file():
        raise CheckpointError(f"nothing to resume: {out_dir} is not a checkpoint")
    state = checkpoint_write.load_optimizer_state(out_dir)
    if state is None:
        raise CheckpointError(f"{out_dir} has no optimizer state to resume from")
    meta = checkpoint.read_meta(out_dir)
    saved, base = meta["train"], None
    keys = ("corpus", "tokenizer", "vocab_size", "block_size", "optimizer", "lr", "muon_lr", *SHAPE_FIELDS)
    if "base" in meta:
        base = open_base(meta["base"]["path"], config.paras)
        if base.fingerprint != meta["base"]["fingerprint"]:
            raise CheckpointError(f"the base of {out_dir} ({meta['base']['path']}) has changed since; train a new model from it")
    return replace(config, **{k: saved.get(k, getattr(config, k)) for k in keys}), state, base
