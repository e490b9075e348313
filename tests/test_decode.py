from __future__ import annotations

import pytest
import torch
from test_model import small_model

from copilot_repl.decode import Decoder, decoder_for
from copilot_repl.model import KVCache


def steps(model, decoder: Decoder, idx: torch.Tensor, start: int) -> torch.Tensor:
    """Logits of tokens start.. of `idx`, each fed to the decoder one at a time after a prefilled prefix."""
    cache = KVCache(model.config, idx.size(0), "cpu", torch.float32)
    model(idx[:, :start], cache=cache)
    return torch.stack([decoder.step(idx[:, t], cache) for t in range(start, idx.size(1))], dim=1)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float16, 3e-2)])
def test_decoder_steps_match_the_full_forward(dtype, tolerance):
    model = small_model()
    idx = torch.randint(0, 97, (3, 24))
    with torch.inference_mode():
        full, _ = model(idx)
    decoded = steps(model, Decoder(model, dtype), idx, start=5)
    assert decoded.shape == full[:, 5:].shape
    assert torch.allclose(decoded, full[:, 5:], atol=tolerance, rtol=0)
    assert full[:, 5:].abs().max() > 10 * tolerance  # the comparison is not between near-zero logits


def test_decoder_is_made_once_and_again_after_the_weights_change():
    model = small_model()
    first = decoder_for(model)
    assert decoder_for(model) is first
    with torch.no_grad():
        model.blocks[0].mlp.c_fc.weight.mul_(2)
    second = decoder_for(model)
    assert second is not first
    idx = torch.randint(0, 97, (1, 10))
    with torch.inference_mode():
        full, _ = model(idx)
    assert torch.allclose(steps(model, second, idx, start=4), full[:, 4:], atol=3e-2, rtol=0)
