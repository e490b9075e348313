"""The command registry, a leaf: one argparse parser per command, shared by the REPL (`:train ...`)
and the shell (`copilot-repl train ...`). Handlers report through an `Output`; the modules beside
this one register the commands, and nothing here imports them."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from copilot_repl.errors import UsageError

if TYPE_CHECKING:
    from copilot_repl.completion.generate import Stream
    from copilot_repl.completion.session import Session, Turn


class Output(Protocol):
    """Where a command's results go: the shell, batch mode and the REPL each provide one."""

    json_mode: bool

    def result(self, text: str) -> None: ...  # the answer (stdout in the shell)
    def info(self, text: str) -> None: ...  # status and notices (stderr in the shell)
    def train_callback(self) -> Callable[[str, dict], None]: ...


class SessionOutput(Output, Protocol):
    """What the session's own commands (`repl_only`) also need: batch mode and the REPL provide it."""

    shows_low_confidence: bool  # a completion below min_confidence is shown, marked (the REPL), not withheld

    def prepare(self, kind: str, text: str, command: Command | None = None) -> None: ...  # before a "command", "fill", "prompt"
    def show(self, stream: Stream) -> None: ...  # render a completion as it streams
    def show_candidate(self, turn: Turn) -> None: ...  # render the candidate a turn now shows
    def next_input(self, text: str) -> None: ...  # pre-fill the next prompt (REPL only)
    def tokens(self, pieces: list[str], ids: list[int]) -> None: ...  # show a tokenization


class Quit(Exception):
    """Raised by :quit; the REPL ends with exit code 0."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError where it would print its usage and exit; a command's parser
    names the command in the message (`named`), the program's own does not need to."""

    def __init__(self, *args, named: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.named = named

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}" if self.named else message)


@dataclass
class Command:
    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Session, argparse.Namespace, Any], None]
    repl_only: bool = False  # meaningless as a shell subcommand (:more, :edit, ...)
    shell_only: bool = False  # meaningless inside the REPL (serve)
    needs_model: bool = True  # the REPL waits for the background model load first
    replaces_model: bool = False  # the REPL lets the background load finish first, so the two do not race

    def parser(self, prefix: str = ":") -> argparse.ArgumentParser:
        parser = Parser(prog=f"{prefix}{self.name}", description=self.summary, add_help=False, exit_on_error=False)
        self.add_arguments(parser)
        return parser

    def options(self) -> list[argparse.Action]:
        """Its flags and arguments, for completion (argparse keeps them in `_actions`: read in this one place)."""
        return list(self.parser()._actions)

    def help(self, prefix: str = ":") -> str:
        return self.parser(prefix).format_help().rstrip()


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, add_arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None, **flags):
    def register(run):
        COMMANDS[name] = Command(name, summary, add_arguments, run, **flags)
        return run

    return register


def parse_command(name: str, argv: list[str], prefix: str = ":") -> tuple[Command, argparse.Namespace]:
    """The command and its parsed arguments; only UsageError for anything a user can type."""
    if name not in COMMANDS or (COMMANDS[name].repl_only if prefix != ":" else COMMANDS[name].shell_only):
        raise UsageError(f"unknown command {prefix}{name}; {'copilot-repl --help' if prefix != ':' else ':help'} lists them")
    cmd = COMMANDS[name]
    try:
        return cmd, cmd.parser(prefix).parse_args(argv)
    except argparse.ArgumentError as e:
        raise UsageError(f"{prefix}{name}: {e}") from None


def run_command(session: Session, name: str, argv: list[str], out: Output, prefix: str = ":") -> None:
    cmd, args = parse_command(name, argv, prefix)
    args.command_line = prefix + shlex.join([name, *argv])  # as typed, for what a command records
    cmd.run(session, args, out)


def split_line(line: str) -> list[str]:
    """The words of a `:command args` line (`/` works as the prefix too)."""
    try:
        words = shlex.split(line.strip()[1:])
    except ValueError as e:
        raise UsageError(f"cannot parse {line.strip()!r}: {e}") from None
    if not words:
        raise UsageError("empty command; :help lists them")
    return words
