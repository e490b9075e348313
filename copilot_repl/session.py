"""What one user session holds: the active model (loaded lazily) and the sampling settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from copilot_repl.generate import Sampling


@dataclass
class Session:
    model_ref: str | None = None  # a path or NAME; None is the default model
    paras: str | None = None
    device: str = "cpu"
    sampling: Sampling = field(default_factory=Sampling)
    debug: bool = False
    loaded: object = None  # checkpoint.Loaded, once loaded

    def model(self):
        """The active checkpoint, loaded on first use (so the first prompt never waits for torch)."""
        if self.loaded is None:
            from copilot_repl import checkpoint
            from copilot_repl.devices import resolve_device

            device, _ = resolve_device(self.device)
            self.loaded = checkpoint.load(checkpoint.resolve(self.model_ref, self.paras), device)
        return self.loaded

    def load(self, ref: str) -> Path:
        """Switch to another checkpoint; on any error the current one stays active."""
        from copilot_repl import checkpoint
        from copilot_repl.devices import resolve_device

        device, _ = resolve_device(self.device)
        self.loaded = checkpoint.load(checkpoint.resolve(ref, self.paras), device)
        self.model_ref = ref
        return self.loaded.directory

    def completion(self, prompt: str):
        from copilot_repl.generate import Completion

        loaded = self.model()
        return Completion(loaded.model, loaded.tokenizer, prompt, self.sampling)
