"""Checkpoint directories: written atomically, loaded without ever executing code from them.

A directory holds `model.safetensors`, `checkpoint.json` (model and training config, tokenizer plugin,
corpus fingerprint, metrics, loss history, versions), the tokenizer's own files under `tokenizer/`, and
optionally `optimizer.pt` (plain tensors, read with `weights_only=True`) for `--resume`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from copilot_repl import __version__
from copilot_repl.config import GPTConfig
from copilot_repl.errors import CheckpointError, CopilotReplError
from copilot_repl.tokenizer import Tokenizer, tokenizer_class

if TYPE_CHECKING:  # torch is imported only to train, to run on a GPU, and to save
    from copilot_repl.model import GPT

FORMAT = 1
META = "checkpoint.json"
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
TOKENIZER_DIR = "tokenizer"


def paras_dir(override: str | None = None) -> Path:
    """Checkpoints live in ./paras, like a project's own folder; --paras or $COPILOT_REPL_PARAS move it."""
    return Path(override or os.environ.get("COPILOT_REPL_PARAS") or "paras")


def shipped_default() -> Path:
    return Path(str(resources.files("copilot_repl") / "default_model"))


DEFAULT_NAME = "default"


def model_name(directory: Path) -> str:
    """What a model is called in listings and by the server: its folder's name, or `default` if shipped."""
    return DEFAULT_NAME if directory.resolve() == shipped_default().resolve() else directory.name


def resolve(model: str | None, paras: str | None = None) -> Path:
    """A checkpoint directory from a path, a NAME under paras/, or (None) the default model. The shipped
    model is called `default` everywhere, until the user saves one of their own by that name."""
    if model is None or (model == DEFAULT_NAME and not Path(model).is_dir()):
        local = paras_dir(paras) / DEFAULT_NAME
        return local if (local / META).is_file() else shipped_default()
    path = Path(model).expanduser()
    candidates = [path] if path.is_absolute() or os.sep in model else [path, paras_dir(paras) / model]
    for candidate in candidates:
        _recover(candidate)
        if candidate.is_dir():
            return candidate
    if path.exists():
        raise CheckpointError(f"{model} is a file, not a checkpoint directory")
    raise CheckpointError(
        f"no checkpoint {model!r} (not a folder, nor a name under {paras_dir(paras)}/); see `copilot-repl models`"
    )


def target(ref: str, paras: str | None = None) -> Path:
    """Where to write a model given as a path (it has a separator) or a NAME (under paras/): the rule
    `resolve` reads by."""
    path = Path(ref).expanduser()
    return path if path.is_absolute() or os.sep in ref else paras_dir(paras) / ref


def _recover(final: Path) -> None:
    """If a crash fell between the two renames of a save, put the previous checkpoint back."""
    old = final.with_name(f".{final.name}.old")
    if not final.exists() and (old / META).is_file():
        os.replace(old, final)


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


def read_meta(directory: Path) -> dict:
    _recover(Path(directory))
    try:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory} is not a checkpoint (no {META})") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory / META} is unreadable or not JSON: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
        raise CheckpointError(f"{directory / META} has no format version")
    if meta["format"] > FORMAT:
        raise CheckpointError(f"{directory} was written by a newer copilot-repl (format {meta['format']}); upgrade")
    return meta


@dataclass
class Opened:
    """A checkpoint read for completing: config, tokenizer and float32 weights as numpy arrays."""

    directory: Path
    config: GPTConfig
    tokenizer: Tokenizer
    meta: dict
    weights: dict[str, Any]


def open_checkpoint(directory: Path) -> Opened:
    """Read config, tokenizer and weights without torch; every failure is a CheckpointError saying what is wrong."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    meta = read_meta(directory)
    try:
        config = GPTConfig(**meta["model"])
        tokenizer = tokenizer_class(meta["tokenizer"]["name"]).load(directory / TOKENIZER_DIR)
    except CopilotReplError as e:
        raise CheckpointError(f"cannot load {directory}: {e}") from None
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{directory / META} lacks or garbles the model config: {e}") from None
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(f"{directory}: tokenizer has {tokenizer.vocab_size} ids, model only {config.vocab_size}")
    try:
        weights = load_file(directory / WEIGHTS)
    except FileNotFoundError:
        raise CheckpointError(f"{directory} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{directory / WEIGHTS} is corrupt or truncated: {e}") from None
    expected = _weight_shapes(config)
    found = {name: tuple(w.shape) for name, w in weights.items()}
    if found != expected:
        wrong = sorted(set(found.items()) ^ set(expected.items()))[0][0]
        raise CheckpointError(f"{directory}: weights do not match the config (first difference: {wrong})")
    return Opened(directory, config, tokenizer, meta, weights)


def _weight_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    C = config.n_embd
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (config.vocab_size, C)}
    for i in range(config.n_layer):
        shapes |= {
            f"blocks.{i}.attn.c_attn.weight": (3 * C, C),
            f"blocks.{i}.attn.c_proj.weight": (C, C),
            f"blocks.{i}.mlp.c_fc.weight": (4 * C, C),
            f"blocks.{i}.mlp.c_proj.weight": (C, 4 * C),
        }
    return shapes


@dataclass
class Loaded:
    directory: Path
    model: GPT
    tokenizer: Tokenizer
    meta: dict


def torch_model(opened: Opened, device: str = "cpu") -> GPT:
    """The opened weights as the torch model, in eval mode on `device`."""
    import torch

    from copilot_repl.model import GPT

    model = GPT(opened.config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in opened.weights.items()}, strict=True)
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
