"""``logos project info|export|import``: look into a project file, export and import rows."""

from __future__ import annotations

import json
import sys


def _open(path, *, write: bool = False):
    from engine.cli import CliError
    from engine.store import Project, ProjectError

    try:
        project = Project.open(path, create=False)
    except ProjectError as exc:
        raise CliError(str(exc)) from None
    if project.message:
        print(f"logos project: note: {project.path}: {project.message}", file=sys.stderr)
    if write and project.read_only:
        project.close()
        raise CliError(f"{path}: opened read-only, cannot import into it ({project.message})")
    return project


def _info(args) -> int:
    from engine.cli import CliError
    from engine.store import ProjectError

    project = _open(args.file)
    try:
        info = project.info()
        runs = project.runs()[: args.runs]
    except ProjectError as exc:
        raise CliError(str(exc)) from None
    finally:
        project.close()
    if args.json:
        out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in info.__dict__.items()}
        out["recent_runs"] = [{"id": r.id, "task": r.task, "status": r.status, "results": r.n_results,
                               "started_at": r.started_at.isoformat(), "seed": r.seed,
                               "model_sha256": r.model.sha256 if r.model else None} for r in runs]
        print(json.dumps(out, indent=2))
        return 0
    print(f"Project       {info.name} ({info.path}, {info.size_bytes / 1e6:.2f} MB, journal {info.journal_mode})")
    print(f"Schema        {info.schema_revision} (this program: {info.head_revision})"
          + ("  READ-ONLY" if info.read_only else ""))
    if info.message:
        print(f"Note          {info.message}")
    print(f"Created       {info.created_at:%Y-%m-%d %H:%M} UTC by {info.created_by}; "
          f"last written by {info.last_written_by}")
    c = info.counts
    print(f"Contents      {c['results']} results ({info.valid} valid, {info.invalid} invalid), "
          f"{c['runs']} runs, {c['inputs']} inputs, {c['models']} models, {c['training_runs']} training runs, "
          f"{c.get('dockings', 0)} dockings")
    if info.tasks:
        print("Tasks         " + ", ".join(f"{t}: {n}" for t, n in info.tasks.items()))
    if info.score_names:
        print("Scores        " + ", ".join(info.score_names))
    for r in runs:
        model = f" model {r.model.sha256[:12]}" if r.model else ""
        print(f"  run {r.id:<5} {r.task:<16} {r.status:<9} {r.n_results:>6} results  seed {r.seed}{model}"
              f"  {r.started_at:%Y-%m-%d %H:%M}")
    return 0


def _export(args) -> int:
    from engine.cli import CliError
    from engine.store import ProjectError, parse_where
    from engine.store.export import export_file, export_results

    try:
        query = parse_where(args.where or [])
        query.sort = args.sort
        query.descending = args.desc
        query.limit = args.limit
    except ValueError as exc:
        raise CliError(str(exc)) from None
    project = _open(args.file)
    try:
        if args.output and args.output != "-":
            report = export_file(project, args.output, args.format, query, poses=args.poses)
        else:
            report = export_results(project, sys.stdout, args.format, query, poses=args.poses)
            sys.stdout.flush()
    except (ProjectError, ValueError) as exc:
        raise CliError(str(exc)) from None
    finally:
        project.close()
    print(f"logos project export: {report.summary()}", file=sys.stderr)
    return 0


def _import(args) -> int:
    from engine.cli import CliError
    from engine.store import ProjectError
    from engine.store.export import import_file

    project = _open(args.file, write=True)
    try:
        report = import_file(project, args.source, args.format)
    except ProjectError as exc:
        raise CliError(str(exc)) from None
    finally:
        project.close()
    print(f"imported {report.added} row(s) from {args.source} as run {report.run_id} "
          f"({report.invalid} invalid, kept with their reasons)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("project", help="look into a project file (.logos), export or import rows")
    psub = p.add_subparsers(dest="project_command", metavar="ACTION", required=True)

    info = psub.add_parser("info", help="schema, counts, tasks, scores and recent runs of a project")
    info.add_argument("file", help="project file (.logos)")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.add_argument("--runs", type=int, default=10, help="how many recent runs to list (default 10)")
    info.set_defaults(func=_info)

    exp = psub.add_parser(
        "export", help="write rows as SDF, CSV, FASTA or CIF, with their provenance",
        description="Filters (--where, repeatable, all must hold): task=NAME, run=ID, id=ID, valid=1|0, "
                    "ppl<X, rating>=N, score:NAME>=X, tag=NAME, smiles~SUBSTRING, sequence~SUBSTRING, "
                    "text~SUBSTRING.")
    exp.add_argument("file", help="project file (.logos)")
    exp.add_argument("--format", "-f", required=True, choices=["sdf", "csv", "fasta", "cif"])
    exp.add_argument("--where", "-w", action="append", metavar="EXPR", help="filter, e.g. 'score:qed>=0.5'")
    exp.add_argument("--sort", default="id", help="column to sort on, or score:NAME (default id)")
    exp.add_argument("--desc", action="store_true", help="sort descending")
    exp.add_argument("--limit", type=int, default=None, help="at most this many rows")
    exp.add_argument("--poses", choices=["best", "all"],
                     help="SDF of the docked poses (best: each result's best pose of its newest docking; "
                          "all: every pose), with score, RMSD, checks and the docking's provenance")
    exp.add_argument("-o", "--output", help="output file (default: standard output)")
    exp.set_defaults(func=_export)

    imp = psub.add_parser("import", help="add the records of an SDF or CSV file as rows of a new run")
    imp.add_argument("file", help="project file (.logos)")
    imp.add_argument("source", help="SDF or CSV file to import")
    imp.add_argument("--format", choices=["sdf", "csv"], help="default: from the file's suffix")
    imp.set_defaults(func=_import)
