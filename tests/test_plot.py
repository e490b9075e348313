from __future__ import annotations

import struct
import zlib

from copilot_repl.training.plot import loss_png, terminal_curve

HISTORY = [
    {"step": s, "loss": 8.0 / (1 + s / 50), **({"val_bpb": 3.0 - s / 200} if s % 100 == 0 else {})} for s in range(10, 410, 10)
]


def test_png_is_a_valid_image_with_both_curves():
    data = loss_png(HISTORY, width=400, height=200)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (400, 200)
    idat_len = struct.unpack(">I", data[33:37])[0]
    pixels = zlib.decompress(data[41 : 41 + idat_len])
    assert len(pixels) == height * (1 + width * 3)
    assert bytes([31, 119, 180]) in pixels and bytes([255, 127, 14]) in pixels  # train and val lines drawn


def test_terminal_curve_shows_range_and_steps():
    text = terminal_curve(HISTORY, width=40, height=8)
    assert "6.67" in text and "0.89" in text and "step 400" in text and "val 2.500 → 1.000" in text
    assert terminal_curve(HISTORY[:1]) == ""


def test_training_saves_the_curve_beside_the_checkpoint(tiny_model):
    assert (tiny_model / "loss.png").read_bytes()[:4] == b"\x89PNG"
