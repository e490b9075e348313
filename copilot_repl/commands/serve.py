"""`copilot-repl serve`: a shell command only (it holds the terminal until stopped)."""

from __future__ import annotations

import argparse
import sys

from copilot_repl.commands.registry import Output, command
from copilot_repl.completion.session import Session


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--model", help="checkpoint directory or NAME under paras/ (default: the active one)")
    p.add_argument("--index", nargs="+", metavar="PATH", help="files or folders of your project: copied from, names finished")
    p.add_argument("--log", action="store_true", help="a line per request on stderr (the default on a terminal)")


@command("serve", "serve completions over an OpenAI-compatible HTTP API (/v1/completions)", _serve_args, shell_only=True)
def serve_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.completion.confidence import SERVE_MIN_CONFIDENCE
    from copilot_repl.errors import UsageError
    from copilot_repl.server import serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        out.info(f"warning: binding {args.host}: anyone who can reach this address can use the model")
    if args.model:
        session.load(args.model)
    if args.index:
        out.info(f"indexed {session.add_index(args.index)}")
    session.chat = False
    if session.source("min_confidence") == "built-in":  # an editor asks at every key: doubtful ones are noise
        session.layers["flag"]["min_confidence"] = SERVE_MIN_CONFIDENCE
    try:
        log = out.info if args.log or sys.stderr.isatty() else None
        serve(session, args.host, args.port, out.info, log)
    except OSError as e:
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    out.info("stopped")
