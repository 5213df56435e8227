"""Typed LOGOS records. ``codec.encode(record)`` writes one; ``codec.decode(text)`` reads them back.

Positions are 0-based indices into the sequence. ``to_dict()`` gives the JSON form used by the CLI,
the engine process and the project store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

POCKET_STYLES = ("letter", "smiles")
GRANULARITIES = ("plain", "pocket", "smiles")


@dataclass
class Protein:
    sequence: str
    pockets: tuple[int, ...] = ()  # 0-based positions of marked residues, ascending
    chain: str | None = None  # chain id when it came from a structure (not written in the grammar)
    style: str = "letter"  # how pocket marks are written: "letter" or "smiles"

    def __post_init__(self):
        self.pockets = tuple(sorted(set(int(p) for p in self.pockets)))

    @property
    def pocket_letters(self) -> str:
        return "".join(self.sequence[i] for i in self.pockets if 0 <= i < len(self.sequence))

    def plain(self) -> "Protein":
        return Protein(self.sequence, (), self.chain, "letter")

    def to_dict(self) -> dict:
        return {"type": "protein", "sequence": self.sequence, "pockets": list(self.pockets),
                "chain": self.chain, "style": self.style}


@dataclass
class Molecule:
    smiles: str  # canonical isomeric SMILES when valid; the text as written otherwise

    def to_dict(self) -> dict:
        return {"type": "molecule", "smiles": self.smiles}


@dataclass
class Antibody:
    heavy: str
    light: str | None = None

    def to_dict(self) -> dict:
        return {"type": "antibody", "heavy": self.heavy, "light": self.light}


@dataclass
class Material:
    metal: str  # formula-style node, e.g. "Cu2(CO2)4", "rod[Zn(CO2)2]"
    linkers: list[str] = field(default_factory=list)  # canonical SMILES, largest first

    def to_dict(self) -> dict:
        return {"type": "material", "metal": self.metal, "linkers": list(self.linkers)}


@dataclass
class Complex:
    proteins: list[Protein]
    ligand: Molecule
    granularity: str = "pocket"  # "plain" | "pocket" (letter marks) | "smiles" (residue SMILES marks)

    def to_dict(self) -> dict:
        return {"type": "complex", "granularity": self.granularity,
                "proteins": [p.to_dict() for p in self.proteins], "ligand": self.ligand.to_dict()}


@dataclass
class Reaction:
    reactants: list[Molecule]
    products: list[Molecule]
    retro: bool = False  # True: written product first, <ReverseReact>, then reactants

    def to_dict(self) -> dict:
        return {"type": "retrosynthesis" if self.retro else "reaction",
                "reactants": [m.smiles for m in self.reactants], "products": [m.smiles for m in self.products]}


@dataclass
class Search:
    """Binding-site identification: plain protein, ``<Search>``, the same protein with pocket marks."""

    query: Protein
    answer: Protein | None = None  # None for a prompt

    def to_dict(self) -> dict:
        return {"type": "search", "query": self.query.to_dict(),
                "answer": self.answer.to_dict() if self.answer else None}


@dataclass
class Trans:
    """Residue -> SMILES transformation: letter-marked protein, ``<Trans>``, SMILES-marked protein."""

    source: Protein
    target: Protein | None = None

    def to_dict(self) -> dict:
        return {"type": "trans", "source": self.source.to_dict(),
                "target": self.target.to_dict() if self.target else None}


Record = Protein | Molecule | Antibody | Material | Complex | Reaction | Search | Trans


def record_kind(rec) -> str:
    return rec.to_dict()["type"]


def as_plain_dict(rec) -> dict:
    return asdict(rec)
