"""Commands about models: train, eval, average, models, tokenizers, show. Each is a `:command` and a subcommand."""

from __future__ import annotations

import argparse
import json
import re

from copilot_repl.commands.registry import Output, command
from copilot_repl.completion.session import Session
from copilot_repl.errors import CheckpointError, UsageError
from copilot_repl.wording import plural


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


def _plain_name(name: str) -> None:
    """A model's --name becomes paras/NAME: no path may hide in it."""
    if "/" in name or name in ("", ".", ".."):
        raise UsageError(f"--name {name!r} must be a plain name (it becomes paras/NAME)")


def _train_args(p: argparse.ArgumentParser) -> None:
    """Flags for every TrainConfig field; their defaults are TrainConfig's, the measured recipe."""
    from copilot_repl.devices import DEVICES
    from copilot_repl.training.recipe import FINE_TUNE_LR, OPTIMIZERS, SCRATCH_LR, TrainConfig
    from copilot_repl.training.sizing import DEFAULT, SHAPES

    d = TrainConfig()
    corpus_help = "files, folders, stdlib, site, datasets; SOURCE:N weighs a source N times"
    p.add_argument("--corpus", nargs="+", default=d.corpus, help=corpus_help)
    p.add_argument("--tokenizer", help="a tokenizer plugin: char, bpe (the default), tiktoken, ...")
    p.add_argument("--vocab-size", type=_positive(int), help="vocabulary size (default: the plugin's)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive(float), help="passes over the training tokens (default 1)")
    length.add_argument("--steps", type=_positive(int), help="optimizer steps")
    length.add_argument("--time", type=parse_duration, help="wall-clock budget, e.g. 10m")
    p.add_argument("--device", default=d.device, choices=DEVICES)
    for name in ("block_size", "grad_accum"):
        p.add_argument("--" + name.replace("_", "-"), type=_positive(int), default=getattr(d, name))
    shapes = "; ".join(f"{s.name}: {s.layers} x {s.dim}, {s.heads} heads, batch {s.batch_size}" for s in SHAPES)
    what = {"heads": "attention heads", "dim": "width", "batch_size": "windows per micro-batch"}
    p.add_argument(
        "--layers",
        type=_positive(int),
        help=f"blocks. Leave out all four shape flags and --time measures this machine and picks ({shapes}); "
        f"without --time the shape is {DEFAULT.name}",
    )
    for name, meaning in what.items():
        p.add_argument("--" + name.replace("_", "-"), type=_positive(int), help=f"{meaning} (see --layers)")
    rates = f"default {SCRATCH_LR:g}, or {FINE_TUNE_LR:g} with --init-from"
    p.add_argument("--lr", type=_positive(float), help=f"peak learning rate of AdamW ({rates})")
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS, help="muon: Muon for the block matrices")
    p.add_argument("--muon-lr", type=_positive(float), help=f"peak learning rate of Muon ({rates})")
    p.add_argument("--fim-rate", type=float, default=d.fim_rate, help="share of windows trained as fill-in-the-middle (0-1)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--name", default=d.name, help="save to paras/NAME")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue paras/NAME where it stopped")
    start.add_argument(
        "--init-from",
        metavar="MODEL",
        help="fine-tune: start from MODEL's weights (default, a NAME, or a folder), keeping its tokenizer and "
        "shape; more --layers than MODEL's grows it deeper",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the training step (needs a C++ compiler on a CPU)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


@command(
    "train",
    "train a model (from scratch, or from another with --init-from), save it under paras/NAME and make it active",
    _train_args,
    needs_model=False,
    replaces_model=True,
)
def train_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.training.distributed import world_from_env
    from copilot_repl.training.train import TrainConfig, train

    _plain_name(args.name)
    fields = {k: v for k, v in vars(args).items() if k not in ("json", "command_line")}
    made_by = {"command": args.command_line}
    result = train(TrainConfig(**fields, paras=session.paras), [out.train_callback()], session.command_started, made_by)
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
    p.add_argument("--sample", type=_positive(int), help="score an even sample of this many positions (default: all)")
    p.add_argument("--json", action="store_true")


@command("eval", "bits per byte on files, or on the held-out split: the model alone, and mixed with retrieval", _eval_args)
def eval_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.completion.scoring import score_texts

    if args.model:
        session.load(args.model)
    opened, engine = session.model(), session.engine
    texts, what = _texts_to_score(args.files, opened.meta, out)
    try:
        score = score_texts(engine, texts, args.sample)
    except ValueError:
        raise UsageError(f"nothing to score in {what}") from None
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    report = {"model": str(opened.directory), "data": what, "files": len(texts), "bytes": n_bytes} | _figures(score)
    try:
        base = _scored_base(opened.meta.get("base"), engine, texts, args.sample)
    except CheckpointError as e:
        base = None
        out.info(f"note: the base this model was fine-tuned from is not scored: {e}")
    if base:
        report["base"] = base
    if args.json or out.json_mode:
        out.result(json.dumps(report))
        return
    out.result(f"{_in_words(report)} on {what} ({plural(len(texts), 'file')}, {n_bytes:,} bytes)")
    if base:
        gain = 1 - report["bits_per_byte"] / base["bits_per_byte"]
        changed = " (trained again since: these are its new weights' figures)" if base["changed"] else ""
        than = f"{abs(gain):.1%} {'fewer' if gain >= 0 else 'more'} bits/byte than its base (model alone)"
        out.result(f"base {base['name']}{changed}: {_in_words(base)}; fine-tuned: {than}")


def _texts_to_score(files: list[str], meta: dict, out: Output) -> tuple[list[str], str]:
    """The files given, or else the held-out split of the corpus the model was trained on."""
    from copilot_repl import data

    if files:
        return list(data.gather(files).texts()), " ".join(files)
    spec = meta.get("corpus", {}).get("spec") or ["stdlib"]
    corpus = data.gather(spec)
    if corpus.fingerprint != meta.get("corpus", {}).get("fingerprint"):
        out.info("note: the corpus has changed since training; the held-out split may differ")
    return list(corpus.texts("val")), f"held-out split of {' '.join(spec)}"


def _figures(score) -> dict:
    return {
        "tokens": score.tokens,
        "positions": score.positions,
        "bits_per_byte": round(score.bits_per_byte, 4),
        "bits_per_byte_with_retrieval": round(score.with_retrieval, 4),
        "retrieval": score.retrieval,
    }


def _in_words(figures: dict) -> str:
    return (
        f"{figures['bits_per_byte']:.4f} bits/byte (model alone), "
        f"{figures['bits_per_byte_with_retrieval']:.4f} with retrieval ({figures['retrieval']})"
    )


def _scored_base(record: dict | None, engine, texts: list[str], sample: int | None) -> dict | None:
    """A fine-tuned model's base scored on the same texts with the same project index: what fine-tuning
    changed. None for a model trained from scratch."""
    from pathlib import Path

    from copilot_repl.completion.engine import load_engine
    from copilot_repl.completion.scoring import score_texts
    from copilot_repl.training.base import weights_fingerprint

    if not record:
        return None
    base_engine, _ = load_engine(Path(record["path"]))
    changed = weights_fingerprint(Path(record["path"])) != record.get("fingerprint")
    base_engine.project = engine.project  # the same tokenizer: the same index serves both
    return {"name": record.get("name"), "path": record["path"], "changed": changed} | _figures(
        score_texts(base_engine, texts, sample)
    )


# -- average -------------------------------------------------------------------------------------------
SCORED_BYTES = 96_000  # of held-out text the sources and their mean are compared on: half a minute each here


def _average_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="two or more checkpoints of one shape and tokenizer")
    p.add_argument("--name", required=True, help="save the average as paras/NAME")
    p.add_argument("--weights", nargs="+", type=_positive(float), metavar="W", help="each model's share (default: equal)")
    p.add_argument("--json", action="store_true")


