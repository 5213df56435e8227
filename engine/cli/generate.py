"""``logos generate``: sample candidates for a task through the engine process.

Prints one line per sample as it arrives (``--json``: one JSON object per line with record,
objects, valid, reasons, ppl, scores); progress and the run summary go to stderr. The same
``--seed`` gives the same samples. ``--project FILE`` also stores every sample, committed one by one.
"""

from __future__ import annotations

import json
import sys


def _default_model():
    try:
        from engine.models.registry import default_model

        found = default_model()
        if found:
            return found
    except ImportError:
        pass
    from engine import paths

    bundled = paths.bundled_models()
    return bundled[0] if bundled else None


def _options(args) -> dict:
    from engine.cli import CliError

    opts: dict = {}
    for item in args.option or []:
        if "=" not in item:
            raise CliError(f"--option {item!r}: write KEY=VALUE")
        key, value = item.split("=", 1)
        opts[key.strip()] = value
    for key in ("ligand", "smiles", "sequence", "chain", "residues", "prefix", "metal", "reference"):
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    return opts


def _sampling(args) -> dict:
    out = {}
    for key in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"):
        value = getattr(args, key)
        if value is not None:
            out[key] = value
    return out


def run(args) -> int:
    from engine.cli import CliError
    from engine.process.client import EngineClient, EngineError

    model = args.model
    if not args.url and model is None:
        model = _default_model()
        if model is None:
            raise CliError("no model: pass --model FILE.gguf (no default model is registered or bundled)")
    inputs = {"file": args.input} if args.input else None
    client = EngineClient(auto_restart=False)
    try:
        client.start()
    except EngineError as exc:
        raise CliError(str(exc)) from None
    status = "failed"
    try:
        try:
            ev = client.load_model_wait(str(model) if model else None, url=args.url, model=args.remote_model,
                                        n_gpu_layers=args.n_gpu_layers, n_ctx=args.n_ctx,
                                        n_threads=args.threads)
        except EngineError as exc:
            raise CliError(str(exc)) from None
        plan = ev.get("plan") or {}
        if not args.quiet:
            where = plan.get("device") or ev.get("backend")
            print(f"model {ev.get('path') or args.url} on {where}: " + "; ".join(plan.get("reasons", [])),
                  file=sys.stderr)
        job = client.submit(args.task, inputs=inputs, options=_options(args), n=args.n, seed=args.seed,
                            sampling=_sampling(args), project=args.project, prompt=args.prompt,
                            grammar=args.grammar)
        prompt = ""
        try:
            run_id = None
            for ev in client.iter_job(job):
                kind = ev["type"]
                if kind == "started":
                    prompt = ev["prompt"]
                    run_id = ev.get("run_id")
                    if not args.quiet:
                        print(f"prompt: {prompt}", file=sys.stderr)
                elif kind == "result":
                    _print_result(ev, args.json, prompt)
                elif kind == "progress" and not args.quiet and sys.stderr.isatty():
                    print(f"\r{ev['done']}/{ev['total']} samples, {ev['tokens_per_s']} tokens/s",
                          end="", file=sys.stderr)
                elif kind == "error":
                    print(f"logos generate: error: {ev['message']}", file=sys.stderr)
                elif kind == "engine_exited":
                    print(f"logos generate: the engine exited (code {ev['returncode']})\n{ev['stderr_tail']}",
                          file=sys.stderr)
                    if args.project and run_id is not None:  # it cannot mark its own run any more
                        _mark_run_failed(args.project, run_id, f"the engine process exited (code {ev['returncode']})")
                elif kind == "finished":
                    status = ev["status"]
                    if not args.quiet:
                        stats = ev.get("stats") or {}
                        print(f"\n{status}: {json.dumps(ev.get('summary'))}; "
                              f"{stats.get('tokens_generated', 0)} tokens at {stats.get('tokens_per_s', 0)} tokens/s",
                              file=sys.stderr)
        except KeyboardInterrupt:
            client.cancel(job)
            for ev in client.iter_job(job, timeout=10):
                if ev["type"] == "result":
                    _print_result(ev, args.json, prompt)
            return 130
    finally:
        client.close()
    return 0 if status == "finished" else 1


def _mark_run_failed(project: str, run_id: int, error: str) -> None:
    from engine.store.project import Project

    try:
        with Project.open(project) as p:
            if p.get_run(run_id).status == "running":
                p.finish_run(run_id, status="failed", error=error)
    except Exception as exc:  # noqa: BLE001 - the rows are safe; say why the run is not marked
        print(f"logos generate: could not mark run {run_id} failed in {project}: {exc}", file=sys.stderr)


def _print_result(ev: dict, as_json: bool, prompt: str = "") -> None:
    if as_json:
        keys = ("index", "seed", "record", "objects", "valid", "reasons", "ppl", "scores", "stop",
                "n_tokens", "result_id")
        print(json.dumps({k: ev.get(k) for k in keys}, ensure_ascii=False), flush=True)
    else:
        mark = "valid  " if ev["valid"] else "INVALID"
        ppl = ev.get("ppl")
        record = ev["record"]
        shown = "…" + record[len(prompt):] if prompt and record.startswith(prompt) and len(prompt) > 40 else record
        line = f"{ev['index']:>3} {mark} ppl={ppl:.2f} {shown}" if ppl is not None else \
            f"{ev['index']:>3} {mark} {shown}"
        if ev["reasons"]:
            line += "  # " + "; ".join(ev["reasons"])
        print(line, flush=True)


def register(sub) -> None:
    from engine.tasks.registry import TASKS

    p = sub.add_parser("generate", help="sample candidates for a task (molecule, ligand, retro, ...)")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--input", metavar="FILE", help="input structure / molecule / sequence file")
    p.add_argument("--ligand", metavar="RES", help="ligand residue name that defines the pocket")
    p.add_argument("--residues", help="pocket residues chosen by hand, e.g. A:25,A:27")
    p.add_argument("--chain", help="protein chain to use")
    p.add_argument("--smiles", help="input SMILES (product for retro, dot-joined reactants for forward)")
    p.add_argument("--sequence", help="protein sequence (binding-site)")
    p.add_argument("--prefix", help="SMILES prefix (molecule)")
    p.add_argument("--metal", help="fixed metal node (material)")
    p.add_argument("--reference", metavar="FILE", help="SMILES file for novelty")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="any other task option")
    p.add_argument("-n", type=int, default=1, help="samples (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", metavar="GGUF", help="model file (default: the registry's default model)")
    p.add_argument("--url", help="OpenAI-compatible completions server instead of a local model")
    p.add_argument("--remote-model", help="model name to ask the server for")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--grammar", action="store_true", help="constrain decoding with the task's GBNF grammar")
    p.add_argument("--prompt", help="use this prompt text instead of the task's (the stop tag stays)")
    p.add_argument("--project", metavar="FILE", help="store every sample in this project file")
    p.add_argument("--n-gpu-layers", type=int, help="GPU layers (default: as many as fit)")
    p.add_argument("--n-ctx", type=int, help="context tokens (default: planned)")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", action="store_true", help="one JSON object per sample")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=run)
