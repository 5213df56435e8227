"""``logos train``: fine-tune or train from scratch; ``logos train demo`` rebuilds the demo model.

Registered through the ``logos.commands`` entry point (pyproject.toml), so the engine never imports
training. Heavy imports (torch, transformers) happen inside the handlers.

    logos train --base HF_DIR|scratch --data FILE... --out DIR [--lora] [--steps N]
    logos train --base HF_DIR --project results.logos --out DIR --lora --export Q8_0
    logos train demo [--out DIR] [--minutes M] [--install]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a LOGOS model (LoRA or full) or train a small one from scratch",
        description="Train on LOGOS records from files (text: one record per line; JSONL/CSV with a "
                    "'record' field) or from a project's results. Rows the grammar cannot parse are "
                    "skipped and counted. Rerunning the same command resumes from the last checkpoint.")
    p.add_argument("--base", default="scratch", help="Hugging Face checkpoint directory, or 'scratch'")
    p.add_argument("--data", nargs="+", type=Path, default=[], metavar="FILE", help="training files")
    p.add_argument("--project", type=Path, help="a project file whose valid results are used as rows")
    p.add_argument("--out", type=Path, help="output directory (checkpoints, final/, GGUF)")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--block-size", type=int, default=None, help="tokens per training sequence")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where to train (default cpu; auto = CUDA when torch sees a GPU)")
    p.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default=None,
                   help="float32 (default); bfloat16: mixed precision (products in bfloat16, weights float32), "
                        "an error where the device lacks it; auto: bfloat16 where native")
    p.add_argument("--vocab-size", type=int, default=2048, help="BPE vocabulary size (scratch only)")
    p.add_argument("--config", type=Path, help="YAML training settings (command-line options win)")
    p.add_argument("--add-tags", action="store_true",
                   help="add missing LOGOS tags to the base tokenizer (embeddings are resized)")
    p.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --out")
    p.add_argument("--export", metavar="QUANT", help="after training: GGUF at QUANT (e.g. Q8_0), registered")
    p.add_argument("--val-fraction", type=float, default=None)
    p.set_defaults(func=run_train)
    sub = p.add_subparsers(dest="train_mode", metavar="MODE")
    d = sub.add_parser("demo", help="rebuild the bundled demonstration model from the registries' data")
    d.add_argument("--out", dest="demo_out", type=Path, default=None,
                   help="work directory (default: <cache>/demo-model)")
    d.add_argument("--minutes", type=float, default=None, help="training time budget in minutes (default 110)")
    d.add_argument("--steps", dest="demo_steps", type=int, default=None)
    d.add_argument("--device", dest="demo_device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where to train (default cpu)")
    d.add_argument("--precision", dest="demo_precision", choices=("float32", "bfloat16", "auto"), default=None,
                   help="training precision (default float32, as the shipped model; auto: bfloat16 mixed "
                        "precision where the CPU or GPU computes it natively)")
    d.add_argument("--install", action="store_true", help="copy the GGUF into resources/models")
    d.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    d.add_argument("--answer-only", action="store_true",
                   help="train reaction records on their answers only (not the default: see docs/benchmarks.md)")
    d.add_argument("--whole-records", action="store_true",
                   help="train reaction records whole (the default leaves out their first molecule block, "
                        "which opens like a molecule prompt: see docs/benchmarks.md)")
    d.add_argument("--layers", type=int, default=None, help="transformer layers (default 4)")
    d.add_argument("--windows", metavar="BxT", default=None,
                   help="training windows a step x tokens a window (default 32x128; 16x256 keeps the tokens "
                        "a step and reaches past long pocket prompts)")
    d.add_argument("--hold-out-complex", metavar="PDB", action="append", default=None,
                   help="a complex (PDB code, e.g. 1hvr) never trained on, in the held-out pockets (repeatable)")
    d.set_defaults(func=run_demo)


def _error(msg: str):
    from engine.cli import CliError

    return CliError(msg)


def _stop_flag():
    """A flag set by Ctrl-C (first press: stop after this step and save; second: abort)."""
    flag = threading.Event()

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print("\nstopping after this step (checkpoint will be saved; press Ctrl-C again to abort)",
              file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
    return flag


def _progress(ev: dict) -> None:
    if "loss" in ev:
        print(f"step {ev['step']}/{ev['steps']}  loss {ev['loss']:.4f}  {ev['tokens_per_s']:.0f} tok/s  "
              f"ETA {ev['eta_s'] / 60:.1f} min", file=sys.stderr, flush=True)
    elif "val_loss" in ev:
        print(f"step {ev['step']}  validation loss {ev['val_loss']:.4f}", file=sys.stderr, flush=True)


def _ask_add_tags(base: Path, missing: list[str]) -> bool:
    if not sys.stdin.isatty():
        return False
    ans = input(f"{base}: the tokenizer lacks {len(missing)} LOGOS tags ({' '.join(missing[:4])}...). "
                "Add them and resize the embeddings? [y/N] ")
    return ans.strip().lower() in ("y", "yes")


def build_config(args):
    from training.config import LoraConfig, TrainConfig

    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    cfg.base = args.base
    for name in ("steps", "batch_size", "block_size", "lr", "seed", "threads", "val_fraction", "device", "precision"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(cfg, name, value)
    if args.lora:
        cfg.lora = cfg.lora or LoraConfig(r=args.lora_r)
    return cfg


def run_train(args) -> int:
    if getattr(args, "train_mode", None):
        return 1
    from training import data as D
    from training import tokenizer as tk
    from training.checkpoint import NoDiskSpace
    from training.train import TrainingError, train

    if args.out is None:
        raise _error("--out DIR is required")
    if not args.data and not args.project:
        raise _error("give training rows with --data FILE... or --project FILE")
    if args.lora and args.base == "scratch":
        raise _error("--lora needs a --base checkpoint to adapt")
    try:
        cfg = build_config(args)
    except (ValueError, OSError) as exc:
        raise _error(str(exc)) from None
    report = D.BuildReport()
    try:
        rows = D.load_rows(args.data, report)
        if args.project:
            rows += D.project_rows(args.project, report)
    except (FileNotFoundError, ValueError) as exc:
        raise _error(str(exc)) from None
    skipped = sum(sum(c.values()) for c in report.skipped.values())
    print(f"rows: {len(rows)} kept, {skipped} skipped", file=sys.stderr)
    for line in report.examples[:10]:
        print(f"  skipped {line}", file=sys.stderr)
    if len(rows) < 2:
        raise _error("fewer than 2 valid rows to train on")
    split = D.split_rows(rows, cfg.val_fraction, cfg.seed)
    tokenizer = None
    add = args.add_tags
    if args.base == "scratch":
        tokenizer = tk.train_bpe(split.train, args.vocab_size)
    else:
        base = Path(args.base)
        if not (base / "config.json").is_file():
            raise _error(f"{base}: not a Hugging Face checkpoint directory (no config.json)")
        tokenizer = tk.load(base)
        missing = tk.missing_tags(tokenizer)
        if missing and not add:
            add = _ask_add_tags(base, missing)
            if not add:
                raise _error(f"{base}: the tokenizer lacks the LOGOS tags {' '.join(missing)}; "
                             "rerun with --add-tags to add them (the embeddings are resized)")
    from training import vocab_check

    report_v = vocab_check.check(tokenizer, split.train, context=cfg.block_size)
    print("vocabulary check: " + report_v.summary().replace("\n", "\n  "), file=sys.stderr)
    stop = _stop_flag()
    try:
        res = train(cfg, split.train, split.validation, args.out, tokenizer=tokenizer, on_progress=_progress,
                    should_stop=stop.is_set, add_missing_tags=add, resume=not args.no_resume)
    except NoDiskSpace as exc:
        raise _error(str(exc)) from None
    except TrainingError as exc:
        raise _error(str(exc)) from None
    if res.added_tags:
        print(f"added {len(res.added_tags)} LOGOS tags to the tokenizer", file=sys.stderr)
    print(f"{res.status} at step {res.step}: train loss {res.train_loss}, validation loss {res.val_loss}, "
          f"{res.tokens_seen} tokens, {res.tokens_per_s:.0f} tok/s", file=sys.stderr)
    if res.status == "cancelled":
        print(f"checkpoint {res.last_checkpoint}; rerun the same command to resume", file=sys.stderr)
        return 130
    if res.final_dir is not None:  # the card the converter embeds in every GGUF made from it
        _write_card(res.final_dir, split.train, args)
    if args.export and res.final_dir is not None:
        from training import export as X

        base_hash = X.folder_hash(Path(args.base)) if args.base != "scratch" else "scratch"
        out = X.export(res.final_dir, Path(args.out) / f"{Path(args.out).name}-{args.export.lower()}.gguf",
                       quant=args.export, provenance={
                           "base": args.base, "base_sha256": base_hash,
                           "data_sha256": _rows_hash(split.train), "hyperparameters": cfg.to_dict(),
                           "metrics": {"train_loss": res.train_loss, "val_loss": res.val_loss},
                           "rows": {"train": len(split.train), "validation": len(split.validation),
                                    "skipped": skipped}},
                       log=lambda m: print(m, file=sys.stderr))
        print(out)
    elif res.final_dir is not None:
        print(res.final_dir)
    return 0


def _write_card(final_dir: Path, rows: list[str], args) -> None:
    """``logos_card.json`` in the final checkpoint: the tasks whose records it was trained on, the
    base model's card for the others (when its folder has one), else not trained / unknown."""
    from engine.models.card import CARD_FILE, load_card_json
    from training.card import data_card, write_checkpoint_card

    base_card = None
    if args.base != "scratch" and (Path(args.base) / CARD_FILE).is_file():
        base_card = load_card_json(Path(args.base) / CARD_FILE)
    sources = ", ".join(Path(p).name for p in [*(args.data or []), *([args.project] if args.project else [])])
    path = write_checkpoint_card(final_dir, data_card(rows, sources, args.base, base_card))
    print(f"card: {path}", file=sys.stderr)


