"""Data path speed: encode throughput of each built-in tokenizer over the stdlib corpus, and how long a
second `train` on the same corpus takes from its start to its first step (everything cached)."""

from __future__ import annotations

import time

from copilot_repl import data
from copilot_repl.tokenizer import tokenizer_class
from copilot_repl.training.train import TrainConfig, train


def encode_speed(tokenizers=("char", "bpe", "tiktoken")) -> dict:
    corpus = data.gather(["stdlib"])
    texts = list(corpus.texts("train"))
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    result = {"corpus_mb": megabytes}
    for name in tokenizers:
        tokenizer, _ = data.cached_tokenizer(corpus, tokenizer_class(name), None if name == "char" else 4096)
        start = time.perf_counter()
        ids = sum(len(x) for x in tokenizer.encode_batch(texts))
        result[f"encode_mb_s_{name}"] = megabytes / (time.perf_counter() - start)
        result[f"bytes_per_token_{name}"] = megabytes * 1e6 / ids
    return result


def cached_start() -> dict:
    """Seconds from calling train() to its first step when the tokenizer and tokens are cached."""
    marks = {}

    def callback(event: str, info: dict) -> None:
        if event == "start":
            marks["start"] = time.perf_counter()
            raise KeyboardInterrupt  # stop at once; train() then saves, which is not measured

    config = TrainConfig(corpus=["stdlib"], steps=1, device="cpu", name="bench-cache")
    train(config)  # fills the caches
    begin = time.perf_counter()
    try:
        train(config, [callback])
    except KeyboardInterrupt:
        pass
    return {"second_train_to_first_step_s": marks["start"] - begin}
