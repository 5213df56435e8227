"""``logos dock``: dock ligands into a receptor's pocket with AutoDock Vina (engine.docking).

    logos dock complex.pdb --ligand MK1 --smiles 'CCO' --sdf hits.sdf --project screen.logos
    logos dock protein.pdb --pocket A:137,A:139,A:141 --results 12,15 --project screen.logos
    logos dock 1hvr.pdb --ligand XK2 --redock --json

The pocket is a ligand of the file (``--ligand``, removed from the receptor and kept as the
reference pose), a ligand given beside the protein (``--reference LIGAND.sdf``) or residues chosen
by hand (``--pocket``). Ligands come from ``--smiles``, ``--sdf``, stored results (``--results``,
``--run``) and, with ``--redock``, the reference ligand itself (its RMSD to the crystal pose is the
check that the set-up reproduces a known answer).

stdout: a table, one row per ligand as it finishes (``--json``: one JSON object per ligand;
``--events``: every event as a JSON line, first a ``receptor`` event — what the GUI reads).
stderr: what receptor preparation removed (always), the box, progress, and at the end the mean
−Vina over the docked ligands (the LOGOS paper's figure) and the redocked reference's score and RMSD.

With ``--project``: ligands given as SMILES or SDF become results of a new run (task ``dock``; those
that cannot be docked are stored as invalid results with the reason); ``--results``/``--run``
attach the poses to the stored results. Either way a docking row keeps the receptor file (stored
whole, by hash), the box, the settings and the library versions.

Exit codes: 0 done (some ligands may have failed, each with its reason), 1 no ligand could be
docked, 2 bad receptor, pocket, settings or files (one line on stderr), 130 interrupted (Ctrl+C:
the workers are stopped and the run is stored as cancelled).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.grammar.chem import canonicalize

PROG = "logos dock"
REFERENCE_INDEX = -1  # the index of the redocked reference ligand in events and JSON lines
DOCK_TASK = "dock"  # the task of the run that docked SMILES/SDF ligands are stored in
SCHEDULER_TIMEOUT_S = 5


class StopDocking(Exception):
    """Raised by an event handler to stop the docking (the project cannot take more rows)."""


@dataclass
class Ligand:
    index: int
    smiles: str
    name: str | None = None
    result_id: int | None = None
    run_id: int | None = None  # of the stored result
    error: str | None = None  # could not even be submitted (unreadable SDF record, no SMILES)
    reference: bool = False


@dataclass
class Prepared:
    receptor: object  # engine.docking.Receptor
    box: object  # engine.docking.Box
    data: bytes  # the receptor file as given
    fmt: str
    name: str
    padding: float


# ---- set-up ------------------------------------------------------------------------------------


def _err(message: str):
    from engine.cli import CliError

    return CliError(message)


def _receptor_fmt(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return {"cif": "mmcif", "mmcif": "mmcif", "ent": "pdb"}.get(suffix, suffix or "pdb")


def read_reference(path: str):
    """The first molecule (with coordinates) of a ligand file (SDF, MOL, MOL2, ...)."""
    from engine.structures import io
    from engine.structures.model import StructureReadError

    try:
        objs = io.read_file(path)
    except StructureReadError as exc:
        raise _err(str(exc)) from None
    for obj in objs:
        if obj.mol is not None and obj.mol.GetNumConformers() > 0:
            return obj.mol
    raise _err(f"{path}: no molecule with coordinates to use as the reference ligand")


def prepare(receptor: str, *, ligand: str | None = None, chain: str | None = None, resnum: int | None = None,
            pocket: str | None = None, reference: str | None = None, altloc: str | None = None,
            padding: float | None = None) -> Prepared:
    """The receptor prepared by Meeko and the box; bad input is a CliError of one line."""
    from engine.docking import DEFAULT_PADDING, DockingError, prepare_receptor

    path = Path(receptor)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _err(f"{receptor}: cannot read the receptor file ({exc.strerror or exc})") from None
    ref_mol = read_reference(reference) if reference else None
    try:
        rec = prepare_receptor(data=data, fmt=_receptor_fmt(path), name=path.name, ligand=ligand, chain=chain,
                               resnum=resnum, reference_mol=ref_mol, altloc=altloc)
        if pocket is not None:
            pad = 0.0 if padding is None else float(padding)
            box = rec.box_from_residues(pocket, padding=pad)
        else:
            pad = DEFAULT_PADDING if padding is None else float(padding)
            box = rec.box_from_reference(padding=pad)
    except DockingError as exc:
        raise _err(str(exc)) from None
    return Prepared(rec, box, data, _receptor_fmt(path), path.name, pad)


def connect_scheduler(address: str):
    """A Dask client of the scheduler at ``address`` (tcp://HOST:PORT), or a one-line CliError."""
    try:
        from distributed import Client
    except ImportError:
        raise _err("--scheduler needs the 'distributed' package (pip install distributed)") from None
    try:
        return Client(address, timeout=f"{SCHEDULER_TIMEOUT_S}s", set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise _err(f"cannot reach the Dask scheduler at {address} within {SCHEDULER_TIMEOUT_S} s ({why})") \
            from None


def _read_sdf_ligands(path: str, first_index: int) -> list[Ligand]:
    """Every record of an SDF as a ligand; an unreadable record is a ligand with its error."""
    from rdkit import Chem, rdBase

    p = Path(path)
    if not p.is_file():
        raise _err(f"{path}: no such file" if not p.exists() else f"{path}: is not a file")
    out = []
    with rdBase.BlockLogs():
        supplier = Chem.SDMolSupplier(str(p), sanitize=True, removeHs=False)
        line = 1
        for i in range(len(supplier)):
            text = supplier.GetItemText(i)
            mol = supplier[i]
            where = f"{p.name}:{line}"
            line += text.count("\n")
            name = mol.GetProp("_Name").strip() if mol is not None and mol.HasProp("_Name") else ""
            name = name or f"{p.name} record {i + 1}"
            if mol is None or mol.GetNumAtoms() == 0:
                out.append(Ligand(first_index + len(out), "", name,
                                  error=f"{where}: record {i + 1}: RDKit cannot read this molecule"))
                continue
            out.append(Ligand(first_index + len(out), Chem.MolToSmiles(Chem.RemoveHs(mol)), name))
    if not out:
        raise _err(f"{path}: no molecule records in the file")
    return out


def _parse_ids(text: str) -> list[int]:
    ids = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit():
            raise _err(f"--results: {item!r} is not a result id (write ID,ID,..., e.g. 12,15)")
        ids.append(int(item))
    if not ids:
        raise _err("--results: no result ids")
    return ids


def _stored_ligands(project, result_ids: list[int] | None, run_id: int | None, first_index: int) -> list[Ligand]:
    from engine.store import ProjectError, ResultQuery

    out = []
    try:
        if run_id is not None:
            project.get_run(run_id)
            rows = project.query_results(ResultQuery(run_id=run_id, valid=True, has=("smiles",), limit=None)).rows
            if not rows:
                raise _err(f"{project.path}: run {run_id} has no valid result with a SMILES to dock")
            for r in rows:
                out.append(Ligand(first_index + len(out), r.smiles, f"result {r.id}", result_id=r.id,
                                  run_id=r.run_id))
        for rid in result_ids or []:
            r = project.get_result(rid)
            if r.smiles:
                out.append(Ligand(first_index + len(out), r.smiles, f"result {rid}", result_id=rid, run_id=r.run_id))
            else:
                out.append(Ligand(first_index + len(out), "", f"result {rid}", result_id=rid, run_id=r.run_id,
                                  error=f"result {rid} has no SMILES to dock"))
    except ProjectError as exc:
        raise _err(str(exc)) from None
    return out


# ---- the run -----------------------------------------------------------------------------------


def drive(target, settings, jobs, *, cpus: int, executor, handle) -> str:
    """Run dock_ligands, passing every event to ``handle``. Ctrl+C (or StopDocking from ``handle``)
    cancels: the workers are stopped, the events that follow (the last one: finished, cancelled)
    are still handled. Returns the final status: finished or cancelled."""
    from engine.docking import dock_ligands

    cancel = threading.Event()
    gen = dock_ligands(target, settings, jobs, cpus=cpus, executor=executor, cancel=cancel)
    status = None
    restore = _ctrl_c_interrupts()
    try:
        while True:
            try:
                for ev in gen:
                    if ev["type"] == "finished":
                        status = ev["status"]
                    handle(ev)
                break
            except (KeyboardInterrupt, StopDocking):
                cancel.set()  # the generator stops its workers at its next step (or has already)
    finally:
        gen.close()
        restore()
    if status is None or cancel.is_set():
        status = "cancelled"
    return status


def _ctrl_c_interrupts():
    """Ctrl+C (SIGINT) cancels the run even where the process was started with SIGINT ignored
    (Python then keeps it ignored: a job started in the background by a shell without job control,
    nohup-like launchers). Returns the function that puts the previous disposition back."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    try:
        before = signal.getsignal(signal.SIGINT)
        if before is not signal.SIG_IGN:
            return lambda: None
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except (ValueError, OSError):
        return lambda: None
    return lambda: signal.signal(signal.SIGINT, before)


def _stacks_on_sigusr1() -> None:
    """SIGUSR1 prints every thread's stack to stderr: a run that does not stop can say where it is
    (the Ctrl+C test asks for it before it gives up)."""
    import faulthandler
    import signal

    if hasattr(signal, "SIGUSR1"):
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (ValueError, RuntimeError, OSError):  # no usable stderr
            pass


def _fmt_eta(seconds) -> str:
    if seconds is None:
        return "ETA unknown"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"ETA {seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"ETA {seconds // 60} min {seconds % 60:02d} s"
    return f"ETA {seconds} s"


class Progress:
    """Progress on stderr: rewritten in place on a terminal, a line every 10 s otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.open_line = False

    def __call__(self, ev: dict) -> None:
        if not self.enabled:
            return
        text = (f"{ev['done']}/{ev['total']} ligands ({ev['docked']} docked, {ev['failed']} failed), "
                f"{ev['ligands_per_minute']:.1f} ligands/min, {_fmt_eta(ev.get('eta_s'))}")
        if self.tty:
            print(f"\r{PROG}: {text}\033[K", end="", file=sys.stderr, flush=True)
            self.open_line = True
        elif time.monotonic() - self.last >= 10 or ev["done"] == ev["total"]:
            self.last = time.monotonic()
            print(f"{PROG}: {text}", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.open_line:
            print(file=sys.stderr)
            self.open_line = False


def receptor_lines(prep: Prepared) -> list[str]:
    """What preparation did and the box, for stderr (removed residues are always listed)."""
    rec, box = prep.receptor, prep.box
    lines = [f"receptor {prep.name} (sha256 {rec.input_sha256[:12]}…):"]
    lines += [f"  {line}" for line in rec.summary()] or ["  nothing removed"]
    if not rec.removed:
        lines.append("  every protein residue was typed (none removed)")
    c, s = box.center, box.size
    lines.append(f"box {s[0]:.1f} × {s[1]:.1f} × {s[2]:.1f} Å centred at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}) "
                 f"({box.source})")
    return lines


def receptor_event(prep: Prepared, settings: dict, n_ligands: int, docking_id=None, run_id=None) -> dict:
    rec = prep.receptor
    ref = None
    if rec.reference is not None:
        ref = {**rec.reference.to_dict(), "molblock": rec.reference.molblock}
    return {"type": "receptor", "name": prep.name, "sha256": rec.input_sha256, "summary": rec.summary(),
            "removed": rec.removed, "box": prep.box.to_dict(), "reference": ref, "settings": settings,
            "ligands": n_ligands, "docking_id": docking_id, "run_id": run_id}


def _json_row(ev: dict) -> dict:
    keys = ("index", "name", "smiles", "docked_smiles", "score", "rmsd", "checks", "interactions", "poses",
            "result_id", "docking_id", "seconds", "worker")
    out = {k: ev.get(k) for k in keys}
    if ev.get("reference"):
        out["reference"] = True
    return out


def _checks_word(checks) -> str:
    if not isinstance(checks, dict) or checks.get("passed") is None:
        return "not run"
    if checks["passed"]:
        return "ok"
    return "FAIL " + ",".join(f["check"] for f in checks.get("failures") or [])


def _table_row(ev: dict) -> str:
    idx = "ref" if ev.get("reference") else str(ev["index"])
    label = ev.get("name") or ev.get("smiles") or ""
    if ev.get("name") and ev.get("smiles") and not ev.get("reference"):
        label = f"{ev['smiles']}  ({ev['name']})"
    if ev["type"] == "error":
        return f"{idx:>4}  {'failed':>8}  {ev['message']}"
    rmsd = f"{ev['rmsd']:.2f}" if ev.get("rmsd") is not None else "-"
    n_int = len(ev.get("interactions") or [])
    stored = f"  [result {ev['result_id']}]" if ev.get("result_id") else ""
    return f"{idx:>4}  {ev['score']:>8.2f}  {rmsd:>6}  {_checks_word(ev.get('checks')):<14} {n_int:>8}  {label}{stored}"


TABLE_HEADER = f"{'#':>4}  {'vina':>8}  {'rmsd':>6}  {'checks':<14} {'contacts':>8}  ligand"


class Store:
    """Writes a docking into the project: the run (for new ligands), the docking row, each result."""

    def __init__(self, project, prep: Prepared, settings: dict, versions: dict, *, new_run: bool,
                 run_id: int | None = None):
        self.project = project
        self.run_id = run_id
        self.new_run = new_run
        rec = prep.receptor
        report = {"source": prep.name, "summary": rec.summary(), "removed": rec.removed,
                  "waters_removed": rec.waters_removed, "hetero_removed": rec.hetero_removed,
                  "altloc": rec.altloc, "altloc_residues": rec.altloc_residues, "warnings": rec.warnings,
                  "receptor_key": rec.key}
        reference = None
        if rec.reference is not None:
            reference = {**rec.reference.to_dict(), "molblock": rec.reference.molblock}
        if new_run:
            input_id = project.add_input(prep.data, prep.fmt, prep.name)
            params = {"receptor": prep.name, "box": prep.box.to_dict(), **settings}
            self.run_id = project.start_run(DOCK_TASK, "", params, settings.get("seed"), input_ids=[input_id],
                                            versions=versions)
        self.docking_id = project.start_docking(prep.data, prep.fmt, prep.name, prep.box.to_dict(), settings,
                                                versions, report, reference=reference, run_id=self.run_id)

    def result(self, lig: Ligand, ev: dict) -> int | None:
        if lig.reference:
            self.project.set_docking_reference(self.docking_id, ev)
            return None
        rid = lig.result_id
        if rid is None and self.new_run:
            objects = {"type": "molecule", "smiles": ev.get("smiles"), "name": lig.name,
                       "docked_smiles": ev.get("docked_smiles")}
            rid = self.project.add_result(self.run_id, f"<MoleculeS>{lig.smiles}<MoleculeE>", objects=objects,
                                          smiles=canonicalize(lig.smiles) if lig.smiles else None, valid=True)
        if rid is not None:
            self.project.add_docked(rid, self.docking_id, ev)
        return rid

    def failure(self, lig: Ligand, message: str) -> int | None:
        rid = lig.result_id
        if rid is None and self.new_run and not lig.reference:
            rid = self.project.add_result(self.run_id, f"<MoleculeS>{lig.smiles}<MoleculeE>",
                                          objects={"type": "molecule", "smiles": lig.smiles, "name": lig.name},
                                          smiles=canonicalize(lig.smiles) if lig.smiles else None, valid=False, reasons=[message])
        self.project.add_docking_failure(self.docking_id, lig.smiles,
                                         ("reference ligand: " if lig.reference else "") + message, result_id=rid)
        return rid

    def finish(self, status: str, summary: dict | None, error: str | None = None) -> None:
        self.project.finish_docking(self.docking_id, status, error=error, summary=summary)
        if self.new_run:
            self.project.finish_run(self.run_id, status, error=error)


def open_project(path: str, *, create: bool):
    from engine.store import Project, ProjectError

    try:
        project = Project.open(path, create=create)
    except ProjectError as exc:
        raise _err(str(exc)) from None
    if project.message:
        print(f"{PROG}: note: {project.path}: {project.message}", file=sys.stderr)
    if project.read_only:
        project.close()
        raise _err(f"{path}: opened read-only, cannot store the docking ({project.message})")
    return project


def settings_dict(settings, cpus: int, scheduler: str | None, padding: float, altloc: str | None) -> dict:
    return {**settings.to_dict(), "cpus": cpus, "scheduler": scheduler, "checks": bool(settings.checks),
            "interactions": bool(settings.interactions), "padding": padding, "altloc": altloc}


def run(args) -> int:
    from engine.cli import CliError
    from engine.docking import DockingError, Settings

    _stacks_on_sigusr1()

    # ---- what was asked --------------------------------------------------------------------
    by_ligand = args.ligand is not None or args.chain is not None or args.resnum is not None
    chosen = [n for n, on in (("--ligand", by_ligand), ("--pocket", args.pocket is not None),
                              ("--reference", args.reference is not None)) if on]
    if len(chosen) != 1:
        raise CliError("choose the pocket with one of --ligand RES, --pocket A:137,A:139,... or --reference "
                       "LIGAND.sdf" + (f" (got {' and '.join(chosen)})" if chosen else ""))
    if (args.results or args.run is not None) and not args.project:
        raise CliError("--results and --run dock stored results: give the project with --project FILE")
    if (args.results or args.run is not None) and (args.smiles or args.sdf):
        raise CliError("--results/--run attach poses to stored results; dock --smiles/--sdf ligands in a "
                       "separate call (they become results of a new run)")
    if not (args.smiles or args.sdf or args.results or args.run is not None or args.redock):
        raise CliError("no ligands: give --smiles, --sdf, --results, --run or --redock")
    if args.redock and args.pocket is not None:
        raise CliError("--redock needs a reference ligand: use --ligand or --reference instead of --pocket")
    try:
        settings = Settings(exhaustiveness=args.exhaustiveness, n_poses=args.poses, seed=args.seed,
                            checks=not args.no_checks, interactions=True).check()
    except DockingError as exc:
        raise CliError(str(exc)) from None
    if args.cpus is not None and not 1 <= args.cpus <= 64:
        raise CliError(f"--cpus must be between 1 and 64, not {args.cpus}")

    # ---- ligands -----------------------------------------------------------------------------
    ligands: list[Ligand] = [Ligand(i, s) for i, s in enumerate(args.smiles or [])]
    for path in args.sdf or []:
        ligands += _read_sdf_ligands(path, len(ligands))
    prep = prepare(args.receptor, ligand=args.ligand, chain=args.chain, resnum=args.resnum, pocket=args.pocket,
                   reference=args.reference, altloc=args.altloc, padding=args.padding)
    rec = prep.receptor
    if args.redock:
        if rec.reference is None or not rec.reference.smiles:
            raise CliError(f"{prep.name}: the reference ligand has no SMILES to redock")
        ligands.append(Ligand(REFERENCE_INDEX, rec.reference.smiles, f"reference {rec.reference.label()}",
                              reference=True))
    stored_mode = bool(args.results or args.run is not None)
    project = None
    if args.project:
        project = open_project(args.project, create=not stored_mode)
    try:
        if stored_mode:
            ligands += _stored_ligands(project, _parse_ids(args.results) if args.results else None, args.run,
                                       len([x for x in ligands if not x.reference]))
        return _dock(args, prep, settings, ligands, project, stored_mode)
    finally:
        if project is not None:
            project.close()


def _dock(args, prep: Prepared, settings, ligands: list[Ligand], project, stored_mode: bool) -> int:
    from engine.cli import CliError
    from engine.docking import DockingError, LigandJob, library_versions, make_target, paper_metric, usable_cpus
    from engine.store import ProjectError

    rec = prep.receptor
    runnable = [x for x in ligands if x.error is None]
    try:
        target = make_target(rec, prep.box)
    except DockingError as exc:
        raise CliError(str(exc)) from None
    client = connect_scheduler(args.scheduler) if args.scheduler else None
    if client is not None:  # ligands in flight at once: the cluster's threads
        cpus = args.cpus or max(1, sum(client.nthreads().values()))
    else:  # no idle worker computing maps for nothing
        cpus = max(1, min(args.cpus or usable_cpus(), len(runnable) or 1))
    sdict = settings_dict(settings, cpus, args.scheduler, prep.padding, args.altloc)
    versions = library_versions()

    store = None
    if project is not None:
        runs = {x.run_id for x in ligands if x.result_id is not None}
        try:
            store = Store(project, prep, sdict, versions, new_run=not stored_mode,
                          run_id=runs.pop() if len(runs) == 1 else None)
        except ProjectError as exc:
            if client is not None:
                client.close()
            raise CliError(str(exc)) from None

    for line in receptor_lines(prep):
        print(f"{PROG}: {line}", file=sys.stderr)
    where = f"the Dask scheduler at {args.scheduler}" if client is not None else f"{cpus} worker process(es)"
    print(f"{PROG}: {len(ligands)} ligand(s) on {where}; exhaustiveness {settings.exhaustiveness}, "
          f"{settings.n_poses} pose(s), seed {settings.seed}", file=sys.stderr)

    out_mode = "events" if args.events else "json" if args.json else "table"

    def emit(obj: dict) -> None:
        print(json.dumps(obj, ensure_ascii=False), flush=True)

    if out_mode == "events":
        emit(receptor_event(prep, sdict, len(ligands), store.docking_id if store else None,
                            store.run_id if store else None))
    elif out_mode == "table":
        print(TABLE_HEADER, flush=True)

    by_index = {x.index: x for x in ligands}
    scores: list[float] = []
    failed = 0
    reference_row: dict | None = None
    reference_error: str | None = None
    finished_ev: dict = {}
    store_error: list[str] = []
    progress = Progress()
    t0 = time.perf_counter()

    def record(lig: Ligand, ev: dict) -> dict:
        """Store one event's ligand (a ProjectError stops the run: nothing more could be stored)."""
        if store is None or store_error:
            return ev
        try:
            if ev["type"] == "result":
                rid = store.result(lig, ev)
            else:
                rid = store.failure(lig, ev["message"])
        except ProjectError as exc:
            store_error.append(str(exc))
            raise StopDocking(str(exc)) from None
        return {**ev, "result_id": rid, "docking_id": store.docking_id}

    def show(ev: dict) -> None:
        if out_mode == "events":
            emit(ev)
        elif out_mode == "json":
            emit(_json_row(ev) if ev["type"] == "result" else
                 {"index": ev["index"], "name": ev.get("name"), "smiles": ev["smiles"], "error": ev["message"],
                  "result_id": ev.get("result_id"), **({"reference": True} if ev.get("reference") else {})})
        else:
            progress.end()
            print(_table_row(ev), flush=True)

    def handle(ev: dict) -> None:
        nonlocal failed, reference_row, reference_error
        kind = ev["type"]
        if kind == "progress":
            progress(ev)
            if out_mode == "events":
                emit(ev)
            return
        if kind == "finished":
            finished_ev.update(ev)  # printed below, with the summary
            return
        lig = by_index[ev["index"]]
        if lig.reference:
            ev = {**ev, "reference": True}
        if kind == "result":
            if lig.reference:
                reference_row = ev
            else:
                scores.append(ev["score"])
        else:
            if lig.reference:
                reference_error = ev["message"]
            else:
                failed += 1
        show(record(lig, ev))

    status = "finished"
    try:
        # ligands that could not be read are reported (and stored) before any docking starts
        for lig in ligands:
            if lig.error is not None:
                handle({"type": "error", "index": lig.index, "smiles": lig.smiles, "name": lig.name,
                        "message": lig.error})
        if runnable:
            jobs = [LigandJob(x.index, x.smiles, x.name) for x in runnable]
            executor = client.get_executor() if client is not None else None
            status = drive(target, settings, jobs, cpus=cpus, executor=executor, handle=handle)
    except KeyboardInterrupt:
        status = "cancelled"
    except StopDocking:
        status = "failed"
    except DockingError as exc:
        status = "failed"
        store_error.append(str(exc))
    finally:
        progress.end()
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the scheduler may be gone already
                pass
    if store_error:
        status = "failed"
    seconds = round(time.perf_counter() - t0, 2)
    n_lig = len([x for x in ligands if not x.reference])
    summary = {"total": n_lig, "docked": len(scores), "failed": failed, "mean_neg_vina": paper_metric(scores),
               "seconds": seconds, "status": status}
    if reference_row is not None:
        summary["reference"] = {"name": rec.reference.label(), "score": reference_row["score"],
                                "rmsd": reference_row["rmsd"]}
    elif reference_error is not None:
        summary["reference"] = {"name": rec.reference.label(), "error": reference_error}
    if store is not None:
        try:
            store.finish(status, summary, error=store_error[0] if store_error else
                         ("interrupted" if status == "cancelled" else None))
        except ProjectError as exc:
            store_error.append(str(exc))
    if out_mode == "events":
        emit({**finished_ev, "type": "finished", "status": status, "seconds": seconds, "summary": summary,
              "docking_id": store.docking_id if store else None, "run_id": store.run_id if store else None})

    print(f"{PROG}: {status}: {len(scores)} docked, {failed} failed of {n_lig} ligand(s) in {seconds:.1f} s",
          file=sys.stderr)
    if scores:
        print(f"{PROG}: mean −Vina {summary['mean_neg_vina']:.3f} kcal/mol over {len(scores)} docked ligand(s) "
              "(the LOGOS paper's figure; higher is better)", file=sys.stderr)
    if reference_row is not None:
        rmsd = reference_row["rmsd"]
        print(f"{PROG}: reference {rec.reference.label()} redocked: {reference_row['score']:.2f} kcal/mol, "
              + (f"RMSD {rmsd:.2f} Å to the crystal pose" if rmsd is not None else "no RMSD (atoms do not match)"),
              file=sys.stderr)
    elif reference_error is not None:
        print(f"{PROG}: the reference ligand could not be docked: {reference_error}", file=sys.stderr)
    if store is not None:
        print(f"{PROG}: stored in {project.path}: "
              + (f"run {store.run_id}, " if store.run_id is not None else "") + f"docking {store.docking_id}",
              file=sys.stderr)
    if store_error:
        raise CliError(store_error[0])
    if status == "cancelled":
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0 if (scores or reference_row is not None) else 1


def prepare_for_task(input_path: str, *, ligand: str | None = None, residues: str | None = None,
                     padding: float | None = None) -> Prepared:
    """The receptor and box of a ligand-design task's input: the pocket the task used (the ligand
    that ``find_pocket`` picks, or the residues chosen by hand)."""
    if residues:
        return prepare(input_path, pocket=residues, padding=padding)
    from engine.structures import io
    from engine.structures.model import StructureReadError
    from engine.structures.pocket import PocketError, select_ligand

    try:
        objs = io.read_file(input_path)
    except StructureReadError as exc:
        raise _err(str(exc)) from None
    st = next((o.structure for o in objs if o.structure is not None), None)
    if st is None:
        raise _err(f"{input_path}: --dock needs a protein structure (PDB or mmCIF)")
    try:
        ch, res, _warnings = select_ligand(st, ligand, None, None)
    except PocketError as exc:
        raise _err(f"{input_path}: {exc}") from None
    return prepare(input_path, ligand=res.name, chain=ch.name, resnum=res.seqid.num, padding=padding)


def dock_samples(prep: Prepared, settings, ligands: list[Ligand], *, cpus: int | None = None,
                 project_path: str | None = None, run_id: int | None = None, quiet: bool = False):
    """Dock the valid samples of a generation run (``logos generate --dock``) in this process's
    worker pool; with a project, attach the poses to the stored results. Returns (status, the
    result row of each docked index, the error message of each failed index, summary)."""
    from engine.docking import DockingError, LigandJob, library_versions, make_target, paper_metric, usable_cpus
    from engine.store import ProjectError

    cpus = max(1, min(cpus or usable_cpus(), len(ligands) or 1))
    sdict = settings_dict(settings, cpus, None, prep.padding, None)
    try:
        target = make_target(prep.receptor, prep.box)
    except DockingError as exc:
        raise _err(str(exc)) from None
    project = store = None
    if project_path and run_id is not None:
        project = open_project(project_path, create=False)
        try:
            store = Store(project, prep, sdict, library_versions(), new_run=False, run_id=run_id)
        except ProjectError as exc:
            project.close()
            raise _err(str(exc)) from None
    if not quiet:
        for line in receptor_lines(prep):
            print(f"{PROG}: {line}", file=sys.stderr)
        print(f"{PROG}: {len(ligands)} valid sample(s) on {cpus} worker process(es); exhaustiveness "
              f"{settings.exhaustiveness}, {settings.n_poses} pose(s), seed {settings.seed}", file=sys.stderr)
    by_index = {x.index: x for x in ligands}
    rows: dict[int, dict] = {}
    errors: dict[int, str] = {}
    store_error: list[str] = []
    progress = Progress(enabled=not quiet)
    t0 = time.perf_counter()

    def handle(ev: dict) -> None:
        if ev["type"] == "progress":
            progress(ev)
            return
        if ev["type"] not in ("result", "error"):
            return
        lig = by_index[ev["index"]]
        if ev["type"] == "result":
            rows[lig.index] = ev
        else:
            errors[lig.index] = ev["message"]
        if store is not None and not store_error:
            try:
                if ev["type"] == "result":
                    store.result(lig, ev)
                else:
                    store.failure(lig, ev["message"])
            except ProjectError as exc:
                store_error.append(str(exc))
                raise StopDocking(str(exc)) from None

    status = "finished"
    try:
        if ligands:
            jobs = [LigandJob(x.index, x.smiles, x.name) for x in ligands]
            status = drive(target, settings, jobs, cpus=cpus, executor=None, handle=handle)
    except KeyboardInterrupt:
        status = "cancelled"
    finally:
        progress.end()
    if store_error:
        status = "failed"
    scores = [r["score"] for r in rows.values()]
    summary = {"total": len(ligands), "docked": len(rows), "failed": len(errors),
               "mean_neg_vina": paper_metric(scores), "seconds": round(time.perf_counter() - t0, 2),
               "status": status}
    if store is not None:
        try:
            store.finish(status, summary, error=store_error[0] if store_error else
                         ("interrupted" if status == "cancelled" else None))
        except ProjectError as exc:
            store_error.append(str(exc))
        finally:
            project.close()
    if not quiet:
        print(f"{PROG}: {status}: {len(rows)} docked, {len(errors)} failed of {len(ligands)} sample(s) "
              f"in {summary['seconds']:.1f} s", file=sys.stderr)
        if scores:
            print(f"{PROG}: mean −Vina {summary['mean_neg_vina']:.3f} kcal/mol over {len(scores)} docked "
                  "sample(s) (the LOGOS paper's figure; higher is better)", file=sys.stderr)
    if store_error:
        print(f"{PROG}: error: {store_error[0]}", file=sys.stderr)
    return status, rows, errors, summary


def pose_list(row: dict) -> list[dict]:
    """The poses of a docked row as JSON lines carry them."""
    keys = ("rank", "score", "inter", "intra", "rmsd", "molblock", "checks", "interactions")
    return [{k: p.get(k) for k in keys} for p in row.get("poses") or []]


def register(sub) -> None:
    p = sub.add_parser(
        "dock", help="dock ligands into a receptor's pocket with AutoDock Vina",
        description="Dock ligands into the pocket of a receptor (AutoDock Vina; Meeko prepares the "
                    "receptor and ligands, PoseBusters checks the poses, ProLIF lists interactions).",
        epilog="Exit codes: 0 done (failed ligands are listed with their reasons), 1 no ligand could be "
               "docked, 2 bad input, 130 interrupted.")
    p.add_argument("receptor", metavar="RECEPTOR", help="protein or complex file (PDB or mmCIF)")
    pocket = p.add_argument_group("pocket (one of --ligand, --pocket, --reference)")
    pocket.add_argument("--ligand", metavar="RES", help="ligand residue of the file that defines the pocket "
                                                        "(removed from the receptor, kept as the reference)")
    pocket.add_argument("--chain", metavar="C", help="chain of that ligand")
    pocket.add_argument("--resnum", metavar="N", type=int, help="residue number of that ligand")
    pocket.add_argument("--pocket", metavar="A:137,A:139,...", help="pocket residues chosen by hand")
    pocket.add_argument("--reference", metavar="LIGAND.sdf",
                        help="ligand file beside a protein file: its pose defines the box and RMSDs")
    ligs = p.add_argument_group("ligands")
    ligs.add_argument("--smiles", metavar="S", action="append", help="a ligand SMILES (repeatable)")
    ligs.add_argument("--sdf", metavar="FILE", action="append", help="every molecule of an SDF file (repeatable)")
    ligs.add_argument("--results", metavar="ID,ID,...", help="stored results to dock (needs --project)")
    ligs.add_argument("--run", metavar="RUN_ID", type=int, help="every valid result of a run (needs --project)")
    ligs.add_argument("--redock", action="store_true",
                      help="dock the reference ligand too and report its RMSD to the crystal pose")
    opts = p.add_argument_group("docking")
    opts.add_argument("--exhaustiveness", type=int, default=8, help="Vina's search effort (1-64, default 8)")
    opts.add_argument("--poses", type=int, default=5, help="poses kept per ligand (1-20, default 5)")
    opts.add_argument("--seed", type=int, default=0, help="seed of 3D embedding and Vina's search (default 0)")
    opts.add_argument("--cpus", type=int, help="worker processes (default: every CPU this process may use)")
    opts.add_argument("--padding", type=float,
                      help="Å added to each side of the box (default 5 around a ligand, 0 around pocket residues)")
    opts.add_argument("--altloc", metavar="A", help="alternate location to keep (default: the first)")
    opts.add_argument("--scheduler", metavar="tcp://HOST:8786", help="dock on a Dask cluster instead of locally")
    opts.add_argument("--no-checks", action="store_true", help="skip PoseBusters' checks of each pose")
    out = p.add_argument_group("output")
    out.add_argument("--project", metavar="FILE", help="store the docking and its poses in this project file")
    out.add_argument("--json", action="store_true", help="one JSON object per ligand on stdout")
    out.add_argument("--events", action="store_true",
                     help="every event (receptor, progress, result, error, finished) as JSON lines on stdout")
    p.set_defaults(func=run)
