"""The interactive session. The prompt is drawn before torch is imported: the model loads in a
background thread, and the first thing that needs it waits with a spinner."""

from __future__ import annotations

import math
import sys
import threading
import time

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import ThreadedAutoSuggest
from prompt_toolkit.filters import Condition, is_done
from prompt_toolkit.layout import ConditionalContainer, FormattedTextControl, Window
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import get_cwidth

from copilot_repl import __version__
from copilot_repl.commands import Quit
from copilot_repl.errors import CopilotReplError, one_line
from copilot_repl.repl.completer import ReplCompleter
from copilot_repl.repl.dispatch import handle
from copilot_repl.repl.history import make_history
from copilot_repl.repl.keys import key_bindings
from copilot_repl.repl.lexer import InputLexer
from copilot_repl.repl.render import DIM, RESET, StreamPrinter, stats_line, typeahead_kept
from copilot_repl.repl.suggest import ModelSuggest, rest_lines
from copilot_repl.wording import plural

PROMPT, CONTINUATION = ">>> ", "... "
RED = "\x1b[31m"
STYLE = Style.from_dict(
    {
        "prompt": "ansigreen bold",
        "continuation": "ansigreen",
        "command": "ansicyan bold",
        "flag": "ansiyellow",
        "argument": "",
        "bottom-toolbar": "noreverse bg:#303030 #c0c0c0",
    }
)
PIECE_COLOURS = ("48;5;24", "48;5;58")  # alternating backgrounds for :tokenize


class ModelLoader:
    """Loads the session's model behind the prompt; the first use waits for it."""

    def __init__(self, session):
        self.session, self.error = session, None
        self.thread = threading.Thread(target=self._load, daemon=True)
        self.thread.start()

    def _load(self) -> None:
        try:
            self.session.model()
        except Exception as e:  # reported when the model is first needed
            self.error = e

    def wait(self, console, report: bool = True) -> None:
        """Block until loading is over; `report`: raise its error (once), else just forget it."""
        if self.thread.is_alive():
            with console.status("loading model…", spinner="dots"):
                self.thread.join()
        error, self.error = self.error, None
        if error is not None and report:
            raise error


