"""What the model reads before it writes: the context and prompt as tokens, cropped to the window,
and the end of an unfinished word taken back for the completion to write again (token healing)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from copilot_repl.completion.cursor import Cursor
from copilot_repl.completion.fim import infill_prompt
from copilot_repl.tokenizer import Tokenizer

HEAL_TOKENS = 3  # at most this many tokens of an unfinished word are taken back and written again


@dataclass
class Window:
    ids: list[int]  # what the model reads
    buffer: list[int]  # every id of the buffer, for the cache to copy from
    prompt_tokens: int
    context_tokens: int  # of the context, how many the model saw
    cropped: int  # of the prompt, how many did not fit


def clean_text(text: str) -> str:
    """Lone surrogates cannot be encoded by any tokenizer; replace them rather than fail."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def read_window(
    tok: Tokenizer, block_size: int, cursor: Cursor, prompt: str, context: str, suffix: str | None, copyable: str | None
) -> Window:
    """The tokens of `context + prompt` (up to the cursor, with its lead) that fit the window, or the
    fill-in-the-middle layout when there is a `suffix`. `copyable`: what the buffer cache may copy."""
    limit = block_size - 1
    prompt, context = clean_text(prompt), clean_text(context)
    prompt_tokens = len(tok.encode(prompt))
    if suffix is not None:
        ids, cropped = infill_prompt(tok, context + prompt, clean_text(suffix), limit - 1)
        ids = [tok.eot_id, *ids]
        return Window(ids, ids, prompt_tokens, 0, max(0, cropped - len(tok.encode(context))))
    tail = prompt[: cursor.keep] + cursor.lead
    ids = [tok.eot_id, *tok.encode(context + tail)]  # files start after end-of-text
    buffer = ids if copyable is None else [tok.eot_id, *tok.encode(clean_text(copyable) + tail)]
    context_tokens = len(tok.encode(context)) if context else 0
    # cropped from the left in steps of an eighth of the window, so the window's start, and with it
    # the runtime's cached prompt, stays put while a user types on (one token a keystroke)
    step = max(1, block_size // 8)
    start = -(-max(0, len(ids) - limit) // step) * step
    window = ids[start:]
    cropped = max(0, prompt_tokens - (len(window) - 1)) if start else 0
    seen_context = max(0, min(context_tokens, len(window) - prompt_tokens))
    return Window(window, buffer, prompt_tokens, seen_context, cropped)


def heal(tok: Tokenizer, ids: list[int], prompt: str) -> tuple[list[int], bytes]:
    """(the ids kept, the bytes taken back). A prompt cut mid-word ("compute_chec") ends in tokens the
    model rarely saw there, since whole words were merged into longer tokens in training ("check", not
    "che" "c"). The tokens of the unfinished word are taken back (at most HEAL_TOKENS; one token after
    a symbol) and the completion's first tokens must agree with their bytes."""
    if len(ids) < 2 or prompt[-1:].isspace():
        return ids, b""
    word = re.findall(r"\w*\Z", prompt)[0].encode("utf-8")
    taken = 0
    removed = b""
    while taken < min(HEAL_TOKENS, len(ids) - 1):
        piece = tok.token_bytes(ids[-1 - taken])
        if not piece or (taken and len(removed) + len(piece) > len(word)):
            break
        removed, taken = piece + removed, taken + 1
        if len(removed) >= len(word):
            break
    return (ids[:-taken], removed) if taken else (ids, b"")
