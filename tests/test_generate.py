"""The completion runner on a tiny model: streaming, seeds, cropping, stop strings, token healing, the
session's names, `:more`, and a newer request or a time limit stopping a completion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot_repl.completion.engine import load_engine
from copilot_repl.completion.generate import Engine, Request, Stream
from copilot_repl.completion.runtime_numpy import NumpyGPT
from copilot_repl.completion.settings import Sampling
from copilot_repl.completion.window import heal


class Done:
    """A finished completion: the text streamed, and the result record."""

    def __init__(self, stream: Stream):
        self.streamed = "".join(stream)
        r = stream.result
        self.text, self.tokens, self.reason, self.cropped_tokens, self.result = (
            r.text,
            r.tokens,
            r.stop_reason,
            r.cropped_tokens,
            r,
        )


def complete(engine: Engine, prompt: str, context: str = "", **kw) -> Done:
    sampling = Sampling(**{"max_tokens": 40, "stop_mode": "none", **kw})
    return Done(engine.complete(Request(prompt, context=context, sampling=sampling)))


@pytest.fixture(scope="module")
def loaded(tiny_model) -> Engine:
    return load_engine(tiny_model)[0]


def test_same_seed_same_output(loaded):
    a, b = complete(loaded, "def f(x):", seed=7), complete(loaded, "def f(x):", seed=7)
    assert a.text == b.text and a.tokens == b.tokens
    greedy = [complete(loaded, "import os\n", temperature=0).text for _ in range(2)]
    assert greedy[0] == greedy[1]


def test_streamed_text_is_the_completion(loaded):
    c = complete(loaded, "class Stack:", seed=1, max_tokens=30)
    assert c.streamed == c.text and 0 < c.tokens <= 30
    assert c.reason in ("max tokens", "end of text", "stop", "no valid candidate")  # nothing invalid is streamed


def test_long_prompt_is_cropped_from_the_left(loaded):
    c = complete(loaded, "x = 1\n" * 500, seed=1, max_tokens=80, repeat_penalty=1.0)  # also runs past the window
    assert c.cropped_tokens > 0 and c.tokens <= 80
    in_context = complete(loaded, "x = 1\n", context="y = 2\n" * 500, seed=1, max_tokens=5)
    assert in_context.cropped_tokens == 0 and 0 < in_context.result.context_tokens < 500 * 4


def test_odd_prompts_do_not_crash(loaded):
    for prompt in ["", "   ", "\x00\x1b[31m", "\ud800 lone surrogate", "日本語🐍"]:
        done = complete(loaded, prompt, seed=2, max_tokens=5)
        assert done.reason and 0 < done.tokens <= 5 and done.streamed == done.text
        done.text.encode("utf-8")  # no lone surrogate comes back


def test_stop_strings_cut_the_output(loaded):
    seed = next(s for s in range(50) if len(complete(loaded, "def f(x):", seed=s, max_tokens=40).text) >= 8)
    free = complete(loaded, "def f(x):", seed=seed, max_tokens=40).text
    stop = free[5:7]
    cut = complete(loaded, "def f(x):", seed=seed, max_tokens=40, stop=[stop])
    assert stop not in cut.text and free.startswith(cut.text)


@pytest.fixture(scope="module")
def untrained_bpe():
    from copilot_repl.model import GPT, GPTConfig
    from copilot_repl.tokenizer import tokenizer_class

    text = "def read(self):\n    return self.value\n\n" * 20 + "import os\nimport sys\n" * 20
    tokenizer = tokenizer_class("bpe").train([text], 300)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32))
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return Engine(NumpyGPT(model.config, weights), tokenizer)


@given(
    st.sampled_from(["    ret", "    return self.va", "import o", "def re", "x = ", "x = self.value.re"]), st.integers(0, 2**31)
)
def test_token_healing_takes_back_the_cut_word_and_writes_it_again(untrained_bpe, prompt, seed):
    tokenizer = untrained_bpe.tokenizer
    stream = untrained_bpe.complete(Request(prompt, sampling=Sampling(max_tokens=3, stop_mode="none", seed=seed)))
    ids = [tokenizer.eot_id, *tokenizer.encode(prompt)]
    kept, removed = heal(tokenizer, ids, prompt)
    assert tokenizer.decode(kept[1:]).encode() + removed == prompt.encode()  # nothing lost, nothing added
    assert len(removed) <= max(
        len(prompt) - len(prompt.rstrip("abcdefghijklmnopqrstuvwxyz_")), len(tokenizer.token_bytes(ids[-1]))
    )
    for token in untrained_bpe.agreeing(removed) if removed else []:
        piece = tokenizer.token_bytes(int(token))
        assert piece.startswith(removed) or removed.startswith(piece)
    "".join(stream)  # and the completion runs


def test_a_taken_back_word_start_is_not_counted_as_the_models_guess(untrained_bpe):
    """The first token after `self.va` must agree with the typed `va`: its chance is read among the
    tokens that do (an untrained model spreads it about evenly over them), not over all 300."""
    import math

    prompt = "    return self.va"
    tokenizer = untrained_bpe.tokenizer
    removed = heal(tokenizer, [tokenizer.eot_id, *tokenizer.encode(prompt)], prompt)[1]
    agreeing = len(untrained_bpe.agreeing(removed))
    assert 0 < agreeing < tokenizer.vocab_size / 10
    done = complete(untrained_bpe, prompt, temperature=0, max_tokens=2, repeat_penalty=1.0)
    first = done.result.candidates[0].steps[0][1]
    assert first > -math.log(agreeing) - 1.0 > -math.log(tokenizer.vocab_size) + 1.0


def test_an_identifier_typed_earlier_in_the_session_is_completed():
    """The buffer cache copies from the context: the issue's own example, on the shipped model, greedy."""
    from copilot_repl import checkpoint

    engine = load_engine(checkpoint.shipped_default())[0]
    context = "def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n"
    done = complete(engine, "result = compute_chec", context=context, temperature=0, max_tokens=12)
    assert done.text.startswith("ksum_of_payload(")


