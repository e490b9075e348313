"""Commands about the session itself: settings, models, and the completion history. Most make sense
only in the REPL (and batch mode), so they are not shell subcommands."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from copilot_repl.commands import COMMANDS, Output, Quit, command
from copilot_repl.errors import UsageError
from copilot_repl.session import Session


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
    lines = [f":{c.name:<11} {c.summary}" for c in COMMANDS.values()]
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
    from copilot_repl.settings import SETTINGS

    if args.name is None:
        sampling = session.sampling
        rows = [(name, repr(getattr(sampling, name)), f"({session.source(name)})", s.help) for name, s in SETTINGS.items()]
        out.result("\n".join(f"{name:<12} {value:<14} {source:<13} {help}" for name, value, source, help in rows))
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


@command("load", "load a checkpoint and the tokenizer saved beside it", _path_arg, repl_only=True, needs_model=False)
def load_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    directory = session.load(args.path)
    out.info(f"loaded {directory} ({session.loaded.model.num_params():,} parameters, {session.loaded.tokenizer.name})")


def _save_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a directory or NAME under paras/ (default: where it was loaded from)")


@command("save", "save the active model, with the current sampling settings as its defaults", _save_args, repl_only=True)
def save_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl import checkpoint

    loaded = session.model()
    if args.path is None and loaded.directory.resolve() == checkpoint.shipped_default().resolve():
        raise UsageError(":save needs a PATH or NAME: the shipped default model is read-only")
    target = (
        loaded.directory
        if args.path is None
        else Path(args.path)
        if "/" in args.path
        else checkpoint.paras_dir(session.paras) / args.path
    )
    keep = {k: v for k, v in loaded.meta.items() if k not in ("format", "model", "tokenizer", "versions")}
    generation = {**keep.get("generation", {}), **{k: getattr(session.sampling, k) for k in session.layers["set"]}}
    checkpoint.save(
        target,
        loaded.model,
        loaded.tokenizer,
        {**keep, "generation": generation},
        checkpoint.load_optimizer_state(loaded.directory),
    )
    out.info(f"saved {target}")


def _text_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", help="text to split into tokens")


@command("tokenize", "show how the active tokenizer splits TEXT, with the ids", _text_args, repl_only=True)
def tokenize_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    tokenizer = session.model().tokenizer
    ids = tokenizer.encode(" ".join(args.text))
    pieces = [tokenizer.token_bytes(i).decode("utf-8", errors="backslashreplace") for i in ids]
    out.tokens(pieces, ids)


# -- completions: regen, more, read, edit, clear ---------------------------------------------------------
@command("regen", "complete the last prompt again (a new sample unless the seed is fixed)", repl_only=True)
def regen_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    if session.last_prompt is None:
        raise UsageError("nothing to regenerate yet: type a prompt first")
    out.complete(session, session.last_prompt)


@command("more", "continue the last completion", repl_only=True)
def more_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    if session.last_prompt is None:
        raise UsageError("nothing to continue yet: type a prompt first")
    out.complete(session, session.last_prompt + session.last_completion)


@command("next", "show the next best-of-n candidate of the last prompt (see :set n)", repl_only=True, needs_model=False)
def next_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    if len(session.candidates) < 2:
        raise UsageError("no other candidates: :set n 4 (or more), then type a prompt")
    session.candidate_index = (session.candidate_index + 1) % len(session.candidates)
    session.last_completion = session.candidates[session.candidate_index].text
    out.show_candidate(session)


def _file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a text file")


@command("read", "use a file's contents as the prompt", _file_arg, repl_only=True)
def read_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    try:
        text = Path(args.file).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {args.file}: {getattr(e, 'strerror', None) or e}") from None
    out.complete(session, text)


@command("edit", "edit the last prompt in $EDITOR; the result comes back as the next input", repl_only=True, needs_model=False)
def edit_command(session: Session, args: argparse.Namespace, out: Output) -> None:
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
    out.clear()
