"""The model's shape, apart from torch: the numpy runtime and checkpoint loading read it without importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class GPTConfig:
    vocab_size: int = 4096
    block_size: int = 256  # longest context the model attends over
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    rope_base: float = 10000.0

    def to_dict(self) -> dict:
        return asdict(self)

    def num_params(self) -> int:
        """The embedding (tied to the output) and each block's four matrices: 3C^2 + C^2 + 4C^2 + 4C^2."""
        return self.vocab_size * self.n_embd + self.n_layer * 12 * self.n_embd**2
