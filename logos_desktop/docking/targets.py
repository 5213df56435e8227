"""Which receptor and pocket a docking uses: the ones the ligand task used.

For stored results: the run's input structure (the exact bytes the task read, kept in the project)
and the pocket the task was given (the ligand named in the result, or the residues chosen by hand,
from the run's options). For results without such a run (imported rows, other tasks): the structure
and ligand or residues selected in the workspace, read the same way the Generate panel reads them.
Nothing here decides anything about the chemistry: the engine prepares the receptor and the box.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

STRUCTURE_FORMATS = ("pdb", "ent", "cif", "mmcif")
SUFFIX = {"pdb": ".pdb", "ent": ".pdb", "cif": ".cif", "mmcif": ".cif"}


class NoReceptor(Exception):
    """Why these results cannot be docked yet, in words for the user."""


@dataclass(frozen=True)
class Target:
    receptor: str  # file path
    ligand: str | None = None
    chain: str | None = None
    resnum: int | None = None
    pocket: tuple[str, ...] = ()
    name: str = ""  # for messages: "1hvr.pdb, ligand XK2 A:263"

    @property
    def key(self) -> tuple:
        return (self.receptor, self.ligand, self.chain, self.resnum, self.pocket)

    def describe(self) -> str:
        if self.ligand:
            where = f"ligand {self.ligand}" + (f" {self.chain}:{self.resnum}" if self.chain and self.resnum is not None
                                               else "")
        elif self.pocket:
            where = f"pocket residues {', '.join(self.pocket[:6])}" + (" …" if len(self.pocket) > 6 else "")
        else:
            where = "no pocket"
        return f"{Path(self.receptor).name}, {where}"


def receptor_file(data: bytes, name: str, fmt: str | None = None) -> str:
    """The stored structure written to the cache (once per content), named as it was."""
    from engine import paths

    digest = hashlib.sha256(data).hexdigest()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (name or "receptor"))[:80] or "receptor"
    fmt = (fmt or "").lower()
    if fmt in SUFFIX and not safe.lower().endswith((".pdb", ".ent", ".cif", ".mmcif")):
        safe += SUFFIX[fmt]
    folder = paths.cache_dir() / "docking-receptors" / digest[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if not path.is_file() or path.stat().st_size != len(data):
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def _pocket_list(value) -> tuple[str, ...]:
    if not value:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).replace(";", ",").split(",")
    return tuple(str(i).strip() for i in items if str(i).strip())


def ligand_target(path: str, ligand: str, name: str) -> Target:
    """The target of a ligand named as the ligand task names it: a residue name, or the engine's
    spec of one residue (``"XK2 A:263"``, ``engine.structures.pocket``) split into name, chain and
    number, so the same ligand is the same target whichever way it was named."""
    from engine.structures.pocket import parse_ligand_spec

    resname, chain, resnum, _icode = parse_ligand_spec(str(ligand))
    return Target(path, ligand=resname, chain=chain, resnum=resnum, name=name)


def target_of_run(project, run_id: int, objects=None) -> Target:
    """The receptor and pocket of a stored run (``objects``: a result's objects, whose ``ligand``
    names the exact residue)."""
    try:
        run = project.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - the store names the file and the reason
        raise NoReceptor(str(exc)) from None
    structure = None
    for iid in run.input_ids or []:
        info = project.get_input(iid)
        if (info.fmt or "").lower() in STRUCTURE_FORMATS:
            structure = info
            break
    if structure is None:
        raise NoReceptor(f"run {run_id} ({run.task}) has no protein structure stored with it")
    path = receptor_file(structure.data, structure.name, structure.fmt)
    options = dict((run.params or {}).get("options") or {})
    lig = objects.get("ligand") if isinstance(objects, dict) else None
    if isinstance(lig, dict) and lig.get("name"):
        num = lig.get("number")
        return Target(path, ligand=str(lig["name"]), chain=str(lig.get("chain") or "") or None,
                      resnum=int(num) if isinstance(num, int) or str(num or "").lstrip("-").isdigit() else None,
                      name=structure.name)
    if options.get("residues"):
        return Target(path, pocket=_pocket_list(options["residues"]), name=structure.name)
    if options.get("ligand"):
        return ligand_target(path, options["ligand"], structure.name)
    raise NoReceptor(f"run {run_id} names no ligand or pocket residues for {structure.name}")


def target_of_selection(window) -> Target:
    """The structure and ligand or pocket residues selected in the workspace (as for ligand design)."""
    gen = getattr(window, "generation", None)
    if gen is None:
        raise NoReceptor("no workspace")
    inp, problem = gen.catalog.inputs_from_selection("ligand", gen.current_selection())
    if problem or inp is None or not inp.payload.get("file"):
        raise NoReceptor("load the target structure and select its ligand or the pocket residues "
                         "(as for ligand design)")
    path = inp.payload["file"]
    opts = inp.options or {}
    name = Path(path).name
    if opts.get("residues"):
        return Target(path, pocket=_pocket_list(opts["residues"]), name=name)
    if opts.get("ligand"):
        return ligand_target(path, opts["ligand"], name)
    raise NoReceptor("select the ligand of the complex or the pocket residues")


@dataclass
class Plan:
    """Selected rows grouped by target; what cannot be docked, with the reason."""

    groups: dict[tuple, tuple[Target, list[int]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, target: Target, result_id: int) -> None:
        self.groups.setdefault(target.key, (target, []))[1].append(int(result_id))


def plan_rows(project, rows, window=None) -> Plan:
    """Group the rows to dock by receptor and pocket."""
    plan = Plan()
    by_run: dict[tuple, Target | NoReceptor] = {}  # (run id, the result's ligand) -> target
    fallback: Target | NoReceptor | None = None
    no_mol = 0
    for row in rows:
        if not row.smiles or not row.valid:
            no_mol += 1
            continue
        target = None
        objects = row.objects if isinstance(row.objects, dict) else None
        if row.run_id is not None:
            lig = objects.get("ligand") if objects else None
            key = (row.run_id, tuple(sorted(lig.items())) if isinstance(lig, dict) else None)
            if key not in by_run:
                try:
                    by_run[key] = target_of_run(project, row.run_id, objects)
                except NoReceptor as exc:
                    by_run[key] = exc
            target = by_run[key]
        if not isinstance(target, Target):
            if fallback is None:
                try:
                    fallback = target_of_selection(window)
                except NoReceptor as exc:
                    fallback = exc
            if isinstance(fallback, Target):
                target = fallback
            else:
                why = str(target) if isinstance(target, NoReceptor) else ""
                plan.skipped.append(f"result {row.id}: {why + '; ' if why else ''}{fallback}")
                continue
        plan.add(target, row.id)
    if no_mol:
        plan.skipped.append(f"{no_mol} row{'s' if no_mol != 1 else ''} without a valid molecule")
    return plan