def _rows_hash(rows) -> str:
    from training.demo import data_hash

    return data_hash(rows)


def run_demo(args) -> int:
    from engine import paths
    from training import demo

    s = demo.DemoSettings()
    if args.minutes is not None:
        s.minutes = args.minutes
    if args.demo_steps is not None:
        s.train.steps = args.demo_steps
    if args.demo_device is not None:
        s.train.device = args.demo_device
    if args.demo_precision is not None:
        s.train.precision = args.demo_precision
    if args.answer_only and args.whole_records:
        raise _error("--answer-only and --whole-records are two recipes: choose one")
    if args.answer_only or args.whole_records:  # instead of the default first-block mask
        s.train.first_block_only = []
    if args.answer_only:
        s.train.answer_only = list(demo.ANSWER_ONLY_TAGS)
    if args.layers is not None:
        if args.layers < 1:
            raise _error("--layers must be at least 1")
        s.train.model.num_hidden_layers = args.layers
    if args.windows is not None:
        try:
            batch, block = (int(x) for x in args.windows.lower().split("x"))
        except ValueError:
            raise _error(f"--windows {args.windows}: give windows x tokens, e.g. 16x256") from None
        if batch < 1 or not 8 <= block <= s.train.model.max_position_embeddings:
            raise _error(f"--windows {args.windows}: at least 1 window of 8 to "
                         f"{s.train.model.max_position_embeddings} tokens (the model's context)")
        s.train.batch_size, s.train.block_size = batch, block
    if args.hold_out_complex:
        s.pocket_heldout = [c.strip().lower() for c in args.hold_out_complex]
    out = args.demo_out or (paths.cache_dir() / "demo-model")
    install = paths.resources_dir() / "models" if args.install else None
    try:
        summary = demo.run(out, s, log=lambda m: print(m, file=sys.stderr, flush=True), install=install,
                           evaluate=not args.no_eval)
    except Exception as exc:  # noqa: BLE001 - e.g. a data package missing: say which
        from engine.datasets import DatasetMissing
        from training.data_structures import UnknownComplex

        if isinstance(exc, DatasetMissing):
            raise _error(str(exc)) from None
        if isinstance(exc, UnknownComplex):
            raise _error(f"--hold-out-complex: {exc}") from None
        raise
    print(summary.get("installed") or summary["gguf"])
    return 0
