"""The command layer: one registry and one argparse parser per command, shared by the REPL
(`:train ...`) and the shell (`copilot-repl train ...`). Handlers report through an `Output`."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from copilot_repl.errors import UsageError
from copilot_repl.session import Session


class Output(Protocol):
    """Where a command's results go; the shell and the REPL each provide one."""

    json_mode: bool

    def result(self, text: str) -> None: ...  # the answer (stdout in the shell)
    def info(self, text: str) -> None: ...  # status and notices (stderr in the shell)
    def train_callback(self) -> Callable[[str, dict], None]: ...
    def complete(self, session: Session, prompt: str) -> None: ...  # stream a completion of `prompt`
    def next_input(self, text: str) -> None: ...  # pre-fill the next prompt (REPL only)
    def clear(self) -> None: ...
    def tokens(self, pieces: list[str], ids: list[int]) -> None: ...  # show a tokenization
    def show_candidate(self, session: Session) -> None: ...  # show session.candidates[session.candidate_index]


class Quit(Exception):
    """Raised by :quit; the REPL ends with exit code 0."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we raise instead
        raise UsageError(f"{self.prog}: {message}")


@dataclass
class Command:
    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Session, argparse.Namespace, Output], None]
    repl_only: bool = False  # meaningless as a shell subcommand (:more, :edit, ...)
    needs_model: bool = True  # the REPL waits for the background model load first

    def parser(self, prefix: str = ":") -> argparse.ArgumentParser:
        parser = _Parser(prog=f"{prefix}{self.name}", description=self.summary, add_help=False, exit_on_error=False)
        self.add_arguments(parser)
        return parser

    def help(self, prefix: str = ":") -> str:
        return self.parser(prefix).format_help().rstrip()


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, add_arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None, **flags):
    def register(run):
        COMMANDS[name] = Command(name, summary, add_arguments, run, **flags)
        return run

    return register


def run_command(session: Session, name: str, argv: list[str], out: Output, prefix: str = ":") -> None:
    if name not in COMMANDS or (prefix != ":" and COMMANDS[name].repl_only):
        raise UsageError(f"unknown command {prefix}{name}; {'copilot-repl --help' if prefix != ':' else ':help'} lists them")
    cmd = COMMANDS[name]
    try:
        args = cmd.parser(prefix).parse_args(argv)
    except argparse.ArgumentError as e:
        raise UsageError(f"{prefix}{name}: {e}") from None
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


def run_line(session: Session, line: str, out: Output) -> None:
    words = split_line(line)
    run_command(session, words[0], words[1:], out)


# -- train --------------------------------------------------------------------------------------------
def parse_duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 90s, 10m, 1.5h)")
    return float(m.group(1)) * {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    parse.__name__ = kind.__name__
    return parse


def _train_args(p: argparse.ArgumentParser) -> None:
    from copilot_repl.devices import DEVICES

    p.add_argument("--corpus", nargs="+", default=["stdlib"], help="files, folders of .py, `stdlib` or `site`")
    p.add_argument("--tokenizer", default="bpe", help="a tokenizer plugin: char, bpe, tiktoken, ...")
    p.add_argument("--vocab-size", type=_positive(int), help="vocabulary size (default: the plugin's)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive(float), help="passes over the training tokens (default 1)")
    length.add_argument("--steps", type=_positive(int), help="optimizer steps")
    length.add_argument("--time", type=parse_duration, help="wall-clock budget, e.g. 10m")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--batch-size", type=_positive(int), default=16)
    p.add_argument("--block-size", type=_positive(int), default=256, help="context length in tokens")
    p.add_argument("--layers", type=_positive(int), default=4)
    p.add_argument("--heads", type=_positive(int), default=4)
    p.add_argument("--dim", type=_positive(int), default=128)
    p.add_argument("--lr", type=_positive(float), default=3e-3)
    p.add_argument("--grad-accum", type=_positive(int), default=1, help="micro-batches per optimizer step")
    p.add_argument("--fim-rate", type=float, default=0.0, help="share of windows trained as fill-in-the-middle (0-1)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--name", default="model", help="save to paras/NAME")
    p.add_argument("--resume", action="store_true", help="continue paras/NAME where it stopped")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


@command("train", "train a model from scratch, save it under paras/NAME and make it active", _train_args)
def train_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.distributed import world_from_env
    from copilot_repl.train import TrainConfig, train

    if "/" in args.name or args.name in ("", ".", ".."):
        raise UsageError(f"--name {args.name!r} must be a plain name (it becomes paras/NAME)")
    fields = {k: v for k, v in vars(args).items() if k != "json"}
    result = train(TrainConfig(**fields, paras=session.paras), [out.train_callback()])
    if not world_from_env().is_main:
        return  # under torchrun, rank 0 speaks for all
    note = "interrupted; " if result.interrupted else ""
    out.info(f"{note}saved {result.directory} at step {result.step}: val {result.val_bpb:.3f} bits/byte")
    session.load(str(result.directory))
    if args.json or out.json_mode:
        out.result(
            json.dumps(
                {
                    "path": str(result.directory),
                    "step": result.step,
                    "val_bpb": result.val_bpb,
                    "tokens_per_second": result.tokens_per_second,
                    "interrupted": result.interrupted,
                }
            )
        )


# -- eval ---------------------------------------------------------------------------------------------
def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", help="files or folders to score (default: the held-out split)")
    p.add_argument("--model", help="checkpoint to score (default: the active one)")
    p.add_argument("--json", action="store_true")


@command("eval", "bits per byte and next-token accuracy on files, or on the held-out split", _eval_args)
def eval_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl import data
    from copilot_repl.evaluate import bits_per_byte, mean_loss

    if args.model:
        session.load(args.model)
    loaded = session.model()
    if args.files:
        corpus = data.gather(args.files)
        texts, what = corpus.train + corpus.val, " ".join(args.files)
    else:
        spec = loaded.meta.get("corpus", {}).get("spec") or ["stdlib"]
        corpus = data.gather(spec)
        texts, what = corpus.val, f"held-out split of {' '.join(spec)}"
        if corpus.fingerprint != loaded.meta.get("corpus", {}).get("fingerprint"):
            out.info("note: the corpus has changed since training; the held-out split may differ")
    tokens = data.encode_docs(loaded.tokenizer, texts, "int64")
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    loss, accuracy = mean_loss(loaded.model, tokens, 16)
    bpb = bits_per_byte(loss, len(tokens), n_bytes)
    report = {
        "model": str(loaded.directory),
        "data": what,
        "files": len(texts),
        "bytes": n_bytes,
        "tokens": len(tokens),
        "bits_per_byte": round(bpb, 4),
        "accuracy": round(accuracy, 4),
    }
    if args.json or out.json_mode:
        out.result(json.dumps(report))
    else:
        out.result(f"{bpb:.4f} bits/byte, {accuracy:.1%} next-token accuracy on {what} ({len(texts)} files, {n_bytes:,} bytes)")


# -- models, tokenizers, show -----------------------------------------------------------------------
@command("models", "list checkpoints under paras/: size, tokenizer, val bits/byte, date")
def models_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    import datetime

    from copilot_repl import checkpoint

    rows = []
    root = checkpoint.paras_dir(session.paras)
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not any(p.name == "default" for p in dirs):
        dirs.append(checkpoint.shipped_default())
    for d in dirs:
        try:
            meta = checkpoint.read_meta(d)
        except Exception:
            continue
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6
        date = datetime.datetime.fromtimestamp((d / checkpoint.META).stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        bpb = meta.get("metrics", {}).get("val_bpb")
        rows.append(
            f"{d.name:<16} {size:6.1f} MB  {meta['tokenizer']['name']:<9} "
            f"{bpb if bpb is None else round(bpb, 3)!s:>6} bits/byte  {date}  {d}"
        )
    out.result("\n".join(rows) if rows else f"no checkpoints under {root}/")


@command("tokenizers", "list the registered tokenizer plugins and where each comes from")
def tokenizers_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.plugins import tokenizer_sources

    out.result("\n".join(f"{name:<12} {origin}" for name, origin in sorted(tokenizer_sources().items())))


@command("show", "the active model: config, parameters, tokenizer, corpus and training metrics")
def show_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    loaded = session.model()
    meta = loaded.meta
    lines = [
        f"model      {loaded.directory}",
        f"params     {loaded.model.num_params():,}  ({', '.join(f'{k}={v}' for k, v in meta['model'].items())})",
        f"tokenizer  {meta['tokenizer']['name']} ({loaded.tokenizer.vocab_size} ids)",
        f"device     {next(loaded.model.parameters()).device}",
        f"corpus     {' '.join(meta.get('corpus', {}).get('spec', []))} ({meta.get('corpus', {}).get('fingerprint', '?')})",
        f"metrics    {json.dumps(meta.get('metrics', {}))}",
        f"made by    {json.dumps(meta.get('made_by', {}))}",
    ]
    out.result("\n".join(lines))


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
