"""Sampling with a KV cache: temperature, top-k, top-p, a seed, stop rules; text streams as it comes."""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from copilot_repl.model import GPT, KVCache
from copilot_repl.settings import Sampling
from copilot_repl.stops import StopRules
from copilot_repl.tokenizer import EOT, Tokenizer


def clean_prompt(text: str) -> str:
    """Lone surrogates cannot be encoded by any tokenizer; replace them rather than fail."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def sample_next(logits: torch.Tensor, s: Sampling, generator: torch.Generator) -> int:
    if s.temperature == 0:
        return int(logits.argmax())
    logits = logits / s.temperature
    if s.top_k:
        kth = torch.topk(logits, min(s.top_k, logits.size(-1))).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if s.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > s.top_p  # keep the smallest set reaching top_p
        probs = probs.index_fill(0, order[outside], 0.0)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def token_stream(model: GPT, ids: list[int], s: Sampling, banned: list[int]) -> Iterator[int]:
    """Yield sampled ids forever; the caller decides when to stop. When the cache fills, the last half
    context is re-read (rotary positions are relative, so nothing else changes)."""
    config, device = model.config, next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    generator = torch.Generator(device="cpu").manual_seed(s.seed)
    history = list(ids)

    def prefill(context: list[int]):
        cache = KVCache(config, 1, device, dtype)
        logits, _ = model(torch.tensor([context], device=device), cache=cache)
        return cache, logits[0, -1]

    cache, logits = prefill(history[-config.block_size :])
    while True:
        logits = logits.float().cpu()
        logits[banned] = float("-inf")
        token = sample_next(logits, s, generator)
        yield token
        history.append(token)
        if cache.length >= config.block_size:
            cache, logits = prefill(history[-(config.block_size // 2) :])
        else:
            logits, _ = model(torch.tensor([[token]], device=device), cache=cache)
            logits = logits[0, -1]


@dataclass
class Completion:
    """One completion: iterate it for text pieces; afterwards it holds the text and statistics."""

    model: GPT
    tokenizer: Tokenizer
    prompt: str
    sampling: Sampling
    text: str = ""
    tokens: int = 0
    reason: str = ""
    seconds: float = 0.0
    prompt_tokens: int = 0
    cropped_tokens: int = 0
    seed: int = 0

    def __post_init__(self):
        self.prompt = clean_prompt(self.prompt)
        self.seed = self.sampling.seed if self.sampling.seed is not None else int.from_bytes(os.urandom(4), "little")
        ids = [self.tokenizer.eot_id] + self.tokenizer.encode(self.prompt)  # files start after end-of-text
        limit = self.model.config.block_size - 1
        self.cropped_tokens = max(0, len(ids) - limit)
        self.ids = ids[-limit:]
        self.prompt_tokens = len(ids) - 1

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def __iter__(self) -> Iterator[str]:
        s = self.sampling
        rules = StopRules(self.prompt, s.stop, s.stop_mode)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        specials = self.tokenizer.special_ids
        banned = [i for name, i in specials.items() if name != EOT]
        banned += list(range(self.tokenizer.vocab_size, self.model.config.vocab_size))
        sampling = Sampling(**{**s.__dict__, "seed": self.seed})
        start, text, shown = time.perf_counter(), "", 0
        self.reason = "max tokens"
        stream = token_stream(self.model, self.ids, sampling, banned)
        try:
            for token in stream:
                self.tokens += 1
                if token == specials[EOT]:
                    self.reason = "end of text"
                    break
                text += decoder.decode(self.tokenizer.token_bytes(token))
                cut = rules.find_stop(text)
                if cut is not None:
                    text, self.reason = text[:cut], "stop"
                    break
                safe = rules.safe_length(text)
                if safe > shown:
                    yield text[shown:safe]
                    shown = safe
                if self.tokens >= s.max_tokens:
                    break
        except KeyboardInterrupt:
            self.reason = "interrupted"
            raise
        finally:
            stream.close()
            final = StopRules.finish(text + decoder.decode(b"", final=True))
            self.text = final if len(final) >= shown else text[:shown]
            self.seconds = time.perf_counter() - start
        if len(self.text) > shown:
            yield self.text[shown:]
