"""Protein inputs for the pocket tasks: chains as (residue number, name, letter) lists, the ligand of
a complex, its contact residues, and the mapping from sequence positions back to residue numbers.

Contacts follow the DEFAULT rule of LOGOS-GRAMMAR.md through gemmi's neighbour search: any heavy
atom within 4.5 Å of any heavy atom of the ligand; ligand = the named hetero residue or the largest
non-water, non-ion, non-additive group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.tasks.base import TaskInputError

CUTOFF = 4.5


@dataclass
class Residue:
    chain: str
    number: int
    icode: str
    name: str
    letter: str

    @property
    def label(self) -> str:
        return f"{self.chain}:{self.name}{self.number}{self.icode.strip()}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["label"] = self.label
        return d


def chains(st) -> dict[str, list[Residue]]:
    """chain -> amino-acid residues of model 1 in file order (same letters as chain_sequences)."""
    from engine.structures import residues as R

    out: dict[str, list[Residue]] = {}
    for ch in st[0]:
        for r in ch:
            if R.is_amino_acid(r.name):
                out.setdefault(ch.name, []).append(
                    Residue(ch.name, int(r.seqid.num), r.seqid.icode, r.name, R.one_letter(r.name)))
    return out


def ligand_groups(st) -> list[tuple[str, str, int, int]]:
    """(chain, residue name, number, heavy atoms) of every hetero residue that could be a ligand."""
    from engine.structures import residues as R

    out = []
    for ch in st[0]:
        for r in ch:
            if R.is_amino_acid(r.name) or R.is_water(r.name):
                continue
            if R.is_polymer_residue(r.name):
                continue
            heavy = sum(1 for a in r if a.element.name not in ("H", "D"))
            out.append((ch.name, r.name, int(r.seqid.num), heavy))
    return out


def pick_ligand(st, name: str | None, source: str) -> tuple[str, str, int]:
    from engine.structures import residues as R

    groups = ligand_groups(st)
    if name:
        hits = [g for g in groups if g[1] == name.strip().upper()]
        if not hits:
            present = sorted({g[1] for g in groups}) or ["none"]
            raise TaskInputError(f"{source}: no ligand {name!r} in the file (hetero groups: {', '.join(present)})")
        return max(hits, key=lambda g: g[3])[:3]
    cands = [g for g in groups if not R.never_ligand(g[1])]
    if not cands:
        raise TaskInputError(f"{source}: no ligand found (only waters, ions or additives); "
                             "name one with --ligand RES or choose pocket residues")
    return max(cands, key=lambda g: g[3])[:3]


def contacts(st, ligand: tuple[str, str, int], cutoff: float = CUTOFF) -> list[Residue]:
    """Amino-acid residues with a heavy atom within ``cutoff`` Å of a heavy atom of the ligand."""
    import gemmi

    model = st[0]
    ns = gemmi.NeighborSearch(model, st.cell, 6).populate(include_h=False)
    lig_chain, lig_name, lig_num = ligand
    found: set[tuple[str, int, str]] = set()
    for ch in model:
        if ch.name != lig_chain:
            continue
        for r in ch:
            if r.name != lig_name or int(r.seqid.num) != lig_num:
                continue
            for atom in r:
                if atom.element.name in ("H", "D"):
                    continue
                for mark in ns.find_atoms(atom.pos, "\0", radius=cutoff):
                    cra = mark.to_cra(model)
                    if cra.atom.element.name in ("H", "D"):
                        continue
                    found.add((cra.chain.name, int(cra.residue.seqid.num), cra.residue.seqid.icode))
    out = []
    for chain, residues in chains(st).items():
        for res in residues:
            if (chain, res.number, res.icode) in found:
                out.append(res)
    return out


def parse_residue_list(spec, source: str) -> list[tuple[str | None, int, str]]:
    """"A:45,A:47B,52" or a list of such → (chain or None, number, insertion code)."""
    import re

    items = spec if isinstance(spec, (list, tuple)) else str(spec).replace(";", ",").split(",")
    out = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        m = re.fullmatch(r"(?:([A-Za-z0-9]{1,4}):)?(?:[A-Za-z]{3})?(-?\d+)([A-Za-z]?)", item)
        if not m:
            raise TaskInputError(f"{source}: cannot read residue {item!r} (write CHAIN:NUMBER, e.g. A:45)")
        out.append((m.group(1), int(m.group(2)), m.group(3) or " "))
    return out


def select_residues(st, spec, source: str) -> list[Residue]:
    table = chains(st)
    out = []
    for chain, num, icode in parse_residue_list(spec, source):
        pool = [r for c, rs in table.items() if chain in (None, c) for r in rs]
        hit = [r for r in pool if r.number == num and r.icode.strip() == icode.strip()]
        if not hit:
            where = f"chain {chain}" if chain else "any chain"
            raise TaskInputError(f"{source}: no amino-acid residue {num}{icode.strip()} in {where}")
        out.append(hit[0])
    return out
