"""The torch model behind the runtime interface (`prefill`, `step`), for `--device cuda|mps`.

On a CPU the numpy runtime is faster and needs no torch; on a GPU this one runs the model's own
forward pass with its KV cache, and hands logits back as numpy, so the same sampler decides.
"""

from __future__ import annotations

import numpy as np
import torch

from copilot_repl.model import GPT, KVCache


class TorchRuntime:
    def __init__(self, model: GPT):
        self.model, self.config = model, model.config
        self.block_size, self.vocab_size = model.config.block_size, model.config.vocab_size
        weights = next(model.parameters())
        self.device, self.dtype = weights.device, weights.dtype
        self.cache: KVCache | None = None

    @property
    def length(self) -> int:
        return self.cache.length if self.cache is not None else 0

    def num_params(self) -> int:
        return self.model.num_params()

    @torch.inference_mode()
    def _run(self, ids: np.ndarray) -> np.ndarray:
        logits, _ = self.model(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device), cache=self.cache)
        return logits[:, -1].float().cpu().numpy()

    @torch.inference_mode()
    def logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits at every position of `ids` (rows, T), for scoring text; no cache."""
        self.cache = None
        logits, _ = self.model(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device))
        return logits.float().cpu().numpy()

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self.cache = KVCache(self.config, len(ids), self.device, self.dtype)
        return self._run(ids)

    def step(self, tokens: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(tokens)[:, None])
