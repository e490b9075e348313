"""Loss curves a person can look at: a text chart for the terminal and a small PNG for the checkpoint.

The PNG is drawn with numpy and written with zlib: a plotting library would be a far heavier
dependency than the forty lines a two-line chart needs.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

# 3x5 bitmaps for axis labels, read row by row from the top.
GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    " ": "000000000000000",
    "k": "100101110101101",
}
TRAIN_COLOUR, VAL_COLOUR, AXIS_COLOUR = (31, 119, 180), (255, 127, 14), (90, 90, 90)


def series(history: list[dict]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train loss) and (step, val bits/byte) points from a checkpoint's history."""
    train = [(h["step"], h["loss"]) for h in history if "loss" in h and h["loss"] == h["loss"]]  # NaN-free
    val = [(h["step"], h["val_bpb"]) for h in history if "val_bpb" in h]
    return train, val


def terminal_curve(history: list[dict], width: int = 60, height: int = 10) -> str:
    """The training loss as rows of text (log scale, so the early drop does not flatten the rest),
    with its range on the left and the steps underneath."""
    train, val = series(history)
    if len(train) < 2:
        return ""
    steps, losses = np.array([s for s, _ in train]), np.array([v for _, v in train])
    columns = np.interp(np.linspace(steps[0], steps[-1], width), steps, losses)
    low, high = float(losses.min()), float(losses.max())
    scaled = (np.log(columns) - np.log(low)) / max(np.log(high) - np.log(low), 1e-9)
    rows = np.clip((scaled * (height - 1)).round().astype(int), 0, height - 1)
    grid = [[" "] * width for _ in range(height)]
    for x, y in enumerate(rows):
        grid[height - 1 - y][x] = "•"
    label = lambda v: f"{v:6.2f} "  # noqa: E731
    lines = [
        (label(high) if i == 0 else label(low) if i == height - 1 else " " * 7) + "│" + "".join(r) for i, r in enumerate(grid)
    ]
    lines.append(" " * 7 + "└" + "─" * width)
    lines.append(" " * 8 + f"step {steps[0]}".ljust(width - 12) + f"step {steps[-1]}".rjust(12))
    title = "train loss (nats/token)"
    if val:
        title += f"; val {val[0][1]:.3f} → {val[-1][1]:.3f} bits/byte"
    return "\n".join([" " * 8 + title, *lines])


def _text(img: np.ndarray, x: int, y: int, text: str, colour, scale: int = 2) -> None:
    for i, ch in enumerate(text):
        bits = GLYPHS.get(ch, GLYPHS[" "])
        for j, bit in enumerate(bits):
            if bit == "1":
                r, c = y + (j // 3) * scale, x + i * 4 * scale + (j % 3) * scale
                img[r : r + scale, c : c + scale] = colour


def _line(img: np.ndarray, points: list[tuple[float, float]], colour) -> None:
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 2
        for x, y in zip(np.linspace(x0, x1, n), np.linspace(y0, y1, n)):
            img[int(y) - 1 : int(y) + 1, int(x) - 1 : int(x) + 1] = colour


def _panel(img, left, top, width, height, points, colour) -> None:
    img[top : top + height, left] = AXIS_COLOUR
    img[top + height, left : left + width] = AXIS_COLOUR
    if len(points) < 2:
        return
    xs, ys = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    lo, hi = ys.min(), ys.max()
    px = left + 4 + (xs - xs[0]) / max(xs[-1] - xs[0], 1) * (width - 8)
    py = top + 4 + (hi - ys) / max(hi - lo, 1e-9) * (height - 8)
    _line(img, list(zip(px, py)), colour)
    _text(img, left - 62, top, f"{hi:6.2f}", AXIS_COLOUR)
    _text(img, left - 62, top + height - 10, f"{lo:6.2f}", AXIS_COLOUR)
    _text(img, left + width - 60, top + height + 8, f"{int(xs[-1]):7d}", AXIS_COLOUR)


def loss_png(history: list[dict], width: int = 720, height: int = 300) -> bytes:
    """Train loss (blue, left) and validation bits/byte (orange, right) against steps, as PNG bytes."""
    train, val = series(history)
    img = np.full((height, width, 3), 255, np.uint8)
    panel_w = (width - 180) // 2
    _panel(img, 70, 20, panel_w, height - 60, train, TRAIN_COLOUR)
    _panel(img, 160 + panel_w, 20, panel_w, height - 60, val, VAL_COLOUR)
    raw = b"".join(b"\x00" + row.tobytes() for row in img)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
