"""The GPT. Pre-norm blocks with rotary positions, QK-norm, a ReLU^2 MLP and tied embeddings.

Choices were measured on a 2-core CPU (see README, "How the default was chosen"): at 1-3M parameters
the cost is per-operation overhead, so norms have no weights, linears have no biases, and residual
output projections start at zero so every block begins as the identity.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from copilot_repl.config import GPTConfig


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    cos: torch.Tensor
    sin: torch.Tensor

    def __init__(self, head_dim: int, max_len: int, base: float):
        super().__init__()
        # on the CPU even when the model is built on the meta device (GPT.without_weights): the tables
        # are computed, never read from a checkpoint, and arange on meta imports sympy (80 MB)
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu") / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32, device="cpu"), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, pos: int) -> torch.Tensor:  # x: (..., T, hd)
        T = x.size(-2)
        cos, sin = self.cos[pos : pos + T].to(x.dtype), self.sin[pos : pos + T].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class KVCache:
    """Keys and values of every layer, filled as tokens come. The room grows by doubling up to the
    context, so a short completion from a large model holds megabytes rather than the whole context's
    (a 12 x 640 model's 1,024 positions are 63 MB)."""

    def __init__(self, config: GPTConfig, batch: int, device, dtype, room: int = 64):
        self.config, self.batch, self.device, self.dtype = config, batch, device, dtype
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.length = 0  # tokens already stored
        self.room = 0
        self.reserve(min(room, config.block_size))

    def reserve(self, needed: int) -> None:
        """Room for `needed` tokens in all: what is stored moves into larger tensors when short."""
        if needed <= self.room:
            return
        self.room = max(needed, min(2 * self.room, self.config.block_size))
        shape = (self.batch, self.config.n_head, self.room, self.config.n_embd // self.config.n_head)

        def empty() -> list[torch.Tensor]:
            return [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(self.config.n_layer)]

        stored = self.k + self.v
        self.k, self.v = empty(), empty()
        for new, old in zip(self.k + self.v, stored):
            new[:, :, : self.length] = old[:, :, : self.length]


class Attention(nn.Module):
    def __init__(self, config: GPTConfig, rotary: Rotary):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.rotary = rotary

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)  # (3, B, H, T, hd)
        pos = cache.length if cache is not None else 0
        q, k = self.rotary(rms_norm(qkv[:2]), pos)  # QK-norm and rotation on queries and keys at once
        v = qkv[2]
        mask, causal = None, T > 1
        if cache is not None:
            cache.k[layer][:, :, pos : pos + T] = k
            cache.v[layer][:, :, pos : pos + T] = v
            k, v = cache.k[layer][:, :, : pos + T], cache.v[layer][:, :, : pos + T]
            if pos > 0 and T > 1:  # a chunk after cached tokens: causal within, full over the past
                mask = torch.ones(T, pos + T, dtype=torch.bool, device=x.device).tril(pos)
                causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, config: GPTConfig, rotary: Rotary):
        super().__init__()
        self.attn = Attention(config, rotary)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(rms_norm(x), cache, layer)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        rotary = Rotary(config.n_embd // config.n_head, config.block_size, config.rope_base)
        # `_weight` skips nn.Embedding's own initialisation (done below), which on the meta device
        # (without_weights) would import sympy
        self.wte = nn.Embedding(config.vocab_size, config.n_embd, _weight=torch.empty(config.vocab_size, config.n_embd))
        self.blocks = nn.ModuleList(Block(config, rotary) for _ in range(config.n_layer))
        if self.wte.weight.is_meta:
            return
        self.apply(self._init_weights)
        for block in self.blocks:  # every block starts as the identity
            assert isinstance(block, Block)
            nn.init.zeros_(block.attn.c_proj.weight)
            nn.init.zeros_(block.mlp.c_proj.weight)

    @classmethod
    def without_weights(cls, config: GPTConfig) -> GPT:
        """The model with no memory behind its weights (the meta device), for a caller that assigns
        them (a checkpoint's, without a random initialisation to overwrite); its rotary tables, which
        are computed and never saved, are real."""
        with torch.device("meta"):
            return cls(config)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None):
        """Logits (B, T, vocab); with `targets`, also the mean cross-entropy in nats."""
        x = self.wte(idx)  # (B, T, C)
        if cache is not None:
            cache.reserve(cache.length + idx.size(1))
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.length += idx.size(1)
        logits = F.linear(rms_norm(x), self.wte.weight)  # tied with the input embedding
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
