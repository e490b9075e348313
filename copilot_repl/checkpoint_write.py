"""Checkpoints written (atomically, beside the old one, which survives any crash) and checkpoints as
torch models, for training on, evaluating and running on a GPU. Reading for completing is
checkpoint.py, with numpy only; this module imports torch only inside the functions that need it."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from copilot_repl import __version__
from copilot_repl.checkpoint import FORMAT, META, OPTIMIZER, TOKENIZER_DIR, WEIGHTS, Opened, open_checkpoint
from copilot_repl.errors import CheckpointError
from copilot_repl.tokenizer import Tokenizer

if TYPE_CHECKING:
    from copilot_repl.model import GPT


@contextlib.contextmanager
def exclusive(directory: Path):
    """Hold a lock beside `directory` while writing to it: two trainings into one name would mix."""
    import fcntl

    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(f".{directory.name}.lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(f"{directory} is being trained by another process; wait, or use another --name") from None
        for stale in directory.parent.glob(f".{directory.name}.tmp-*"):  # left by a killed writer
            shutil.rmtree(stale, ignore_errors=True)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def versions() -> dict:
    import torch

    return {"copilot_repl": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save(
    directory: Path,
    model: GPT,
    tokenizer: Tokenizer,
    meta: dict,
    optimizer_state: dict | None = None,
    files: dict[str, bytes] | None = None,
) -> None:
    """Write a complete checkpoint beside `directory`, then swap it in; the old one survives any crash.
    `files` are extra artefacts (the loss curve, the retrieval index) that belong with these weights;
    a name with a slash goes to a subfolder."""
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp's private mode would otherwise stick to the checkpoint
    old = directory.with_name(f".{directory.name}.old")
    try:
        raw = getattr(model, "_orig_mod", model)  # never save torch.compile's wrapper names
        save_file({k: v.detach().contiguous().cpu() for k, v in raw.state_dict().items()}, tmp / WEIGHTS)
        (tmp / TOKENIZER_DIR).mkdir()
        tokenizer.save(tmp / TOKENIZER_DIR)
        full = {"format": FORMAT, "model": raw.config.to_dict(), **meta, "versions": versions()}
        full["tokenizer"] = {"name": tokenizer.name, "version": tokenizer.version, "vocab_size": tokenizer.vocab_size}
        (tmp / META).write_text(json.dumps(full, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if optimizer_state is not None:
            torch.save(optimizer_state, tmp / OPTIMIZER)
        for name, content in (files or {}).items():
            target = tmp / Path(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        for path in tmp.rglob("*"):
            if path.is_file():
                path.chmod(0o644)
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise CheckpointError(f"could not save checkpoint {directory}: {e.strerror or e}; the previous one is intact") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Loaded:
    directory: Path
    model: GPT
    tokenizer: Tokenizer
    meta: dict


def torch_model(opened: Opened, device: str = "cpu") -> GPT:
    """The opened weights as the torch model, in eval mode on `device`: the opened arrays become its
    parameters (shared, not copied over a random initialisation)."""
    import torch

    from copilot_repl.model import GPT

    model = GPT.without_weights(opened.config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in opened.weights.items()}, strict=True, assign=True)
    return model.to(device).eval()


def load(directory: Path, device: str = "cpu") -> Loaded:
    """The checkpoint as a torch model, for training on from it, evaluating it or running it on a GPU."""
    opened = open_checkpoint(directory)
    return Loaded(opened.directory, torch_model(opened, device), opened.tokenizer, opened.meta)


def load_optimizer_state(directory: Path) -> dict | None:
    import torch

    path = Path(directory) / OPTIMIZER
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path} cannot be loaded safely: {e.__class__.__name__}") from None


def save_copy(source: Path, target: Path, generation: dict) -> None:
    """The model at `source` saved again at `target` (the same place is fine), with `generation` over
    its generation defaults; its optimizer state and training index go along."""
    loaded = load(source)
    keep = {k: v for k, v in loaded.meta.items() if k not in ("format", "model", "tokenizer", "versions")}
    index = loaded.directory / "index" / "tokens.npy"
    save(
        target,
        loaded.model,
        loaded.tokenizer,
        {**keep, "generation": {**keep.get("generation", {}), **generation}},
        load_optimizer_state(loaded.directory),
        files={"index/tokens.npy": index.read_bytes()} if index.is_file() else None,
    )
