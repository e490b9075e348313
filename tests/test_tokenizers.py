from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SMALL_MODULES, STDLIB
from copilot_repl.errors import TokenizerError
from copilot_repl.plugins import registered_tokenizers
from copilot_repl.tokenizer import SPECIAL_TOKENS, tokenizer_class

TEXTS = [(STDLIB / name).read_text(encoding="utf-8") for name in SMALL_MODULES]
BUILTINS = ["char", "bpe", "tiktoken"]


@pytest.fixture(scope="module", params=BUILTINS)
def trained(request):
    cls = tokenizer_class(request.param)
    return cls.train(TEXTS, None if request.param == "char" else 512)


def test_builtins_are_registered():
    assert set(BUILTINS) <= set(registered_tokenizers())


def test_unknown_tokenizer_is_a_typed_error():
    with pytest.raises(TokenizerError, match="unknown tokenizer 'nope'"):
        tokenizer_class("nope")


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_round_trip_any_text(trained, text):
    ids = trained.encode(text)
    assert all(0 <= i < trained.vocab_size for i in ids)
    assert trained.decode(ids) == text


def test_round_trip_code_and_unseen_characters(trained):
    text = TEXTS[0] + "\nπ = '日本語 🐍 \x00\x7f'\n<|endoftext|>"
    assert trained.decode(trained.encode(text)) == text


def test_special_tokens_are_reserved_and_never_produced_by_text(trained):
    specials = trained.special_ids
    assert set(specials) == set(SPECIAL_TOKENS)
    assert len(set(specials.values())) == len(SPECIAL_TOKENS)
    ids = trained.encode("".join(SPECIAL_TOKENS))
    assert not set(ids) & set(specials.values())


def test_save_load_encodes_identically(trained, tmp_path):
    trained.save(tmp_path)
    again = type(trained).load(tmp_path)
    assert again.vocab_size == trained.vocab_size
    assert again.encode(TEXTS[1]) == trained.encode(TEXTS[1])
    assert again.fingerprint(tmp_path) == trained.fingerprint(tmp_path)


def test_bpe_respects_vocab_size():
    tok = tokenizer_class("bpe").train(TEXTS, 400)
    assert tok.vocab_size == 400
    assert len(TEXTS[0].encode()) / len(tok.encode(TEXTS[0])) > 1.5  # it really merges


def test_tiny_vocab_is_refused():
    for name in ("bpe", "tiktoken", "char"):
        with pytest.raises(TokenizerError, match="vocab-size"):
            tokenizer_class(name).train(TEXTS, 100)


def test_tiktoken_compaction_is_closed_under_merges():
    from copilot_repl_plugins.tiktoken_compact import _merge_parts, base_encoding

    tok = tokenizer_class("tiktoken").train(TEXTS, 1024)
    assert tok.vocab_size == 1024
    full = base_encoding()._mergeable_ranks
    kept = tok.ranks
    assert all(bytes([b]) in kept for b in range(256))
    for token in kept:
        if len(token) > 1:
            parts = _merge_parts(token, full, full[token])
            assert len(parts) >= 2 and all(p in kept for p in parts)
    order = sorted(kept, key=full.__getitem__)
    assert [kept[t] for t in order] == list(range(len(kept)))  # original rank order preserved
    text = TEXTS[2]
    assert len(tok.encode(text)) < len(text.encode()) / 2  # compaction still compresses well


def test_tiktoken_never_touches_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tok = tokenizer_class("tiktoken").train(TEXTS, 600)
    tok.save(tmp_path)
    again = tokenizer_class("tiktoken").load(tmp_path)
    assert again.decode(again.encode(TEXTS[3])) == TEXTS[3]


@pytest.fixture(scope="module")
def bpe():
    return tokenizer_class("bpe").train(TEXTS, 600)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300) | st.sampled_from(TEXTS).map(lambda t: t[:2000]))
def test_bpe_encodes_exactly_as_the_hf_tokenizer_it_was_trained_with(bpe, text):
    """Encoding runs on tiktoken's engine; the merges and the saved file are HF's. They must agree."""
    assert bpe.encode(text) == bpe.hf.encode(text, add_special_tokens=False).ids
    texts = [text, text[::-1]]
    assert bpe.encode_batch(texts) == [e.ids for e in bpe.hf.encode_batch(texts, add_special_tokens=False)]
