"""Protein inputs for the pocket tasks: chains as (residue number, name, letter) lists, residues
chosen by hand ("A:45,B:50"), and the mapping from sequence positions back to residue numbers.
The pocket of a complex comes from engine.structures.pocket (the DEFAULT 4.5 Å contact rule).
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