@command(
    "average",
    "average the weights of models trained from one another (a model soup), save it under paras/NAME and make it active",
    _average_args,
    needs_model=False,
    replaces_model=True,
)
def average_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl import checkpoint
    from copilot_repl.completion.engine import load_engine
    from copilot_repl.completion.scoring import score_texts
    from copilot_repl.training.average import open_sources, save_average

    _plain_name(args.name)
    sources = open_sources(args.models, args.weights, session.paras)
    target = checkpoint.target(args.name, session.paras)
    if any(target.resolve() == s.opened.directory.resolve() for s in sources):
        raise UsageError(f"--name {args.name} would overwrite a model it averages; choose another name")
    texts, what = _texts_to_score([], sources[0].opened.meta, out)
    texts = _even_share(texts, SCORED_BYTES)
    directory = save_average(sources, target, {"command": args.command_line})
    scores = {}
    for label, path in [*((s.ref, s.opened.directory) for s in sources), (args.name, directory)]:
        out.info(f"scoring {label} on {what} ...")
        scores[label] = round(score_texts(load_engine(path)[0], texts).bits_per_byte, 4)
    session.load(str(directory))
    best = min(scores, key=scores.__getitem__)
    if args.json or out.json_mode:
        out.result(json.dumps({"path": str(directory), "data": what, "bits_per_byte": scores, "best": best}))
        return
    figures = ", ".join(f"{label} {bpb:.4f}" for label, bpb in scores.items())
    kept = f"tokenizer, index, gate and confidence of {sources[0].ref}"  # the first model's, whatever the others hold
    out.result(f"saved {directory} ({kept}); bits/byte (model alone) on {_kb(texts)} of the {what}: {figures}")
    if best != args.name:
        out.info(f"note: {best} alone scores better than the average on this text")


