"""Sampling with a KV cache: temperature, top-k, top-p, a seed, stop rules; text streams as it comes."""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from copilot_repl.decode import decoder_for
from copilot_repl.fim import infill_prompt
from copilot_repl.model import GPT, KVCache
from copilot_repl.settings import Sampling
from copilot_repl.stops import StopRules, block_primer
from copilot_repl.tokenizer import EOT, Tokenizer


def clean_prompt(text: str) -> str:
    """Lone surrogates cannot be encoded by any tokenizer; replace them rather than fail."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def sample(logits: torch.Tensor, s: Sampling, generator: torch.Generator) -> torch.Tensor:
    """One token id per row of `logits` (rows, vocab)."""
    if s.temperature == 0:
        return logits.argmax(-1)
    logits = logits / s.temperature
    if s.top_k and s.top_k < logits.size(-1):  # both ways give the candidates sorted by probability
        values, candidates = torch.topk(logits, s.top_k, dim=-1)
    else:
        values, candidates = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(values, dim=-1)
    if s.top_p < 1.0:  # the smallest set reaching top_p; the most likely token always stays
        probs = probs * ((probs.cumsum(-1) - probs) < s.top_p)
    return candidates.gather(1, torch.multinomial(probs, 1, generator=generator))[:, 0]


@torch.inference_mode()
def token_stream(model: GPT, ids: list[int], s: Sampling, banned: list[int], rows: int = 1, first_from: list[int] | None = None):
    """Yield (ids, log-probabilities) of the next token of each of `rows` samples, forever; the caller
    decides when to stop. The first token is drawn from `first_from` when given. When the cache fills,
    the last half context is re-read (rotary positions are relative, so nothing else changes)."""
    config, weights, decoder = model.config, next(model.parameters()), decoder_for(model)
    generator = torch.Generator().manual_seed(s.seed)
    ban = torch.zeros(config.vocab_size)
    ban[banned] = float("-inf")
    first_ban = ban
    if first_from is not None:
        first_ban = torch.full((config.vocab_size,), float("-inf"))
        first_ban[first_from] = ban[first_from]
    history = torch.tensor([ids] * rows)

    def prefill(context: torch.Tensor):
        cache = KVCache(config, rows, weights.device, weights.dtype)
        logits, _ = model(context.to(weights.device), cache=cache)
        return cache, logits[:, -1]

    cache, logits = prefill(history[:, -config.block_size :])
    logits = logits.float().cpu() + first_ban
    while True:
        tokens = sample(logits, s, generator)
        yield tokens, torch.log_softmax(logits, dim=-1).gather(1, tokens[:, None])[:, 0]
        history = torch.cat([history, tokens[:, None]], dim=1)
        if cache.length >= config.block_size:
            cache, logits = prefill(history[:, -(config.block_size // 2) :])
        else:
            logits = decoder.step(tokens.to(weights.device), cache)
        logits = logits.float().cpu() + ban


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
    primer: str = ""  # text the completion starts with on the model's behalf (see block_primer)
    suffix: str | None = None  # given: fill the gap between prompt and suffix (ends at end-of-middle)
    heal: bool = True  # False only to measure what token healing is worth (benchmarks/completion.py)
    healed: bytes = b""  # the prompt's last token, taken back so that the model may extend it (see _heal)
    first_from: list[int] | None = None  # the tokens the first sampled one must be drawn from

    def __post_init__(self):
        self.prompt = clean_prompt(self.prompt)
        self.seed = self.sampling.seed if self.sampling.seed is not None else int.from_bytes(os.urandom(4), "little")
        limit = self.model.config.block_size - 1
        if self.suffix is not None:
            self.suffix = clean_prompt(self.suffix)
            ids, self.cropped_tokens = infill_prompt(self.tokenizer, self.prompt, self.suffix, limit - 1)
            self.ids, self.prompt_tokens = [self.tokenizer.eot_id, *ids], len(ids) + self.cropped_tokens
            return
        self.primer = block_primer(self.prompt) if self.sampling.stop_mode == "block" else ""
        ids = [self.tokenizer.eot_id] + self.tokenizer.encode(self.prompt + self.primer)  # files start after end-of-text
        self.cropped_tokens = max(0, len(ids) - limit)
        self.ids = ids[-limit:]
        self.prompt_tokens = len(ids) - 1
        if self.heal:
            self._heal()

    def _heal(self) -> None:
        """Token healing. A prompt cut mid-word ("self.fo") ends in a token the model rarely saw there,
        since whole words ("foo") were merged into longer tokens in training. Take that token back and
        let the first sampled token be any token that starts with its bytes."""
        if len(self.ids) < 2:
            return
        last = self.tokenizer.token_bytes(self.ids[-1])
        if not last:  # a special token
            return
        extending = [i for i in range(self.tokenizer.vocab_size) if self.tokenizer.token_bytes(i).startswith(last)]
        if len(extending) > 1:
            self.ids, self.healed, self.first_from = self.ids[:-1], last, extending

    def piece(self, token: int, first: bool) -> bytes:
        """The new bytes a sampled token adds to the prompt (the first one repeats the healed bytes)."""
        raw = self.tokenizer.token_bytes(token)
        return raw[len(self.healed) :] if first else raw

    def stream(self, rows: int = 1):
        """The raw token stream for this prompt; special tokens other than end-of-text are never sampled."""
        banned = [i for name, i in self.tokenizer.special_ids.items() if name != EOT]
        banned += list(range(self.tokenizer.vocab_size, self.model.config.vocab_size))
        sampling = Sampling(**{**self.sampling.__dict__, "seed": self.seed})
        return token_stream(self.model, self.ids, sampling, banned, rows, self.first_from)

    def rules(self) -> StopRules:
        return StopRules(self.prompt, self.sampling.stop, "none" if self.suffix is not None else self.sampling.stop_mode)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def __iter__(self) -> Iterator[str]:
        s, rules = self.sampling, self.rules()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        eot = self.tokenizer.eot_id
        start, text, shown = time.perf_counter(), self.primer, 0
        self.reason = "max tokens"
        stream = self.stream()
        try:
            for tokens, _ in stream:
                token = int(tokens[0])
                self.tokens += 1
                if token == eot:
                    self.reason = "end of middle" if self.suffix is not None else "end of text"
                    break
                text += decoder.decode(self.piece(token, first=self.tokens == 1))
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
