"""What one user session holds: the active model (loaded lazily) and the layered sampling settings.

Settings come from, lowest first: built-in defaults, the user's config file, the checkpoint's saved
generation defaults, command-line flags, then `:set`. Each layer keeps parsed values, so `:set` alone
can say where every value came from and `:unset` falls back to the layer below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot_repl.errors import UsageError
from copilot_repl.settings import SETTINGS, Sampling, parse_setting

LAYERS = ("built-in", "config", "checkpoint", "flag", "set")


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "copilot-repl" / "config.toml"


def read_config(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Settings from the config file, and warnings for whatever in it could not be used."""
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return {}, [f"ignoring config file {path}: {e}"]
    values, warnings = {}, []
    for name, value in raw.items():
        text = (
            "|".join(map(str, value))
            if isinstance(value, list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        try:
            values[name] = parse_setting(name, text)
        except UsageError as e:
            warnings.append(f"config file {path}: {e}")
    return values, warnings


@dataclass
class Session:
    model_ref: str | None = None  # a path or NAME; None is the default model
    paras: str | None = None
    device: str = "cpu"
    debug: bool = False
    layers: dict[str, dict[str, Any]] = field(default_factory=lambda: {name: {} for name in LAYERS})
    loaded: Any = None  # checkpoint.Loaded, once loaded
    last_prompt: str | None = None  # for :regen and :more
    last_completion: str = ""
    candidates: list = field(default_factory=list)  # best-of-n results of the last prompt, best first
    candidate_index: int = 0

    @property
    def sampling(self) -> Sampling:
        values = {}
        for layer in LAYERS:
            values.update(self.layers[layer])
        return Sampling(**values)

    def source(self, name: str) -> str:
        return next((layer for layer in reversed(LAYERS) if name in self.layers[layer]), "built-in")

    def set(self, name: str, text: str) -> Any:
        value = parse_setting(name, text)  # raises before anything changes
        self.layers["set"][name] = value
        return value

    def unset(self, name: str) -> None:
        if name not in SETTINGS:
            raise UsageError(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
        self.layers["set"].pop(name, None)

    def model(self):
        """The active checkpoint, loaded on first use (so the first prompt never waits for torch)."""
        if self.loaded is None:
            self._activate(self.model_ref)
        return self.loaded

    def load(self, ref: str) -> Path:
        """Switch to another checkpoint; on any error the current one stays active."""
        self._activate(ref)
        self.model_ref = ref
        return self.loaded.directory

    def _activate(self, ref: str | None) -> None:
        from copilot_repl import checkpoint
        from copilot_repl.devices import resolve_device

        device, _ = resolve_device(self.device)
        loaded = checkpoint.load(checkpoint.resolve(ref, self.paras), device)
        saved = {}
        for name, value in (loaded.meta.get("generation") or {}).items():
            if name in SETTINGS:  # written by us, but a checkpoint may come from anywhere: check it
                try:
                    saved[name] = parse_setting(name, "|".join(value) if isinstance(value, list) else str(value))
                except UsageError:
                    pass
        self.loaded, self.layers["checkpoint"] = loaded, saved

    def trained_for_infill(self) -> bool:
        return bool(self.model().meta.get("train", {}).get("fim_rate"))

    def completion(self, prompt: str, suffix: str | None = None):
        from copilot_repl.generate import Completion

        loaded = self.model()
        self.last_prompt, self.last_completion = prompt, ""
        return Completion(loaded.model, loaded.tokenizer, prompt, self.sampling, suffix=suffix)

    def record(self, completion) -> dict:
        """What a program reading `--json` (from `--once` or batch mode) needs to know about a finished completion."""
        return {
            "completion": completion.text,
            "tokens": completion.tokens,
            "stop_reason": completion.reason,
            "seconds": round(completion.seconds, 4),
            "tokens_per_second": round(completion.tokens_per_second, 1),
            "seed": completion.seed,
            "prompt_tokens": completion.prompt_tokens,
            "cropped_tokens": completion.cropped_tokens,
            "model": str(self.model().directory),
        }

    def best_of(self, prompt: str, suffix: str | None = None):
        """Sample `n` candidates in one batch; they are kept for `:next`, best first."""
        from copilot_repl.best_of import best_of

        self.candidates, seconds = best_of(self.completion(prompt, suffix), self.sampling.n)
        self.candidate_index, self.last_completion = 0, self.candidates[0].text
        return self.candidates, seconds