def test_a_suggestion_the_model_is_unsure_of_gives_way_to_the_one_name_begun():
    """Mid-word, below the model's own confidence, the file's one name that starts as typed."""
    from copilot_repl import checkpoint

    engine = load_engine(checkpoint.shipped_default())[0]
    context = "def compute_checksum_of_payload(data):\n    return sum(data) % 256\n\n"
    own = complete(engine, "result = compute_chec", context=context, temperature=0, max_tokens=12, stop=["\n"])
    done = complete(engine, "result = compute_chec", context, temperature=0, max_tokens=12, stop=["\n"], min_confidence=0.59)
    if own.result.candidates[0].confidence < 0.59:
        assert (done.text, done.reason) == ("ksum_of_payload", "known name")
    else:
        assert done.text == own.text
    block = complete(engine, "result = compute_chec", context, temperature=0, max_tokens=12, stop_mode="block", min_confidence=1)
    assert block.text == ""  # a block at the REPL is the model's or nothing


def test_a_copy_brings_no_name_the_code_here_lacks():
    """A project's `if not nx.is_connected(G):` matched `if not n`: without the scope, greedy went on
    `x.is_connected(G):` and `raise nx.NetworkXError(...)` in a function whose only name is `n`."""
    import numpy as np

    from copilot_repl import checkpoint
    from copilot_repl.completion.retrieval import CorpusIndex

    engine = load_engine(checkpoint.shipped_default())[0]
    code = "def check(G):\n    if not nx.is_connected(G):\n        raise nx.NetworkXError('not connected')\n    return G\n\n"
    engine.project = CorpusIndex.build(np.asarray(engine.tokenizer.encode(code * 3)), engine.tokenizer.vocab_size)
    done = complete(engine, "def is_even(n):\n    if not n", temperature=0, max_tokens=24, stop_mode="block")
    assert "G)" not in done.text and "NetworkXError" not in done.text, done.text


def test_more_continues_the_last_turn_without_changing_its_published_result(tiny_model):
    from copilot_repl.completion.session import Session

    session = Session(model_ref=str(tiny_model))
    session.set("max_tokens", "5")
    session.set("stop_mode", "none")
    session.set("seed", "3")
    first = session.submit("def f(x):").finish()
    published = (first.text, first.tokens, first.stop_reason)
    more = session.more().finish()
    turn = session.turns[-1]
    assert (first.text, first.tokens, first.stop_reason) == published  # what listeners were told stays true
    assert turn.text == first.text + more.text and turn.result.tokens == first.tokens + more.tokens
    assert turn.result.stop_reason == more.stop_reason


def test_a_newer_request_or_the_time_limit_stops_a_completion(loaded):
    asked = []
    superseded = lambda: asked.append(1) or len(asked) > 3  # noqa: E731  a newer request after 3 tokens
    sampling = Sampling(max_tokens=200, stop_mode="none", seed=1)
    done = loaded.complete(Request("def f(x):", sampling=sampling, superseded=superseded)).finish()
    assert done.stop_reason == "superseded" and done.tokens == 4 and done.text == ""
    done = loaded.complete(Request("def f(x):", sampling=sampling, max_seconds=0.0)).finish()
    assert done.stop_reason == "time limit" and done.tokens == 1


def test_best_of_n_runs_past_the_window_when_some_rows_stopped_early(loaded):
    """Rows that stopped keep no more history; the window re-read past its end must still be one batch."""
    for seed in range(4):
        c = complete(loaded, "x = 1\n", seed=seed, n=4, stop=["e"], max_tokens=200, repeat_penalty=1.0)
        assert len(c.result.candidates) == 4


def test_the_speed_is_read_from_every_token_decoded_not_the_winners_alone(loaded):
    longer = 0
    for seed in range(3):
        r = complete(loaded, "x = 1\n", seed=seed, n=4, stop=["e"], max_tokens=60).result
        assert r.steps == max(c.tokens for c in r.candidates) >= r.tokens
        assert r.tokens_per_second == r.steps / r.seconds
        longer += r.steps > r.tokens
    assert longer  # a row ran longer than the winner: the winner alone would have read slower
