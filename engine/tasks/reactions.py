"""Shared reading of reaction inputs: molecules from a file, pasted text or a SMILES option."""

from __future__ import annotations

from engine.tasks.base import InputRecord, TaskInputError, read_input_objects
from engine.tasks.scoring import check_molecule


def input_molecules(inputs: dict, options: dict, task: str, *, max_n: int | None = None) -> tuple[list[str], list]:
    """Canonical SMILES of the input molecules (option ``smiles`` "A.B" or a file / text)."""
    records = []
    if options.get("smiles"):
        raw = [s for s in str(options["smiles"]).split(".") if s.strip()]
        records = [InputRecord(data=str(options["smiles"]).encode(), fmt="smi", name="smiles")]
        source = "--smiles"
    else:
        objs, records = read_input_objects(inputs, task)
        source = inputs.get("file") or "input"
        raw = []
        for o in objs:
            if o.mol is None:
                raise TaskInputError(f"{source}: {o.name} is a {o.kind}, not a molecule")
            from engine.grammar.chem import canonical_smiles

            raw.append(canonical_smiles(o.mol))
    out = []
    for s in raw:
        mol, reasons, canon = check_molecule(s.strip())
        if mol is None or reasons:
            raise TaskInputError(f"{source}: input molecule {s!r} is not valid: {'; '.join(reasons)}")
        out.append(canon)
    if not out:
        raise TaskInputError(f"task {task} needs at least one molecule (--input FILE or --smiles)")
    if max_n is not None and len(out) > max_n:
        raise TaskInputError(f"{source}: {len(out)} molecules given, task {task} takes {max_n}")
    return out, records
