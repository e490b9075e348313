"""The GPT's forward pass in numpy, for completing on a CPU without importing torch.

It is the second (and last) copy of the model's math; `model.py` is the first, and
tests/test_runtime.py holds the two together (logits within 1e-4, the same greedy tokens). Weights are
float32, pre-transposed so every product is `x @ W`, and keys and values are cached per layer, so a
step reads each matrix once. At batch 1 the cost is per-call overhead, which is why the layer is
written with few numpy calls.
"""

from __future__ import annotations

import numpy as np

from copilot_repl.config import GPTConfig

EPS = float(np.finfo(np.float32).eps)  # what F.rms_norm uses for float32 when given no eps


def _norm(x: np.ndarray) -> np.ndarray:
    """RMSNorm without weights. `np.add.reduce` rather than `np.mean`: the same sum, without the
    Python-level wrapper that costs more than the arithmetic at this size."""
    return x / np.sqrt(np.add.reduce(x * x, axis=-1, keepdims=True) * (1.0 / x.shape[-1]) + EPS)


class NumpyGPT:
    """`prefill` reads a prompt (rows, T) into a fresh cache; `step` appends one token per row.
    Both return the logits of the next token, (rows, vocab), float32."""

    device = "cpu"
    name = "numpy"

    def __init__(self, config: GPTConfig, weights: dict[str, np.ndarray]):
        self.config = config
        self.block_size, self.vocab_size = config.block_size, config.vocab_size
        self.heads, self.head_dim = config.n_head, config.n_embd // config.n_head
        f32 = lambda name: np.ascontiguousarray(weights[name], dtype=np.float32)  # noqa: E731
        self.wte = f32("wte.weight")
        self.head = np.ascontiguousarray(self.wte.T)
        self.layers = [
            tuple(
                np.ascontiguousarray(f32(f"blocks.{i}.{name}.weight").T)
                for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
            )
            for i in range(config.n_layer)
        ]
        half = self.head_dim // 2
        inv_freq = config.rope_base ** (-np.arange(0, self.head_dim, 2, dtype=np.float32) / self.head_dim)
        angles = np.outer(np.arange(config.block_size, dtype=np.float32), inv_freq)  # (T, hd/2)
        # rotation as x * cos + x[swap] * sin over the full head width: four calls instead of seven
        self.cos = np.concatenate((np.cos(angles), np.cos(angles)), axis=-1)[:, None, None, :]  # (T, 1, 1, hd)
        self.sin = np.concatenate((-np.sin(angles), np.sin(angles)), axis=-1)[:, None, None, :]
        self.swap = np.concatenate((np.arange(half, self.head_dim), np.arange(half)))
        self.scale = 1.0 / np.sqrt(self.head_dim)
        self.k: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.length = 0
        self.prompt: np.ndarray | None = None  # the ids the cache holds from the last prefill, when all rows read the same

    def num_params(self) -> int:
        return self.wte.size + sum(w.size for layer in self.layers for w in layer)

    def _rotate(self, x: np.ndarray, pos: int) -> np.ndarray:  # x: (rows, T, 2, H, hd), queries and keys
        T = x.shape[1]
        return x * self.cos[pos : pos + T] + x[..., self.swap] * self.sin[pos : pos + T]

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        rows, T = ids.shape
        pos, H, hd = self.length, self.heads, self.head_dim
        if pos + T > self.block_size:
            raise ValueError(f"{pos + T} tokens do not fit the context of {self.block_size}")
        x = self.wte[ids]  # (rows, T, C)
        mask = None
        if T > 1:
            mask = np.triu(np.full((T, pos + T), -np.inf, dtype=np.float32), k=pos + 1)
        for i, (attn_in, attn_out, mlp_in, mlp_out) in enumerate(self.layers):
            qkv = (_norm(x) @ attn_in).reshape(rows, T, 3, H, hd)
            q, k = self._rotate(_norm(qkv[:, :, :2]), pos).transpose(2, 0, 3, 1, 4)  # each (rows, H, T, hd)
            self.k[i][:, :, pos : pos + T] = k
            self.v[i][:, :, pos : pos + T] = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q * self.scale) @ self.k[i][:, :, : pos + T].transpose(0, 1, 3, 2)  # (rows, H, T, pos+T)
            if mask is not None:
                scores = scores + mask
            # no max to subtract: after the QK-norm |q.k| * scale <= sqrt(head_dim), so exp cannot overflow
            scores = np.exp(scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            y = (scores @ self.v[i][:, :, : pos + T]).transpose(0, 2, 1, 3).reshape(rows, T, -1)
            x = x + y @ attn_out
            x = x + np.square(np.maximum(_norm(x) @ mlp_in, 0.0)) @ mlp_out
        self.length += T
        return x

    def _reset(self, rows: int) -> None:
        shape = (rows, self.heads, self.block_size, self.head_dim)
        self.k = [np.zeros(shape, dtype=np.float32) for _ in self.layers]
        self.v = [np.zeros(shape, dtype=np.float32) for _ in self.layers]
        self.length = 0

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        """An editor asks again at every keystroke with nearly the same prompt: the keys and values of
        the part it shares with the last prompt are still in the cache (what was generated after it is
        overwritten), so only the rest is read, as llama.cpp's server does with `cache_prompt`."""
        ids = np.asarray(ids, dtype=np.int64)
        rows, T = ids.shape
        same_rows = bool((ids == ids[0]).all())
        shared = 0
        if same_rows and self.prompt is not None and self.k and self.k[0].shape[0] == rows:
            n = min(len(self.prompt), T - 1)  # at least one token is read: its logits are the answer
            differ = np.flatnonzero(self.prompt[:n] != ids[0, :n])
            shared = int(differ[0]) if differ.size else n
        if shared:
            self.length = shared
        else:
            self._reset(rows)
        self.prompt = ids[0].copy() if same_rows else None
        return _norm(self._forward(ids[:, shared:])[:, -1]) @ self.head

    def step(self, tokens: np.ndarray) -> np.ndarray:
        x = self._forward(np.asarray(tokens, dtype=np.int64)[:, None])
        return _norm(x[:, -1]) @ self.head

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits at every position of `ids` (rows, T), for scoring text; the cache starts empty."""
        ids = np.asarray(ids, dtype=np.int64)
        self._reset(ids.shape[0])
        self.prompt = None
        return _norm(self._forward(ids)) @ self.head
