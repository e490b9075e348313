"""The console script: `--once`, subcommands (every `:command` is one), and the REPL or batch mode.

Machine-facing output (stdout of --once, subcommands and batch mode) carries no colour or progress;
those go to stderr, and only when it is a terminal. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from copilot_repl import __version__
from copilot_repl.completion.settings import SETTINGS, parse_setting
from copilot_repl.errors import CopilotReplError, UsageError, one_line

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPT = 1, 2, 130
STARTED = time.perf_counter()  # as early as the console script gets: `train --time` budgets from here


def build_parser() -> argparse.ArgumentParser:
    from copilot_repl.commands.registry import Parser

    p = Parser(
        named=False,
        prog="copilot-repl",
        description="Train a small GPT on Python code and use it as a completer.",
        epilog="Commands (copilot-repl COMMAND --help): train, eval, serve, models, tokenizers, show. "
        "Without --once or a command: the interactive REPL (batch mode when stdin is not a terminal).",
    )
    p.add_argument("--once", metavar="PROMPT", help="print one completion of PROMPT (- reads stdin) and exit")
    p.add_argument("--suffix", metavar="TEXT", help="with --once: fill the gap between PROMPT and TEXT (fill-in-the-middle)")
    p.add_argument("--context", metavar="FILE", help="code the prompt follows (the file being edited), as left context")
    p.add_argument("--index", nargs="+", metavar="PATH", help="files or folders of your own code that completions may copy from")
    p.add_argument("--model", help="checkpoint directory or NAME under paras/ (default: the shipped model)")
    p.add_argument("--paras", help="folder of named checkpoints (default ./paras or $COPILOT_REPL_PARAS)")
    p.add_argument("--device", default="cpu", help="device for generation: cpu, cuda, mps, auto")
    for name in SETTINGS:
        flag = "--" + name.replace("_", "-")
        if name == "stop":
            p.add_argument(flag, action="append", metavar="TEXT", help=SETTINGS[name].help + " (repeatable)")
        else:
            p.add_argument(flag, metavar="VALUE", help=SETTINGS[name].help)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-history", action="store_true", help="REPL: do not read or write the history file")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"copilot-repl {__version__}")
    return p


def flag_settings(args: argparse.Namespace) -> dict:
    """The sampling settings given as command-line flags, parsed and checked."""
    values = {}
    for name in SETTINGS:
        raw = getattr(args, name)
        if raw is not None:
            values[name] = [s for text in raw for s in parse_setting(name, text)] if name == "stop" else parse_setting(name, raw)
    return values


def split_command(argv: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], str | None, list[str]]:
    """Global options, the command name (if any) and the command's own arguments."""
    from copilot_repl.commands import COMMANDS

    takes_value = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in COMMANDS:
            return argv[:i], token, argv[i + 1 :]
        if not token.startswith("-"):
            break
        i += 2 if token in takes_value else 1
    return argv, None, []


class ShellOutput:
    """Results of a subcommand to stdout; notices and progress to stderr (a rich bar only on a terminal)."""

    def __init__(self, json_mode: bool = False):
        self.json_mode = json_mode

    def result(self, text: str) -> None:
        print(text, flush=True)

    def info(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def train_callback(self):
        from copilot_repl.progress import plain_progress, rich_progress

        if sys.stderr.isatty():
            from rich.console import Console

            return rich_progress(Console(stderr=True))
        return plain_progress(sys.stderr)


def once(session, prompt: str, json_mode: bool, suffix: str | None = None) -> None:
    from copilot_repl.repl.batch import BatchOutput

    if prompt == "-":  # bytes that are not UTF-8 become U+FFFD rather than an error
        prompt = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if suffix is not None and not session.trained_for_infill():
        print("note: this model was not trained with --fim-rate; expect a poor fill", file=sys.stderr)
    BatchOutput(session, json_mode=json_mode).show(session.submit(prompt, suffix))


def _main(argv: list[str]) -> int:
    from copilot_repl.completion.session import Session, config_path, read_config

    parser = build_parser()
    global_argv, name, command_argv = split_command(argv, parser)
    args = parser.parse_args(global_argv)
    session = Session(model_ref=args.model, paras=args.paras, device=args.device, debug=args.debug)
    if args.context:
        session.use_context_file(args.context)
    if args.index:
        session.index_paths = list(args.index)
    config, warnings = read_config(config_path())
    session.layers["config"], session.layers["flag"] = config, flag_settings(args)
    for warning in warnings:
        print(f"copilot-repl: warning: {warning}", file=sys.stderr)
    if name is not None:
        from copilot_repl.commands import COMMANDS, run_command

        if command_argv in (["--help"], ["-h"]):
            print(COMMANDS[name].help(prefix="copilot-repl "))
            return 0
        session.command_started = STARTED
        run_command(session, name, command_argv, ShellOutput(args.json), prefix="copilot-repl ")
        return 0
    if args.once is not None:
        session.chat = False
        once(session, args.once, args.json, args.suffix)
        return 0
    from copilot_repl.repl import run

    return run(session, history=not args.no_history, json_mode=args.json)


def main(argv: list[str] | None = None) -> int:
    # Completing is batch-1 work: numpy's BLAS threads only contend, and collapse under load (torch,
    # for training, keeps its own threads).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Ctrl-C must stop a completion or save a training run even when started from a background job,
    # whose SIGINT the shell set to "ignore" (Python then installs no KeyboardInterrupt handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        return _main(argv)
    except CopilotReplError as e:
        if debug:
            raise
        print(f"copilot-repl: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, UsageError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except BrokenPipeError:
        sys.stderr.close()  # a reader that went away (| head) is not an error
        return 0
    except Exception as e:  # the last line of defence: one line, unless --debug
        if debug:
            raise
        print(f"copilot-repl: {one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