def _even_share(texts: list[str], budget: int) -> list[str]:
    """Every k-th file, k chosen so that about `budget` bytes are kept (all files when they are fewer)."""
    total = sum(len(t.encode("utf-8")) for t in texts)
    return texts[:: max(1, round(total / budget))]


def _kb(texts: list[str]) -> str:
    return f"{sum(len(t.encode('utf-8')) for t in texts) / 1000:,.0f} kB"


# -- models, tokenizers, show -----------------------------------------------------------------------
def training_bpb(metrics: dict) -> str:
    bpb = metrics.get("val_bpb")
    return "no held-out figure" if bpb is None else f"{bpb:.3f} bits/byte held out (at training's end, its own windows)"


@command("models", "list checkpoints under paras/: size, tokenizer, val bits/byte, date")
def models_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    import datetime

    from copilot_repl import checkpoint

    rows = []
    root = checkpoint.paras_dir(session.paras)
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    named = [(p.name, p) for p in dirs]
    if not any(name == checkpoint.DEFAULT_NAME for name, _ in named):
        named.append((checkpoint.DEFAULT_NAME, checkpoint.shipped_default()))
    for name, d in named:
        try:
            meta = checkpoint.read_meta(d)
        except Exception:
            continue
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6
        date = datetime.datetime.fromtimestamp((d / checkpoint.META).stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        bpb = meta.get("metrics", {}).get("val_bpb")
        bpb_text = "-" if bpb is None else f"{bpb:.3f}"
        rows.append(f"{name:<16} {size:6.1f} MB  {meta['tokenizer']['name']:<9} {bpb_text:>6}  {date}  {d}")
    header = f"{'name':<16} {'size':>9}  {'tokenizer':<9} {'val*':>6}  {'saved':<16}  path"
    note = "* held-out bits/byte at training's end (its own windows; `eval` reads every position: a little lower)"
    out.result("\n".join([header, *rows, note]) if rows else f"no checkpoints under {root}/")


@command("tokenizers", "list the registered tokenizer plugins and where each comes from")
def tokenizers_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl.plugins import tokenizer_sources

    out.result("\n".join(f"{name:<12} {origin}" for name, origin in sorted(tokenizer_sources().items())))


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="a checkpoint directory, or NAME under paras/ (default: the active one)")


@command("show", "the active model: config, parameters, tokenizer, corpus and training metrics", _model_arg)
def show_command(session: Session, args: argparse.Namespace, out: Output) -> None:
    from copilot_repl import checkpoint

    if args.model:
        session.load(args.model)
    loaded, engine = session.model(), session.engine
    meta, shape = loaded.meta, loaded.meta["model"]
    metrics, corpus = meta.get("metrics", {}), meta.get("corpus", {})
    indexes = [f"{len(i.reversed):,} tokens" for i in [*engine.indexes, engine.project] if i is not None]
    rows = [
        ("model", f"{checkpoint.model_name(loaded.directory)} ({loaded.directory})"),
        (
            "parameters",
            f"{engine.runtime.num_params():,}: {shape['n_layer']} layers x {shape['n_embd']}, {shape['n_head']} heads, "
            f"context {shape['block_size']}",
        ),
        ("tokenizer", f"{meta['tokenizer']['name']}, {loaded.tokenizer.vocab_size:,} ids"),
        ("device", f"{session.device} ({engine.runtime.name} runtime)"),
        ("corpus", " ".join(corpus.get("spec", [])) or "?"),
    ]
    if metrics:
        took = f"{metrics.get('wall_time_s', 0) / 60:.0f} min" if metrics.get("wall_time_s") else "?"
        rows.append(
            (
                "trained",
                f"{metrics.get('step', 0):,} steps, {metrics.get('tokens_seen', 0) / 1e6:.1f}M tokens, {took}: "
                f"{training_bpb(metrics)}",
            )
        )
    rows.append(("retrieval", f"indexes of {' and '.join(indexes)}" if indexes else "buffer cache only"))
    for key in ("retrieval", "confidence"):
        fitted = (meta.get(key) or {}).get("fitted_on", {})
        if "package" in fitted:
            rows.append((f"{key} fit", f"on {fitted['package']}, away from home"))
    if meta.get("made_by", {}).get("command"):
        rows.append(("made by", meta["made_by"]["command"]))
    lines = [f"{name:<16}{value}" for name, value in rows]
    out.result("\n".join(lines))
