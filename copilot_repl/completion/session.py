"""What one user session holds: the active model (loaded lazily) and the layered sampling settings.

Settings come from, lowest first: built-in defaults, the user's config file, the checkpoint's saved
generation defaults, command-line flags, then `:set`. Each layer keeps parsed values, so `:set` alone
can say where every value came from and `:unset` falls back to the layer below.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from copilot_repl.completion.settings import SETTINGS, Sampling, parse_setting
from copilot_repl.errors import CorpusError, UsageError
from copilot_repl.wording import plural

LAYERS = ("built-in", "config", "checkpoint", "flag", "set")
ENDED = ("stop", "end of text", "end of middle")  # a completion that ended by itself


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "copilot-repl" / "config.toml"


def read_config(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Settings from the config file, and warnings for whatever in it could not be used."""
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return {}, [f"ignoring config file {path}: {e}"]
    values, warnings = {}, []
    for name, value in raw.items():
        text = (
            "|".join(map(str, value))
            if isinstance(value, list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        try:
            values[name] = parse_setting(name, text)
        except UsageError as e:
            warnings.append(f"config file {path}: {e}")
    return values, warnings


SUGGESTION_TOKENS = 32  # a suggestion while typing is one line: this bounds its cost
BLOCK_SUGGESTION_TOKENS = 64  # after a line that opens a block, the block's body: a few lines


@dataclass
class Turn:
    """One prompt of the session and what the model answered (the candidate shown, for best-of-n)."""

    prompt: str
    suffix: str | None
    result: Any  # generate.Result
    shown: int = 0  # which candidate is shown

    @property
    def text(self) -> str:
        return self.result.candidates[self.shown].text

    def code(self, completed: bool = True, continued: bool = True) -> str:
        """This turn as code in the session's context: the prompt, the completion, and a fill's suffix.
        A completion that did not end by itself (cut for repeating itself, at max_tokens, interrupted) or
        that would leave what follows inside a string or bracket stays out, and so does a prompt that
        would: the next prompt would go on with it, or copy it. A header left without a body stays out
        unless the next prompt is `continued` inside it: before a line at the margin it is broken code,
        and every later completion would be judged against code that does not compile."""
        from copilot_repl.completion.syntax import closed

        code = self.prompt + (self.text if completed else "") + (self.suffix or "")
        code = code if code.endswith("\n") else code + "\n"
        if completed and self.text and (self.result.candidates[self.shown].stop_reason not in ENDED or not closed(code)):
            return self.code(False, continued)
        if not closed(code):  # a prompt left open would open the next one
            return ""
        return code if continued or closed(code, bodiless=False) else ""


@dataclass
class Session:
    """The session owns its history: every face submits prompts here and renders the stream it gets.
    The code so far (prompts and the completions shown: they are on the screen, and the user builds on
    them) is the left context of the next prompt, until `:reset`."""

    model_ref: str | None = None  # a path or NAME; None is the default model
    paras: str | None = None
    device: str = "cpu"
    debug: bool = False
    layers: dict[str, dict[str, Any]] = field(default_factory=lambda: {name: {} for name in LAYERS})
    engine: Any = None  # generate.Engine, once loaded
    opened: Any = None  # checkpoint.Opened of the active model
    turns: list[Turn] = field(default_factory=list)
    chat: bool = True  # False for --once: no session context, only what --context gives
    file_context: str = ""  # --context FILE
    index_paths: list[str] = field(default_factory=list)  # --index / :index: the user's own code
    command_started: float | None = None  # for a shell subcommand: when the process started (--time counts from it)
    busy: threading.Lock = field(default_factory=threading.Lock)  # the model runs one completion at a time

    @property
    def sampling(self) -> Sampling:
        values = {}
        for layer in LAYERS:
            values.update(self.layers[layer])
        return Sampling(**values)

    def source(self, name: str) -> str:
        return next((layer for layer in reversed(LAYERS) if name in self.layers[layer]), "built-in")

    def set(self, name: str, text: str) -> Any:
        value = parse_setting(name, text)  # raises before anything changes
        self.layers["set"][name] = value
        return value

    def unset(self, name: str) -> None:
        if name not in SETTINGS:
            raise UsageError(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
        self.layers["set"].pop(name, None)

    # -- the model -----------------------------------------------------------------------------------
    def model(self):
        """The active checkpoint (checkpoint.Opened), loaded on first use so the first prompt never waits."""
        if self.engine is None:
            self._activate(self.model_ref)
        return self.opened

    def load(self, ref: str) -> Path:
        """Switch to another checkpoint; on any error the current one stays active."""
        self._activate(ref)
        self.model_ref = ref
        return self.opened.directory

    def _activate(self, ref: str | None) -> None:
        from copilot_repl import checkpoint
        from copilot_repl.completion.engine import load_engine

        engine, opened = load_engine(checkpoint.resolve(ref, self.paras), self.device)
        saved = {}
        for name, value in (opened.meta.get("generation") or {}).items():
            if name in SETTINGS:  # written by us, but a checkpoint may come from anywhere: check it
                try:
                    saved[name] = parse_setting(name, "|".join(value) if isinstance(value, list) else str(value))
                except UsageError:
                    pass
        if self.index_paths:  # the user's code, encoded again with this model's tokenizer
            engine.project, engine.project_names, _ = self._user_index(engine, self.index_paths)
        self.engine, self.opened, self.layers["checkpoint"] = engine, opened, saved

    def add_index(self, paths: list[str]) -> str:
        """Let completions copy from the user's own files and folders too; what was indexed, in words."""
        self.model()
        index, names, summary = self._user_index(self.engine, [*self.index_paths, *paths])  # raises before anything changes
        self.engine.project, self.engine.project_names = index, names
        self.index_paths = [*self.index_paths, *paths]
        return summary

    @staticmethod
    def _user_index(engine, paths: list[str]):
        from copilot_repl import data
        from copilot_repl.completion.retrieval import CorpusIndex
        from copilot_repl.completion.scope import IDENTIFIER

        try:
            corpus = data.gather(paths)
        except CorpusError as e:
            raise CorpusError(f"index: {e}") from None
        texts = list(corpus.texts())
        tokens = data.encode_docs(engine.tokenizer, texts, "uint32")
        index = CorpusIndex.build(tokens, engine.tokenizer.vocab_size)
        names = tuple(sorted({name for text in texts for name in IDENTIFIER.findall(text)}))  # the user's, as the file's
        skipped = sum(corpus.skipped.values()) if corpus.skipped else 0
        note = f", {skipped} skipped" if skipped else ""
        return index, names, f"{plural(len(texts), 'file')}, {len(tokens):,} tokens{note}"

    def use_context_file(self, path: str) -> None:
        """`--context FILE`: the file an editor or script is working on comes before every prompt."""
        try:
            self.file_context = Path(path).expanduser().read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise UsageError(f"--context {path}: {e.strerror or e}") from None

    def trained_for_infill(self) -> bool:
        return bool(self.model().meta.get("train", {}).get("fim_rate"))

    # -- completing --------------------------------------------------------------------------------
    def context(self, following: str | None = None) -> str:
        """The code the model sees before the next prompt, `following` (None: not known yet)."""
        return self.file_context + (self._code(following, completed=True) if self.chat else "")

    def copyable(self, following: str | None = None) -> str:
        """Of the context, what the buffer cache may copy from: what the user typed. Copying an earlier
        answer would put it into every new definition that starts alike (`def fib(n):`, `def is_prime(n):`)."""
        return self.file_context + (self._code(following, completed=False) if self.chat else "")

    def _code(self, following: str | None, completed: bool) -> str:
        after = [turn.prompt for turn in self.turns[1:]] + [following]
        return "".join(turn.code(completed, nxt is None or nxt[:1].isspace()) for turn, nxt in zip(self.turns, after))

    def submit(self, prompt: str, suffix: str | None = None, shown_anyway: bool = False):
        """Start completing `prompt`; the turn joins the history when the stream is over. `shown_anyway`:
        a completion below min_confidence is not withheld but marked (the REPL's Enter: the user asked)."""
        done = lambda result: self.turns.append(Turn(prompt, suffix, result))  # noqa: E731
        return self._start(prompt, suffix, self.context(prompt), done, self.copyable(prompt), shown_anyway)

    def suggestion(self, text: str, stale: Callable[[], bool] | None = None):
        """What the REPL shows dim while `text` is typed: one line, or the body of the block its last line
        opens (to the block's end); greedy, after the session's code, and nothing below the confidence
        threshold (min_confidence, else serve's default). Not a turn. `stale` is asked at every token: the
        user typed on or pressed Enter, stop (Enter must not wait for a suggestion nobody will see)."""
        from copilot_repl.completion.confidence import SERVE_MIN_CONFIDENCE
        from copilot_repl.completion.cursor import opens_block
        from copilot_repl.completion.generate import Request

        base = self.sampling
        block = opens_block(text.rsplit("\n", 1)[-1])
        sampling = replace(
            base,
            temperature=0.0,
            max_tokens=BLOCK_SUGGESTION_TOKENS if block else SUGGESTION_TOKENS,
            stop=[] if block else ["\n"],
            stop_mode="block" if block else base.stop_mode,
            n=1,
            min_confidence=base.min_confidence or SERVE_MIN_CONFIDENCE,
        )
        context, copyable = self.context(text), self.copyable(text)
        return self.engine.complete(Request(text, None, context, sampling, copyable, superseded=stale))

    def regen(self):
        """The last prompt again, in the same context (a new sample unless the seed is fixed)."""
        last = self._last()
        self.turns.pop()
        return self.submit(last.prompt, last.suffix)

    def more(self):
        """Continue the last completion where it stopped."""
        last = self._last()
        context = "".join(turn.code() for turn in self.turns[:-1]) if self.chat else ""

        def extend(result) -> None:  # the turn gets a longer answer; the result it had stays as it was
            before = last.result.candidates[last.shown]
            longer = replace(
                before, text=before.text + result.text, tokens=before.tokens + result.tokens, stop_reason=result.stop_reason
            )
            candidates = [longer if i == last.shown else c for i, c in enumerate(last.result.candidates)]
            self.turns[self.turns.index(last)] = replace(last, result=replace(last.result, candidates=candidates))

        return self._start(last.prompt + last.text, None, self.file_context + context, extend)

    def next_candidate(self) -> Turn:
        """Show the next best-of-n candidate of the last prompt: it replaces the shown one in the context."""
        last = self._last()
        if len(last.result.candidates) < 2:
            raise UsageError("no other candidates: :set n 4 (or more), then type a prompt")
        last.shown = (last.shown + 1) % len(last.result.candidates)
        return last

    def record(self, result) -> dict:
        """The JSON record of a completion, the same from `--once` and batch mode."""
        return result.record() | {"model": str(self.model().directory), "runtime": self.engine.runtime.name}

    def reset(self) -> int:
        """A fresh context; how many turns were forgotten."""
        forgotten, self.turns = len(self.turns), []
        return forgotten

    @property
    def last_prompt(self) -> str | None:
        return self.turns[-1].prompt if self.turns else None

    def _last(self) -> Turn:
        if not self.turns:
            raise UsageError("nothing to work on yet: type a prompt first")
        return self.turns[-1]

    def _start(self, prompt: str, suffix: str | None, context: str, done, copyable: str | None = None, shown_anyway=False):
        from copilot_repl.completion.confidence import LIKELY_WRONG_BELOW
        from copilot_repl.completion.generate import Request

        self.model()
        sampling = self.sampling
        marked_below = sampling.min_confidence or LIKELY_WRONG_BELOW
        if shown_anyway:
            sampling = replace(sampling, min_confidence=0.0)
        stream = self.engine.complete(Request(prompt, suffix, context, sampling, copyable))
        stream.marked_below = marked_below
        stream.on_done(done)
        return stream
