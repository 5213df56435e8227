"""``logos generate``: sample candidates for a task through the engine process.

Prints one line per sample as it arrives (``--json``: one JSON object per line with record,
objects, valid, reasons, ppl, scores); progress and the run summary go to stderr. The same
``--seed`` gives the same samples. ``--project FILE`` also stores every sample, committed one by one.

``--dock`` (ligand task): after sampling, every valid sample is docked into the task's pocket
(receptor: the ``--input`` file; box: around its ligand, or the ``--residues``) in this process's
worker pool, never in the engine process; the lines are printed after docking, with ``scores.vina``
and the ``poses``, and with ``--project`` the poses are attached to the stored results.
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


def _dock_setup(args):
    """The receptor, box and settings for --dock, prepared before any sampling (bad input fails fast)."""
    from engine.cli import CliError, dock
    from engine.docking import DockingError, Settings

    if args.task != "ligand":
        raise CliError(f"--dock docks ligands into a pocket: use it with --task ligand, not --task {args.task}")
    if not args.input:
        raise CliError("--dock needs the receptor: give the protein or complex file with --input")
    try:
        settings = Settings(exhaustiveness=args.exhaustiveness, n_poses=args.poses, seed=args.seed).check()
    except DockingError as exc:
        raise CliError(str(exc)) from None
    if args.cpus is not None and not 1 <= args.cpus <= 64:
        raise CliError(f"--cpus must be between 1 and 64, not {args.cpus}")
    return dock.prepare_for_task(args.input, ligand=args.ligand, residues=args.residues), settings


def run(args) -> int:
    from engine.cli import CliError
    from engine.process.client import EngineClient, EngineError

    docking = _dock_setup(args) if args.dock else None
    held: list[tuple[dict, str]] = []  # with --dock: the lines wait for their docking

    def show(ev: dict, prompt: str) -> None:
        if docking is not None:
            held.append((ev, prompt))
        else:
            _print_result(ev, args.json, prompt)

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
            print(f"model {ev.get('path') or _shown_url(args.url)} on {where}: " + "; ".join(plan.get("reasons", [])),
                  file=sys.stderr)
            entry = _card_entry(ev.get("card"), args.task)
            if entry is not None:  # what the model's card says of this task (a warning when not usable)
                lead = "model card" if entry.get("usable") else "warning: model card"
                print(f"{lead} for {args.task}: {entry.get('line')}", file=sys.stderr)
        job = client.submit(args.task, inputs=inputs, options=_options(args), n=args.n, seed=args.seed,
                            sampling=_sampling(args), project=args.project, prompt=args.prompt,
                            grammar=args.grammar)
        prompt = ""
        run_id = None
        try:
            for ev in client.iter_job(job):
                kind = ev["type"]
                if kind == "started":
                    prompt = ev["prompt"]
                    run_id = ev.get("run_id")
                    if not args.quiet:
                        print(f"prompt: {prompt}", file=sys.stderr)
                elif kind == "result":
                    show(ev, prompt)
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
                    show(ev, prompt)
            for ev, shown_prompt in held:
                _print_result(ev, args.json, shown_prompt)
            return 130
    finally:
        client.close()
    if docking is not None and status != "finished":  # sampling failed: show what came, dock nothing
        for ev, prompt in held:
            _print_result(ev, args.json, prompt)
    elif docking is not None:
        dock_status = _dock_and_print(args, docking, held, run_id)
        if dock_status == "cancelled":
            return 130
        if dock_status != "finished":
            return 1
    return 0 if status == "finished" else 1


def _dock_and_print(args, docking, held: list, run_id) -> str:
    """Dock the valid samples (after the engine process is done with them) and print every line."""
    from engine.cli import dock

    prep, settings = docking
    ligands = []
    for ev, _prompt in held:
        smiles = (ev.get("objects") or {}).get("smiles") if isinstance(ev.get("objects"), dict) else None
        if ev.get("valid") and smiles:
            ligands.append(dock.Ligand(ev["index"], smiles, result_id=ev.get("result_id")))
    status, rows, errors, _summary = dock.dock_samples(
        prep, settings, ligands, cpus=args.cpus, project_path=args.project if run_id is not None else None,
        run_id=run_id, quiet=args.quiet)
    for ev, prompt in held:
        ev = dict(ev)
        row = rows.get(ev["index"])
        if row is not None:
            scores = dict(ev.get("scores") or {})
            scores["vina"] = row["score"]
            if row.get("rmsd") is not None:
                scores["vina_rmsd"] = row["rmsd"]
            passed = (row.get("checks") or {}).get("passed")
            if passed is not None:
                scores["posebusters_ok"] = 1.0 if passed else 0.0
            ev["scores"] = scores
            ev["poses"] = dock.pose_list(row)
        elif ev["index"] in errors:
            ev["dock_error"] = errors[ev["index"]]
        _print_result(ev, args.json, prompt)
    return status


def _card_entry(card: dict | None, task: str) -> dict | None:
    """The card's entry for ``task`` (aliases allowed), or None when the engine sent no card."""
    from engine.tasks.registry import ALIASES

    tasks = (card or {}).get("tasks") or {}
    return tasks.get(ALIASES.get(task, task))


def _shown_url(url: str | None) -> str:
    """The server URL without user:password or query values (what may be printed or logged)."""
    from engine.runtime.remote import RemoteError, split_url

    try:
        return split_url(url)[1]
    except RemoteError:
        return "the server"


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
        out = {k: ev.get(k) for k in keys}
        for extra in ("poses", "dock_error"):  # --dock
            if extra in ev:
                out[extra] = ev[extra]
        print(json.dumps(out, ensure_ascii=False), flush=True)
    else:
        mark = "valid  " if ev["valid"] else "INVALID"
        ppl = ev.get("ppl")
        record = ev["record"]
        shown = "…" + record[len(prompt):] if prompt and record.startswith(prompt) and len(prompt) > 40 else record
        line = f"{ev['index']:>3} {mark} ppl={ppl:.2f} {shown}" if ppl is not None else \
            f"{ev['index']:>3} {mark} {shown}"
        if ev["reasons"]:
            line += "  # " + "; ".join(ev["reasons"])
        if "poses" in ev:
            line += f"  vina={ev['scores']['vina']:.2f} kcal/mol"
        elif "dock_error" in ev:
            line += f"  # not docked: {ev['dock_error']}"
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
    d = p.add_argument_group("docking (--task ligand)")
    d.add_argument("--dock", action="store_true",
                   help="dock every valid sample into the task's pocket (receptor: --input) with AutoDock Vina")
    d.add_argument("--exhaustiveness", type=int, default=8, help="Vina's search effort (1-64, default 8)")
    d.add_argument("--poses", type=int, default=5, help="poses kept per sample (1-20, default 5)")
    d.add_argument("--cpus", type=int, help="docking worker processes (default: every CPU this process may use)")
    p.set_defaults(func=run)
