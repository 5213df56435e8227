"""``logos models ...``: the model registry, GGUF checks, conversion, quantisation, parity.

    logos models list [--json]
    logos models import GGUF [--reference] [--name NAME] [--default] [--json]
    logos models remove MODEL [--keep-file | --delete-file]
    logos models default [MODEL] [--json]
    logos models info GGUF [--no-hash] [--json]        (with the card per task under "tasks")
    logos models card MODEL [--json] [--set CARD.json]
    logos models verify MODEL
    logos models convert HF_DIR OUT.gguf [--quant Q8_0|Q5_K_M|Q4_K_M|F16] [--outtype f16|f32|bf16] [--register]
    logos models quantize IN.gguf OUT.gguf --quant Q4_K_M [--register]
    logos models check GGUF --hf HF_DIR [--json] [--corpus FILE] [--quants F16,Q8_0,Q5_K_M,Q4_K_M]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from engine.cli import CliError

QUANT_CHOICES = ["F16", "Q8_0", "Q5_K_M", "Q4_K_M", "Q6_K", "BF16", "F32"]


def _progress(quiet: bool = False):
    """A one-line progress printer on stderr (stage, percent, rate)."""
    if quiet or not sys.stderr.isatty():
        return None
    state = {"t0": time.perf_counter(), "last": 0.0}

    def show(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - state["last"] < 0.1 and done < total:
            return
        state["last"] = now
        pct = 100.0 * done / total if total else 0.0
        sys.stderr.write(f"\r{stage:<16} {pct:5.1f}%  {now - state['t0']:6.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} K"


def _user_errors():
    from engine.modelfiles.errors import ModelFileError
    from engine.models.registry import RegistryError

    return (ModelFileError, RegistryError, FileNotFoundError, ValueError)


def _refused(action: str, exc: Exception) -> int:
    """A model file we cannot use (a damaged, partial or crafted GGUF): one line naming the file,
    the offset and the field, exit code 1."""
    print(f"logos models {action}: error: {exc}", file=sys.stderr)
    return 1


def _entry_line(e, default_id) -> str:
    mark = "*" if e.id == default_id else " "
    tags = "tags ok" if e.tags_single else f"tags split: {len(e.tags_missing)}"
    missing = "" if e.exists else "  [FILE MISSING]"
    return (f"{mark} {e.id:<28} {e.architecture:<7} {e.quant:<7} {_params(e.n_params):>9} {_human(e.size):>9}  "
            f"ctx {e.context_length or '?':<6} {tags:<14} {e.sha256[:12]}  {e.path}{missing}")


def cmd_list(args) -> int:
    from engine.models.registry import Registry

    reg = Registry()
    entries = reg.list()
    default = reg.default()
    if args.json:
        print(json.dumps({"default": default.id if default else None,
                          "models": [dict(e.as_dict(), exists=e.exists) for e in entries]}, indent=2))
        return 0
    if not entries:
        print(f"no models registered ({reg.root}); add one with: logos models import FILE.gguf")
        return 0
    for e in entries:
        print(_entry_line(e, default.id if default else None))
    return 0


def cmd_import(args) -> int:
    from engine.modelfiles.errors import ModelFileError
    from engine.models.registry import Registry

    reg = Registry()
    try:
        entry = reg.import_file(args.path, copy=not args.reference, name=args.name, progress=_progress(args.json))
        if args.default:
            reg.set_default(entry.id)
    except ModelFileError as exc:
        return _refused("import", exc)
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(entry.as_dict(), indent=2))
    else:
        how = "referenced" if not entry.managed else "copied"
        print(f"registered {entry.id} ({how}; {entry.architecture}, {entry.quant}, {_params(entry.n_params)}, "
              f"sha256 {entry.sha256})")
        if not entry.tags_single:
            print(f"warning: these LOGOS tags are not single tokens in this model: {', '.join(entry.tags_missing)}")
    return 0


def cmd_remove(args) -> int:
    from engine.models.registry import Registry

    delete = True if args.delete_file else False if args.keep_file else None
    try:
        entry = Registry().remove(args.model, delete_file=delete)
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    gone = not Path(entry.path).exists()
    print(f"removed {entry.id}" + (f" and deleted {entry.path}" if gone else f" (file kept: {entry.path})"))
    return 0


def cmd_default(args) -> int:
    from engine.models.registry import Registry, default_model

    reg = Registry()
    if args.model:
        try:
            entry = reg.set_default(args.model)
        except _user_errors() as exc:
            raise CliError(str(exc)) from None
        print(f"default model: {entry.id} ({entry.path})")
        return 0
    entry = reg.default()
    path = default_model()
    if args.json:
        print(json.dumps({"default": entry.id if entry else None, "path": str(path) if path else None,
                          "source": "registry" if entry and entry.exists else "bundled" if path else None}))
    elif path is None:
        print("no default model (none registered, no demonstration model bundled)")
    else:
        print(f"{entry.id if entry and entry.exists else 'bundled demonstration model'}: {path}")
    return 0


def cmd_info(args) -> int:
    from engine.modelfiles.errors import ModelFileError
    from engine.modelfiles.gguf_info import inspect_gguf

    try:
        info = inspect_gguf(args.path, with_hash=not args.no_hash, progress=_progress(args.json))
    except ModelFileError as exc:
        return _refused("info", exc)
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    from engine.models.registry import card_for

    try:
        card = card_for(info.path, sha256=info.sha256)
    except ModelFileError as exc:
        return _refused("info", exc)
    if args.json:
        print(json.dumps(dict(info.as_dict(), card={k: v for k, v in card.as_dict().items() if k != "tasks"},
                              tasks=card.as_dict()["tasks"]), indent=2, ensure_ascii=False))
        return 0
    print(f"{info.path}")
    print(f"  architecture   {info.architecture} ({info.name})")
    print(f"  parameters     {_params(info.n_params)}  ({info.n_params:,})")
    print(f"  quantisation   {info.quant}")
    print(f"  context        {info.context_length}")
    print(f"  size           {_human(info.size)}")
    print(f"  tokenizer      {info.tokenizer} / {info.pre_tokenizer}, {info.n_vocab} tokens, "
          f"BOS {'added' if info.add_bos else 'not added'}")
    if info.sha256:
        print(f"  sha256         {info.sha256}")
    split = [t for t, v in info.tags.items() if not v["single"]]
    print(f"  LOGOS tags     {'all single tokens' if not split else 'NOT single tokens: ' + ', '.join(split)}")
    _print_card(card)
    return 0


def _print_card(card) -> None:
    """The card as a table: task, status, what the Generate panel shows."""
    where = {"gguf": "in the GGUF", "sidecar": "registry sidecar", "none": "none"}[card.origin]
    print(f"  card           {where}" + (f": {card.summary}" if card.summary else ""))
    if card.source:
        print(f"                 {card.source}")
    print(f"  {'task':<14} {'status':<12} figures / what to expect")
    for name, t in card.tasks.items():
        print(f"  {name:<14} {t.status:<12} {t.line()}")
        for d in t.details() if t.status != "unknown" else ():
            print(f"  {'':<14} {'':<12}   {d}")


def cmd_card(args) -> int:
    """Show a model's card, or set the registry's sidecar card of an imported model."""
    from engine.modelfiles.errors import ModelFileError
    from engine.models.card import load_card_json
    from engine.models.registry import card_for
    from engine.models.registry import Registry

    reg = Registry()
    try:
        if args.set:
            card = load_card_json(args.set)
            entry = reg.get(args.model)
            path = reg.set_card(entry.id, card)
            print(f"card of {entry.id} written to {path}")
            return 0
        ref = Path(args.model)
        if ref.is_file():
            card = card_for(ref, registry=reg)
        else:
            entry = reg.get(args.model)
            card = card_for(entry.path, sha256=entry.sha256, registry=reg)
    except ModelFileError as exc:
        return _refused("card", exc)
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(card.as_dict(), indent=2, ensure_ascii=False))
    else:
        _print_card(card)
    return 0


def cmd_verify(args) -> int:
    from engine.models.registry import Registry

    try:
        ok, msg = Registry().verify(args.model, progress=_progress())
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    print(msg)
    return 0 if ok else 1


def _register(path: Path, base: str | None = None) -> None:
    from engine.models.registry import Registry

    entry = Registry().import_file(path, copy=False, base=base)
    print(f"registered {entry.id} (referenced, sha256 {entry.sha256[:12]}…)")


def cmd_convert(args) -> int:
    from engine.models.convert import convert_hf_to_gguf
    from engine.models.quantize import quantize

    out = Path(args.out)
    quant = args.quant.upper() if args.quant else None
    try:
        if quant and quant not in ("F16", "F32", "BF16"):
            tmp_out = out.with_name(out.stem + ".f16-tmp.gguf")
            res = convert_hf_to_gguf(args.hf_dir, tmp_out, progress=_progress(), outtype=args.outtype)
            try:
                q = quantize(tmp_out, out, quant, progress=_progress())
            finally:
                tmp_out.unlink(missing_ok=True)
            print(f"wrote {q.path} ({res.arch}, {quant}, {_human(q.size)}, {res.seconds + q.seconds:.1f}s)")
        else:
            outtype = (quant or args.outtype).lower()
            res = convert_hf_to_gguf(args.hf_dir, out, progress=_progress(), outtype=outtype)
            print(f"wrote {res.path} ({res.arch}, {outtype.upper()}, {res.n_tensors} tensors, "
                  f"{_params(res.n_params)}, {res.seconds:.1f}s)")
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if args.register:
            _register(out)
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_quantize(args) -> int:
    from engine.models.quantize import quantize

    try:
        q = quantize(args.src, args.dst, args.quant, progress=_progress(), threads=args.threads)
        print(f"wrote {q.path} ({q.quant}, {_human(q.size)}, {q.seconds:.1f}s)")
        if args.register:
            _register(q.path)
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_check(args) -> int:
    from engine.modelfiles.errors import ModelFileError
    from engine.modelfiles.gguf_info import read_header
    from engine.models.parity import check_parity, read_corpus

    quants = [q.strip().upper() for q in args.quants.split(",") if q.strip()] if args.quants else []
    try:
        read_header(args.gguf)  # a damaged GGUF is refused before the reference model runs
    except ModelFileError as exc:
        return _refused("check", exc)
    try:
        texts = read_corpus(args.corpus) if args.corpus else None
        report = check_parity(args.gguf, args.hf, texts=texts, max_tokens=args.max_tokens, quants=quants,
                              threads=args.threads, progress=_progress(args.json))
    except _user_errors() as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"{report.gguf} ({report.gguf_quant}) vs {report.hf}: {report.n_texts} texts, {report.n_positions} positions")
        print(f"  token parity        {report.token_parity:.3f}")
        print(f"  argmax agreement    {report.argmax_agreement:.4f}")
        print(f"  max |logit diff|    {report.max_abs_logit_diff:.4g}  (mean {report.mean_abs_logit_diff:.3g})")
        print(f"  perplexity          HF {report.perplexity_hf:.4f}  GGUF {report.perplexity_gguf:.4f}")
        for m in report.token_mismatches[:3]:
            print(f"  mismatch: {m['text'][:60]!r}\n    HF   {m['hf'][:20]}\n    GGUF {m['gguf'][:20]}")
        for q in report.quantizations:
            print(f"  {q.quant:<7} ppl {q.perplexity:9.4f}  Δ vs F16 {100 * q.ppl_delta_vs_f16:+7.3f}%  "
                  f"argmax vs F16 {q.argmax_agreement_vs_f16:.3f}  {_human(q.size)}")
    ok = report.token_parity == 1.0 and report.argmax_agreement >= args.min_argmax
    return 0 if ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="model registry, GGUF check, convert, quantise, parity",
                              description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])

    s = sub.add_parser("list", help="registered models (* = default)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("import", help="check a GGUF, hash it and register it (copied in, or referenced)")
    s.add_argument("path")
    s.add_argument("--reference", action="store_true", help="leave the file where it is (do not copy)")
    s.add_argument("--name", help="registry id (default: the file name)")
    s.add_argument("--default", action="store_true", help="make it the default model")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("remove", help="take a model out of the registry")
    s.add_argument("model")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--keep-file", action="store_true", help="keep a copied-in file")
    g.add_argument("--delete-file", action="store_true", help="delete even a referenced file")
    s.set_defaults(func=cmd_remove)

    s = sub.add_parser("default", help="show or set the default model")
    s.add_argument("model", nargs="?")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_default)

    s = sub.add_parser("info", help="check a GGUF file and print its metadata")
    s.add_argument("path")
    s.add_argument("--no-hash", action="store_true", help="skip the SHA-256")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("card", help="a model's card per task (trained or not, data, figures); "
                                    "--set writes the registry's sidecar card of an imported GGUF")
    s.add_argument("model", help="a GGUF file or a registered model")
    s.add_argument("--set", metavar="CARD.json", help="a card (the JSON of logos models card --json, or "
                                                      "logos_card.json) to keep beside a registered model")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_card)

    s = sub.add_parser("verify", help="re-hash a registered model against its manifest")
    s.add_argument("model")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("convert", help="convert a Hugging Face Llama/Qwen3 checkpoint folder to GGUF")
    s.add_argument("hf_dir")
    s.add_argument("out")
    s.add_argument("--quant", choices=QUANT_CHOICES, type=str.upper, help="quantise the result with llama.cpp")
    s.add_argument("--outtype", choices=["f16", "f32", "bf16"], default="f16", help="weights before quantising")
    s.add_argument("--register", action="store_true", help="register the result (referenced)")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("quantize", help="quantise a GGUF with llama.cpp")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("--quant", choices=QUANT_CHOICES, type=str.upper, required=True)
    s.add_argument("--threads", type=int)
    s.add_argument("--register", action="store_true")
    s.set_defaults(func=cmd_quantize)

    s = sub.add_parser("check", help="token and logit parity of a GGUF against its HF checkpoint; "
                                     "perplexity of each quantisation vs F16")
    s.add_argument("gguf")
    s.add_argument("--hf", required=True, help="the Hugging Face checkpoint folder")
    s.add_argument("--corpus", help="grammar text, one record per line (default: the bundled held-out set)")
    s.add_argument("--quants", default="F16,Q8_0,Q5_K_M,Q4_K_M", help="comma-separated; empty to skip")
    s.add_argument("--max-tokens", type=int, default=256, help="positions compared per text")
    s.add_argument("--min-argmax", type=float, default=1.0, help="exit 1 below this argmax agreement")
    s.add_argument("--threads", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_check)
