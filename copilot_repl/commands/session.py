"""Commands about the session itself: settings, models, and the completion history. Most make sense
only in the REPL (and batch mode), so they are not shell subcommands."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from copilot_repl.commands.registry import COMMANDS, Output, Quit, SessionOutput, command
from copilot_repl.completion.session import Session
from copilot_repl.errors import UsageError


# -- the session: help, quit, settings, models ---------------------------------------------------------
def _help_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a command")


@command("help", "list the commands, or show one command's options", _help_args, repl_only=True, needs_model=False)
def help_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    if args.name:
        name = args.name.lstrip(":/")
        if name not in COMMANDS:
            raise UsageError(f"no command :{name}; :help lists them")
        out.result(COMMANDS[name].help())
        return
    lines = [f":{c.name:<11} {c.summary}" for c in COMMANDS.values() if not c.shell_only]
    lines += [
        "",
        "Anything else is Python to complete. Enter submits; Esc-Enter or Ctrl-J adds a line;",
        "Ctrl-C stops a completion or training; Ctrl-D or :quit exits. `/` works in place of `:`.",
    ]
    out.result("\n".join(lines))


@command("quit", "leave copilot-repl", repl_only=True, needs_model=False)
def quit_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    raise Quit()


def _set_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a setting")
    p.add_argument("value", nargs="*", help="its new value")


@command(
    "set",
    "change a sampling setting; alone, list every setting and where it came from",
    _set_args,
    repl_only=True,
    needs_model=False,
)
def set_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.completion.settings import SETTINGS

    if args.name is None:
        sampling = session.sampling
        rows = [(name, repr(getattr(sampling, name)), f"({session.source(name)})", s.help) for name, s in SETTINGS.items()]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        out.result("\n".join(f"{n:<{widths[0]}}  {v:<{widths[1]}}  {s:<{widths[2]}}  {h}" for n, v, s, h in rows))
        return
    if not args.value:
        raise UsageError(f":set {args.name} needs a value")
    value = session.set(args.name, " ".join(args.value))
    out.info(f"{args.name} = {value!r}")


def _unset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a setting")


@command(
    "unset",
    "undo :set for a setting (back to flag, checkpoint, config or built-in value)",
    _unset_args,
    repl_only=True,
    needs_model=False,
)
def unset_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    session.unset(args.name)
    out.info(f"{args.name} = {getattr(session.sampling, args.name)!r} ({session.source(args.name)})")


def _path_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a checkpoint directory, or NAME under paras/")


@command(
    "load",
    "load a checkpoint and the tokenizer saved beside it",
    _path_arg,
    repl_only=True,
    needs_model=False,
    replaces_model=True,
)
def load_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.checkpoint import model_name

    directory = session.load(args.path)
    params, tokenizer = session.engine.runtime.num_params(), session.opened.tokenizer.name
    out.info(f"loaded {model_name(directory)} ({directory}; {params:,} parameters, {tokenizer})")


def _save_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a directory or NAME under paras/ (default: where it was loaded from)")


@command("save", "save the active model, with the current sampling settings as its defaults", _save_args, repl_only=True)
def save_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl import checkpoint, checkpoint_write

    source = session.model().directory
    if args.path is None and source.resolve() == checkpoint.shipped_default().resolve():
        raise UsageError(":save needs a PATH or NAME: the shipped default model is read-only")
    target = (
        source if args.path is None else Path(args.path) if "/" in args.path else checkpoint.paras_dir(session.paras) / args.path
    )
    checkpoint_write.save_copy(source, target, {k: getattr(session.sampling, k) for k in session.layers["set"]})
    out.info(f"saved {target}")


def _text_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", help="text to split into tokens")


@command("tokenize", "show how the active tokenizer splits TEXT, with the ids", _text_args, repl_only=True)
def tokenize_command(session: Session, args: argparse.Namespace, out: SessionOutput) -> None:
    tokenizer = session.model().tokenizer
    ids = tokenizer.encode(" ".join(args.text))
    pieces = [tokenizer.token_bytes(i).decode("utf-8", errors="backslashreplace") for i in ids]
    out.tokens(pieces, ids)


# -- completions and the context: regen, more, next, read, edit, reset, context, index --------------------
@command("regen", "complete the last prompt again (a new sample unless the seed is fixed)", repl_only=True)
def regen_command(session: Session, args: argparse.Namespace, out: SessionOutput) -> None:
    out.show(session.regen())


@command("more", "continue the last completion", repl_only=True)
def more_command(session: Session, args: argparse.Namespace, out: SessionOutput) -> None:
    out.show(session.more())


@command("next", "show the next best-of-n candidate of the last prompt (see :set n)", repl_only=True, needs_model=False)
def next_command(session: Session, args: argparse.Namespace, out: SessionOutput) -> None:
    out.show_candidate(session.next_candidate())


@command("reset", "start a fresh context: forget the code of the session so far", repl_only=True, needs_model=False)
def reset_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    forgotten = session.reset()
    out.info(f"fresh context ({forgotten} prompt{'s' if forgotten != 1 else ''} forgotten)")


@command("context", "show the code the model sees before the next prompt", repl_only=True)
def context_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    context = session.context()
    tokens = len(session.model().tokenizer.encode(context)) if context else 0
    window = session.opened.config.block_size
    out.result(context.rstrip("\n") if context else "(empty: the next prompt starts a file)")
    out.info(f"{tokens} tokens of context; the model reads the last {window} tokens of context + prompt")


def _index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="files or folders of .py to copy from")


@command("index", "let completions copy from your own files and folders", _index_args, repl_only=True)
def index_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    out.info(f"indexed {session.add_index(args.paths)}")


def _file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a text file")


@command("read", "use a file's contents as the prompt", _file_arg, repl_only=True)
def read_command(session: Session, args: argparse.Namespace, out: SessionOutput) -> None:
    try:
        text = Path(args.file).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {args.file}: {getattr(e, 'strerror', None) or e}") from None
    out.show(session.submit(text))


@command("edit", "edit the last prompt in $EDITOR; the result comes back as the next input", repl_only=True, needs_model=False)
def edit_command(session: Session, args: argparse.Namespace, out: SessionOutput) -> None:
    import os
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".py", delete=False, encoding="utf-8") as f:
        f.write(session.last_prompt or "")
    try:
        if subprocess.call([*shlex.split(editor), f.name]) != 0:
            raise UsageError(f"{editor} exited with an error; nothing changed")
        out.next_input(Path(f.name).read_text(encoding="utf-8").rstrip("\n"))
    except FileNotFoundError:
        raise UsageError(f"editor {editor!r} not found; set $EDITOR") from None
    finally:
        os.unlink(f.name)


@command("clear", "clear the screen", repl_only=True, needs_model=False)
def clear_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    if sys.stdout.isatty():
        out.result("\x1b[H\x1b[2J")