class ReplOutput:
    json_mode = False
    shows_low_confidence = True  # the user pressed Enter for it: shown, and marked

    def __init__(self, console, loader: ModelLoader):
        self.console, self.loader, self.pending_input = console, loader, ""
        self.same_line = False  # the next completion continues the input line in place

    def prepare(self, kind: str, text: str, command=None) -> None:
        """Wait for the background load before anything needs the model, or replaces it (they must not race)."""
        if kind != "command":
            self.loader.wait(self.console)
            self.same_line = kind == "prompt" and _cursor_to_end_of_input(text)
        elif command is not None and (command.needs_model or command.replaces_model):
            self.loader.wait(self.console, report=command.needs_model)

    def result(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def info(self, text: str) -> None:
        sys.stdout.write(f"{DIM}{text}{RESET}\n")
        sys.stdout.flush()

    def error(self, text: str) -> None:
        sys.stdout.write(f"{RED}{text}{RESET}\n")
        sys.stdout.flush()

    def train_callback(self):
        from copilot_repl.progress import rich_progress

        return rich_progress(self.console)

    def _echo(self, prompt: str, same_line: bool) -> None:
        if not same_line:
            sys.stdout.write(f"{DIM}{prompt.splitlines()[-1] if prompt.strip() else ''}{RESET}")

    def show(self, stream) -> None:
        request, same_line = stream.request, self.same_line
        self.same_line = False
        if request.sampling.n > 1:
            with self.console.status(f"sampling {request.sampling.n} candidates…", spinner="dots"), typeahead_kept():
                stream.finish()
            self._candidate(request.prompt, stream.result, 0, same_line)
            return
        printer = StreamPrinter(request.prompt)
        self._echo(request.prompt, same_line)
        if request.suffix is not None:
            sys.stdout.write(f"{DIM}fill:{RESET} ")
        try:
            with typeahead_kept():
                for piece in stream:
                    printer.write(piece)
        except KeyboardInterrupt:
            stream.close()
            raise
        finally:
            sys.stdout.write(RESET + "\n")
            if stream.result is not None:
                sys.stdout.write(stats_line(stream.result, low=stream.marked_below) + "\n")
            sys.stdout.flush()
        if stream.result.cropped_tokens:
            self.info(f"(prompt cropped: its first {stream.result.cropped_tokens} tokens do not fit the context)")

    def show_candidate(self, turn) -> None:
        self._candidate(turn.prompt, turn.result, turn.shown, False)

    def _candidate(self, prompt: str, result, index: int, same_line: bool) -> None:
        best = result.candidates[index]
        self._echo(prompt, same_line)
        StreamPrinter(prompt).write(best.text)
        valid = "valid" if best.syntax_ok else "syntax error"
        line = (
            f"[candidate {index + 1}/{len(result.candidates)}: {best.tokens} tokens, mean log-prob {best.mean_logprob:.2f}, "
            f"{valid}, {best.stop_reason}; Alt-N or :next shows the next]"
        )
        sys.stdout.write(f"{RESET}\n{DIM}{line}{RESET}\n")
        sys.stdout.flush()

    def next_input(self, text: str) -> None:
        self.pending_input = text

    def tokens(self, pieces: list[str], ids: list[int]) -> None:
        shown = "".join(f"\x1b[{PIECE_COLOURS[i % 2]}m{p.replace(chr(10), '↵')}{RESET}" for i, p in enumerate(pieces))
        self.result(shown)
        self.info(f"{len(ids)} tokens: {' '.join(map(str, ids))}")


def toolbar(session, loader: ModelLoader):
    def render():
        s = session.sampling
        sampling = f"T {s.temperature}  top_k {s.top_k}  top_p {s.top_p}  seed {'random' if s.seed is None else s.seed}"
        loaded = session.opened
        if loaded is None or session.engine is None:
            model = "loading model…" if loader.thread.is_alive() else "no model (:load PATH)"
            return f" {model}  │  {sampling} "
        params = session.engine.runtime.num_params()
        context = f"context {plural(len(session.turns), 'prompt')}" if session.turns else "fresh context"
        return (
            f" {loaded.directory.name}  {params / 1e6:.1f}M params  │  {loaded.tokenizer.name} {loaded.tokenizer.vocab_size}"
            f"  │  {session.device}  │  {context}  │  {sampling} "
        )

    return render


def _cursor_to_end_of_input(text: str) -> bool:
    """Put the cursor back after the submitted input, so the completion continues it in place."""
    import shutil

    column = len(PROMPT) + get_cwidth(text.split("\n")[-1])
    if column >= shutil.get_terminal_size().columns:
        return False
    sys.stdout.write(f"\x1b[1A\x1b[{column + 1}G")
    return True


def build_prompt_session(session, history: bool = True, **io) -> PromptSession:
    """The prompt_toolkit session with our lexer, completer, keys and history (`io`: input/output for tests)."""
    prompt: PromptSession[str] = PromptSession(
        lexer=InputLexer(),
        completer=ReplCompleter(_paras_names(session)),
        history=make_history(history),
        auto_suggest=ThreadedAutoSuggest(ModelSuggest(session)),
        key_bindings=key_bindings(),
        multiline=True,
        style=STYLE,
        prompt_continuation=lambda width, line, wrap: [("class:continuation", CONTINUATION)],
        complete_while_typing=False,
        refresh_interval=0.5,
        **io,
    )
    # A block suggestion's lines after the cursor's line: in a window right under the input (see suggest.py)
    below_input = Window(FormattedTextControl(lambda: rest_lines(prompt.default_buffer.suggestion, CONTINUATION)))
    has_rest = Condition(lambda: bool(getattr(prompt.default_buffer.suggestion, "rest", "")))
    prompt.layout.container.children.insert(1, ConditionalContainer(below_input, filter=has_rest & ~is_done))  # type: ignore[attr-defined]
    return prompt


class Interrupts:
    """Ctrl-C twice within `window` seconds exits; once only says how (the clock is injectable for tests)."""

    def __init__(self, window: float = 1.0, clock=time.monotonic):
        self.window, self.clock, self.last = window, clock, -math.inf

    def again(self) -> bool:
        now, last = self.clock(), self.last
        self.last = now
        return now - last < self.window


def interactive(session, history: bool = True) -> int:
    from rich.console import Console

    console = Console()
    loader = ModelLoader(session)
    out = ReplOutput(console, loader)
    prompt_session = build_prompt_session(session, history)
    print(f"copilot-repl {__version__}: type Python to complete it; :help for commands, Ctrl-D to quit.")
    prompt_session.bottom_toolbar = toolbar(session, loader)
    interrupts = Interrupts()
    while True:
        try:
            text = prompt_session.prompt([("class:prompt", PROMPT)], default=out.pending_input)
        except KeyboardInterrupt:
            if interrupts.again():
                return 130
            out.info("(Ctrl-D or :quit exits)")
            continue
        except EOFError:
            return 0
        out.pending_input = ""
        if not text.strip():
            continue
        try:
            with session.busy:  # a suggestion still running finishes first (a fraction of a second)
                handle(session, text, out)
        except Quit:
            return 0
        except KeyboardInterrupt:
            if interrupts.again():
                return 130
            out.info("(interrupted; Ctrl-C again at once to exit)")
        except Exception as e:
            if session.debug and not isinstance(e, CopilotReplError):
                raise
            out.error(one_line(e))


def _paras_names(session):
    def names() -> list[str]:
        from copilot_repl.checkpoint import paras_dir

        root = paras_dir(session.paras)
        return sorted(p.name for p in root.iterdir() if (p / "checkpoint.json").is_file()) if root.is_dir() else []

    return names
