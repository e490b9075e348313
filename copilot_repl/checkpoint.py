"""Checkpoint directories found and read for completing, without ever executing code from them: as
numpy arrays, or one tensor at a time for the int8 runtime (`read_tensor`, which alone needs torch).
Writing them, and reading them whole as torch models, is checkpoint_write.py.

A directory holds `model.safetensors`, `checkpoint.json` (model and training config, tokenizer plugin,
corpus fingerprint, metrics, loss history, versions), the tokenizer's own files under `tokenizer/`, and
optionally `optimizer.pt` (plain tensors, read with `weights_only=True`) for `--resume`.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from copilot_repl.config import GPTConfig
from copilot_repl.errors import CheckpointError, CopilotReplError
from copilot_repl.tokenizer import Tokenizer, tokenizer_class

if TYPE_CHECKING:  # torch is imported only to train, to run on a GPU, and to save
    pass

FORMAT = 1
META = "checkpoint.json"
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
TOKENIZER_DIR = "tokenizer"


def paras_dir(override: str | None = None) -> Path:
    """Checkpoints live in ./paras, like a project's own folder; --paras or $COPILOT_REPL_PARAS move it."""
    return Path(override or os.environ.get("COPILOT_REPL_PARAS") or "paras")


def shipped_default() -> Path:
    """Installed, the shipped model is the package's data (copilot_repl/default_model); in a checkout
    (an editable install) it is paras/default, where the design card keeps it."""
    installed = Path(str(resources.files("copilot_repl") / "default_model"))
    return installed if (installed / META).is_file() else Path(__file__).resolve().parent.parent / "paras" / "default"


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


def open_checkpoint(directory: Path, weights: bool = True) -> Opened:
    """Read config, tokenizer and weights without torch; every failure is a CheckpointError saying what
    is wrong. `weights=False` checks the weights' names and shapes from the file's header and leaves
    reading them to the runtime (`read_weights`, or one tensor at a time for int8)."""
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
    with _weights_file(directory) as f:
        found = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118 (not a dict)
    expected = _weight_shapes(config)
    if found != expected:
        wrong = sorted(set(found.items()) ^ set(expected.items()))[0][0]
        raise CheckpointError(f"{directory}: weights do not match the config (first difference: {wrong})")
    return Opened(directory, config, tokenizer, meta, read_weights(directory) if weights else {})


def read_weights(directory: Path) -> dict[str, Any]:
    """Every weight as a float32 numpy array."""
    from safetensors.numpy import load_file

    try:
        return load_file(Path(directory) / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{Path(directory) / WEIGHTS} is corrupt or truncated: {e}") from None


@contextlib.contextmanager
def _weights_file(directory: Path, framework: str = "numpy"):
    """The weights file opened for reading tensors one at a time (safetensors maps it)."""
    from safetensors import safe_open

    try:
        with safe_open(directory / WEIGHTS, framework=framework) as f:
            yield f
    except FileNotFoundError:
        raise CheckpointError(f"{directory} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{directory / WEIGHTS} is corrupt or truncated: {e}") from None


def read_tensor(directory: Path, name: str):
    """One weight as a torch tensor, the file mapped only while it is read: loading a large model for
    int8 never holds all its float weights at once."""
    with _weights_file(Path(directory), "pt") as f:
        return f.get_tensor(name)


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
