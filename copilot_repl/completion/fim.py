"""Fill-in-the-middle (Bavarian et al. 2022): train on documents cut into prefix, middle and suffix and
reordered with sentinel tokens, so the same model can later fill a gap between two pieces of code.

Training cuts each chosen window at two random *character* positions (not token boundaries), then
re-encodes the three pieces, in one of two orders:
  PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <endoftext>
  SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle <endoftext>
At inference the prompt is the PSM head; the model writes the middle and ends it with <endoftext>.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_repl.tokenizer import EOT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, Tokenizer

if TYPE_CHECKING:
    import numpy as np

SPM_SHARE = 0.5  # of FIM examples, the share in suffix-prefix-middle order
FILL_MARKER = "<fill>"  # in a REPL or batch prompt: the gap to fill (Ctrl-] inserts it)


def fim_window(window: np.ndarray, tokenizer: Tokenizer, rng: np.random.Generator) -> np.ndarray:
    """The same number of tokens, rearranged for fill-in-the-middle (windows spanning two files are
    left alone: the cut must stay inside one document)."""
    special = tokenizer.special_ids
    if special[EOT] in window:
        return window
    text = b"".join(tokenizer.token_bytes(int(i)) for i in window).decode("utf-8", errors="replace")
    i, j = sorted(rng.integers(0, len(text) + 1, size=2))
    prefix, middle, suffix = (tokenizer.encode(part) for part in (text[:i], text[i:j], text[j:]))
    head = [special[FIM_PREFIX]]
    if rng.random() < SPM_SHARE:
        ids = head + [special[FIM_SUFFIX]] + suffix + [special[FIM_MIDDLE]] + prefix + middle
    else:
        ids = head + prefix + [special[FIM_SUFFIX]] + suffix + [special[FIM_MIDDLE]] + middle
    import numpy as np

    ids.append(special[EOT])
    ids = ids[: len(window)]
    if len(ids) < len(window):  # re-encoding can merge across the cuts less; fill with the original end
        ids += window[len(ids) :].tolist()
    return np.asarray(ids, dtype=window.dtype)


def infill_prompt(tokenizer: Tokenizer, prefix: str, suffix: str, limit: int) -> tuple[list[int], int]:
    """The PSM prompt for a gap between `prefix` and `suffix`, cropped to `limit` tokens (prefix from
    the left, suffix from the right, keeping the text nearest the gap); also how many were cropped."""
    special = tokenizer.special_ids
    before, after = tokenizer.encode(prefix), tokenizer.encode(suffix)
    room = limit - 3
    cropped = max(0, len(before) + len(after) - room)
    if cropped:
        keep_after = min(len(after), room // 2)
        keep_before = room - keep_after
        if len(before) < keep_before:
            keep_after = room - len(before)
        before, after = before[len(before) - min(len(before), keep_before) :], after[:keep_after]
    return [special[FIM_PREFIX], *before, special[FIM_SUFFIX], *after, special[FIM_MIDDLE]], cropped
