"""One-token generation steps, written for speed at batch size 1.

A step multiplies each weight matrix by a single vector, so its cost is memory traffic and the fixed
overhead of each operation, not arithmetic. Two things follow. The matrices are read as float16 copies:
half the bytes, and a small model then fits in the CPU's cache between steps (a profile on a 2-core
x86 machine: 118 -> 30 µs per matrix product). Everything else (the
residual stream, norms, rotation, attention, the KV cache) stays float32, so the only rounding is of
weights and of each matrix's input. And the layer is spelled out with as few operations as possible.
`GPT.forward` still reads prompts, where the matrices are shared by many tokens.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

from copilot_repl.model import GPT, KVCache


def unit(x: torch.Tensor) -> torch.Tensor:
    """x / |x|: the model's RMSNorm without its factor sqrt(width), which the matrices that read it absorb.
    Two operations, where F.rms_norm costs several times more at this size."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-12)


class Decoder:
    def __init__(self, model: GPT, dtype: torch.dtype = torch.float16):
        config = model.config
        self.dtype, self.heads, self.head_dim = dtype, config.n_head, config.n_embd // config.n_head
        width = config.n_embd**0.5  # RMSNorm(x) = unit(x) * sqrt(width), folded into the matrix read next
        copy = lambda w, scale=1.0: (w.detach() * scale).to(dtype)  # noqa: E731
        self.layers = [
            (
                copy(b.attn.c_attn.weight, width),
                copy(b.attn.c_proj.weight),
                copy(b.mlp.c_fc.weight, width),
                copy(b.mlp.c_proj.weight),
            )
            for b in model.blocks
        ]
        self.embedding, self.head = model.wte.weight.detach(), copy(model.wte.weight, width)
        # rotation: by cos, and by sin against the halves swapped; the QK-norm's sqrt(head_dim) rides along
        rotary, scale = model.blocks[0].attn.rotary, self.head_dim**0.5
        self.cos = torch.cat((rotary.cos, rotary.cos), dim=-1) * scale
        self.sin = torch.cat((-rotary.sin, rotary.sin), dim=-1) * scale

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (rows, vocab) after appending one token per row (`tokens`: (rows,)) to the cache."""
        rows, pos, H, hd, dtype = tokens.size(0), cache.length, self.heads, self.head_dim, self.dtype
        cos, sin = self.cos[pos], self.sin[pos]
        x = self.embedding[tokens]  # (rows, C), float32 like everything outside the four matrix products
        for i, (attn_in, attn_out, mlp_in, mlp_out) in enumerate(self.layers):
            qkv = F.linear(unit(x).to(dtype), attn_in).view(rows, 3, H, hd)
            qk = unit(qkv[:, :2].float())
            qk = qk * cos + qk.roll(hd // 2, dims=-1) * sin
            cache.k[i][:, :, pos] = qk[:, 1]
            cache.v[i][:, :, pos] = qkv[:, 2]
            k, v = cache.k[i][:, :, : pos + 1], cache.v[i][:, :, : pos + 1]
            y = F.scaled_dot_product_attention(qk[:, 0, :, None], k, v)  # (rows, H, 1, hd)
            x = x + F.linear(y.view(rows, -1).to(dtype), attn_out)  # float16 + float32 gives float32
            x = x + F.linear(F.relu(F.linear(unit(x).to(dtype), mlp_in)).square(), mlp_out)
        cache.length += 1
        return F.linear(unit(x).to(dtype), self.head).float()


_decoders: weakref.WeakKeyDictionary[GPT, tuple[list[int], Decoder]] = weakref.WeakKeyDictionary()


def decoder_for(model: GPT) -> Decoder:
    """The model's decoder, made once; made again if the model's weights were changed in place since."""
    versions = [p._version for p in model.parameters()]
    found = _decoders.get(model)
    if found is None or found[0] != versions:
        found = _decoders[model] = (versions, Decoder(model))
    return found[1]
