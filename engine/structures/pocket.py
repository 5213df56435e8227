"""Binding pockets of protein–ligand complexes and their LOGOS records: the one definition of
"ligand" and "pocket" that the ligand task, the CLI, docking and the desktop's marking and colouring use.

What a residue is (``residue_class``, by name, whatever its ATOM/HETATM record): ``polymer`` (an
amino acid or nucleotide, modified ones such as MSE or CSO included), ``water``, ``other`` (a common
ion, crystallisation additive or polymer cap: ``residues.never_ligand``) or ``ligand`` (anything
else). ``atom_classes`` applies the same rule to per-atom residue names (an AtomTable's).

The ligand is the residue named by the user (``"XK2"``, or ``"XK2 A:263"`` with chain and number:
``ligand_spec`` writes it, ``select_ligand`` reads it), a separate ligand molecule (e.g. a docked
pose from an SDF), or else the largest ligand-class residue (``ligands``, largest first). Contact
residues (``ligand_site``): amino-acid residues with any heavy atom within ``cutoff`` Å (DEFAULT
4.5) of any ligand heavy atom. The ligand's SMILES takes its bond orders and charges from the PDB
Chemical Component Dictionary shipped with biotite, matched by atom name, and its stereochemistry
from the 3D coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.grammar import codec as _codec
from engine.grammar import records as _rec
from engine.grammar.chem import canonical_smiles, rdkit_messages
from engine.structures import residues as _res
from engine.structures.model import LoadedObject

DEFAULT_CUTOFF = 4.5


class PocketError(ValueError):
    """No ligand, no protein, or nothing within the cutoff."""


@dataclass
class PocketResidue:
    chain: str
    resnum: int
    resname: str
    icode: str = ""
    letter: str = "X"
    index: int = -1  # 0-based position in the chain's sequence
    min_distance: float = 0.0

    def to_dict(self) -> dict:
        d = {"chain": self.chain, "resnum": self.resnum, "resname": self.resname}
        if self.icode:
            d["icode"] = self.icode
        return d


@dataclass
class LigandInfo:
    resname: str
    chain: str
    resnum: int
    smiles: str | None
    mol: object = None  # rdkit Mol with the ligand's coordinates
    heavy_atoms: int = 0

    def to_dict(self) -> dict:
        return {"resname": self.resname, "chain": self.chain, "resnum": self.resnum, "smiles": self.smiles}


@dataclass
class Pocket:
    ligand: LigandInfo
    residues: list[PocketResidue]
    sequences: dict[str, str]  # every protein chain (file order) -> sequence
    cutoff: float = DEFAULT_CUTOFF
    warnings: list[str] = field(default_factory=list)

    @property
    def chains(self) -> list[str]:
        """Chains with at least one contact residue, in file order."""
        hit = {r.chain for r in self.residues}
        return [c for c in self.sequences if c in hit]

    def proteins(self) -> list[_rec.Protein]:
        out = []
        for c in self.chains:
            pos = tuple(r.index for r in self.residues if r.chain == c and r.index >= 0)
            out.append(_rec.Protein(self.sequences[c], pos, chain=c))
        return out

    def complex_record(self) -> _rec.Complex:
        if not self.ligand.smiles:
            raise PocketError(f"no SMILES for ligand {self.ligand.resname}")
        return _rec.Complex(self.proteins(), _rec.Molecule(self.ligand.smiles), "pocket")

    def record(self, granularity: str = "pocket") -> str:
        """The LOGOS complex record: protein block(s) then the ligand block."""
        rec = self.complex_record()
        return _codec.encode_complex(rec.proteins, rec.ligand, granularity)

    def to_dict(self) -> dict:
        return {"ligand": self.ligand.to_dict(), "pocket_residues": [r.to_dict() for r in self.residues],
                "cutoff": self.cutoff, "chains": self.chains}


# ------------------------------------------------------------------------------------------------


def _structure(obj):
    if isinstance(obj, LoadedObject):
        if obj.structure is None:
            raise PocketError(f"{obj.name} is a {obj.kind}; a pocket needs a protein structure (PDB or mmCIF)")
        return obj.structure
    return obj  # a gemmi.Structure


def _heavy(atom) -> bool:
    return atom.element.name not in ("H", "D")


POLYMER, LIGAND, WATER, OTHER = "polymer", "ligand", "water", "other"
CLASSES = (POLYMER, LIGAND, WATER, OTHER)


def residue_class(name: str) -> str:
    """``polymer``, ``water``, ``other`` (ion, additive, cap) or ``ligand``, from the residue name."""
    name = str(name).strip().upper()
    if _res.is_water(name):
        return WATER
    if _res.is_polymer_residue(name):
        return POLYMER
    if _res.never_ligand(name):
        return OTHER
    return LIGAND


def is_ligand(name: str) -> bool:
    return residue_class(name) == LIGAND


def atom_classes(res_names) -> dict[str, np.ndarray]:
    """Per-atom boolean masks ``{polymer, ligand, water, other}`` from per-atom residue names
    (``residue_class`` evaluated once per distinct name); exactly one is true for each atom."""
    names = list(res_names)
    verdict = {n: residue_class(n) for n in set(names)}
    cls = np.array([verdict[n] for n in names], dtype=object) if names else np.zeros(0, object)
    return {c: (cls == c).astype(bool) if len(names) else np.zeros(0, bool) for c in CLASSES}


@dataclass(frozen=True)
class LigandRef:
    """A ligand-class residue of a structure and the spec that selects it (``"XK2 A:263"``)."""

    resname: str
    chain: str
    resnum: int
    icode: str = ""
    heavy_atoms: int = 0

    @property
    def spec(self) -> str:
        return f"{self.resname} {self.chain}:{self.resnum}{self.icode}"

    @property
    def key(self) -> tuple[str, str]:
        """(chain, "number+icode"): how the desktop names a residue."""
        return (self.chain, f"{self.resnum}{self.icode}")


def ligand_candidates(st) -> list[tuple]:
    """(chain, residue) pairs of the ligand-class residues, largest first (file order among equals)."""
    out = []
    for ch in st[0]:
        for res in ch:
            if residue_class(res.name) == LIGAND:
                out.append((ch, res))
    out.sort(key=lambda cr: -sum(1 for a in cr[1] if _heavy(a)))
    return out


def _ref(ch, res) -> LigandRef:
    return LigandRef(res.name, ch.name, res.seqid.num, res.seqid.icode.strip(),
                     sum(1 for a in res if _heavy(a)))


def ligands(obj) -> list[LigandRef]:
    """The ligands of a structure (LoadedObject or gemmi.Structure), largest first: the first is the
    one ``find_pocket`` and the ligand task pick when none is named."""
    st = _structure(obj)
    if len(st) == 0:
        return []
    return [_ref(ch, res) for ch, res in ligand_candidates(st)]


def ligand_spec(ch, res) -> str:
    """The spec that ``select_ligand`` reads back as exactly this residue: ``"XK2 A:263"``."""
    return _ref(ch, res).spec


def parse_ligand_spec(spec: str) -> tuple[str | None, str | None, int | None, str | None]:
    """``"XK2"`` → (XK2, None, None, None); ``"XK2 A:263"`` → (XK2, A, 263, ""); ``"XK2 A:263B"``
    carries an insertion code. Anything else is a plain residue name."""
    import re

    text = str(spec).strip()
    m = re.fullmatch(r"(\S+)\s+(\S*):(-?\d+)([A-Za-z]?)", text)
    if m is None:
        return (text or None), None, None, None
    return m.group(1), m.group(2), int(m.group(3)), m.group(4)


def select_ligand(st, resname: str | None = None, chain: str | None = None, resnum: int | None = None):
    """(chain, residue, warnings) of the ligand."""
    warns = []
    model = st[0]
    icode = None
    if resname is not None:
        resname, chain2, resnum2, icode = parse_ligand_spec(resname)
        if chain2 is not None:
            if (chain is not None and chain != chain2) or (resnum is not None and int(resnum) != resnum2):
                raise PocketError(f"ligand {resname} {chain2}:{resnum2} disagrees with chain {chain} "
                                  f"number {resnum}")
            chain, resnum = chain2, resnum2
    if resname is None and chain is None and resnum is None:
        cands = ligand_candidates(st)
        if not cands:
            raise PocketError("no ligand found: no hetero group other than water, ions and additives; "
                              "name one with --ligand")
        ch, res = cands[0]
        if len(cands) > 1:
            others = sorted({r.name for _, r in cands[1:]})
            warns.append(f"picked the largest hetero group {res.name} {ch.name}{res.seqid.num}; "
                         f"other candidates: {', '.join(others[:8])}")
        return ch, res, warns
    hits = []
    for ch in model:
        if chain is not None and ch.name != chain:
            continue
        for res in ch:
            if resname is not None and res.name.upper() != resname.strip().upper():
                continue
            if resnum is not None and res.seqid.num != int(resnum):
                continue
            if icode is not None and res.seqid.icode.strip() != icode:
                continue
            hits.append((ch, res))
    if not hits:
        want = " ".join(x for x in (resname, f"chain {chain}" if chain else None,
                                    f"number {resnum}" if resnum is not None else None) if x)
        present = sorted({r.name for _, r in ligand_candidates(st)})
        raise PocketError(f"no residue {want} in the structure"
                          + (f"; hetero groups present: {', '.join(present[:12])}" if present else ""))
    ch, res = hits[0]
    if len(hits) > 1:
        warns.append(f"{len(hits)} residues match; used {res.name} chain {ch.name} number {res.seqid.num} "
                     "(give --chain and --resnum to pick another)")
    return ch, res, warns


def chain_residues(st) -> dict[str, list]:
    """chain -> amino-acid residues in file order (chains split by gemmi are merged by name)."""
    out: dict[str, list] = {}
    for ch in st[0]:
        aa = [r for r in ch if _res.is_amino_acid(r.name)]
        if aa:
            out.setdefault(ch.name, []).extend(aa)
    return out


def contact_residues(st, ligand_xyz: np.ndarray, cutoff: float = DEFAULT_CUTOFF,
                     exclude=None) -> list[PocketResidue]:
    """Amino-acid residues with a heavy atom within ``cutoff`` Å of any point of ``ligand_xyz``
    (gemmi's cell-list neighbour search: only atoms near the ligand are visited)."""
    import gemmi

    ligand_xyz = np.asarray(ligand_xyz, float).reshape(-1, 3)
    if len(ligand_xyz) == 0:
        raise PocketError("the ligand has no heavy atoms")
    model = st[0]
    where = {}  # (chain, seqid num, icode, residue name) -> (chain name, index in the chain's sequence)
    for cname, residues in chain_residues(st).items():
        for idx, res in enumerate(residues):
            if exclude is not None and res is exclude:
                continue
            where[(cname, res.seqid.num, res.seqid.icode, res.name)] = (cname, idx, res)
    ns = gemmi.NeighborSearch(model, gemmi.UnitCell(), max(5.0, cutoff + 0.5)).populate(include_h=False)
    best: dict[tuple, float] = {}
    for x, y, zc in ligand_xyz.tolist():
        pos = gemmi.Position(x, y, zc)
        for mark in ns.find_atoms(pos, "\0", radius=cutoff + 1e-6):
            cra = mark.to_cra(model)
            key = (cra.chain.name, cra.residue.seqid.num, cra.residue.seqid.icode, cra.residue.name)
            if key not in where or cra.atom.element.name in ("H", "D"):
                continue
            d = cra.atom.pos.dist(pos)
            if d <= cutoff:
                best[key] = min(d, best.get(key, d))
    order = {k: n for n, k in enumerate(where)}
    out = []
    for key in sorted(best, key=order.__getitem__):
        cname, idx, res = where[key]
        out.append(PocketResidue(cname, res.seqid.num, res.name, res.seqid.icode.strip(),
                                 _res.one_letter(res.name), idx, round(best[key], 3)))
    return out


def ligand_mol_from_residue(res, resname: str | None = None):
    """(RDKit Mol with 3D coordinates, warnings) for a hetero residue, bond orders from the CCD."""
    from rdkit import Chem

    resname = (resname or res.name).upper()
    warns: list[str] = []
    atoms = list(res)
    try:
        mol = _mol_via_ccd(atoms, resname, res)
    except KeyError:
        mol = None
        warns.append(f"{resname} is not in the Chemical Component Dictionary; bond orders guessed from geometry")
    except Exception as exc:  # noqa: BLE001 - atom names differ from the dictionary: match the graph
        mol = _mol_via_template(atoms, resname)
        if mol is None:
            warns.append(f"{resname}: dictionary bonds did not fit the coordinates "
                         f"({' '.join(str(exc).split())[:120]}); bond orders guessed from geometry")
        else:
            warns.append(f"{resname}: atom names differ from the dictionary; bond orders matched by graph")
    if mol is None:
        mol = _mol_via_geometry(atoms, resname)
        if mol is None:
            return None, warns + [f"{resname}: no sane molecule could be built from its coordinates"]
    heavy = sum(1 for a in mol.GetAtoms() if a.GetAtomicNum() > 1)
    try:
        ref = _ccd_heavy_count(resname)
    except KeyError:
        ref = None
    if ref is not None and heavy < ref:
        warns.append(f"ligand {resname} has {heavy} of the {ref} heavy atoms in its dictionary entry "
                     "(unresolved atoms); its SMILES is of the atoms present")
    _ = Chem
    return mol, warns


def _ccd_heavy_count(resname: str) -> int:
    from engine.structures import ccd

    return ccd.component(resname).heavy_atoms


def _mol_via_ccd(atoms, resname, res):
    """Bond orders and charges from the dictionary, matched by atom name; coordinates and
    stereochemistry from the structure; hydrogens the file lacks become implicit."""
    from rdkit import Chem

    from engine.structures import ccd

    comp = ccd.component(resname)  # KeyError when unknown
    where = {n: k for k, n in enumerate(comp.atom_names)}
    unknown = [a.name for a in atoms if a.name not in where]
    if unknown:
        raise ValueError(f"atom name(s) {', '.join(unknown[:5])} not in the dictionary entry")
    rw = Chem.RWMol()
    conf = Chem.Conformer(len(atoms))
    mine = {}
    for n, a in enumerate(atoms):
        k = where[a.name]
        at = Chem.Atom(comp.elements[k].capitalize())
        at.SetFormalCharge(comp.charges[k])
        rw.AddAtom(at)
        conf.SetAtomPosition(n, (a.pos.x, a.pos.y, a.pos.z))
        mine[k] = n
    for i, j, order, _arom in comp.bonds:
        if i in mine and j in mine and order:
            rw.AddBond(mine[i], mine[j], ccd._bond_type(order))
    mol = rw.GetMol()
    mol.AddConformer(conf, assignId=True)
    with rdkit_messages():
        Chem.SanitizeMol(mol)
        Chem.AssignStereochemistryFrom3D(mol)
    return mol


def _mol_via_template(atoms, resname):
    """Heavy-atom connectivity from geometry, bond orders and charges from the CCD entry by graph match."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import AllChem, rdDetermineBonds

    from engine.structures import ccd

    heavy = [a for a in atoms if a.element.name not in ("H", "D")]
    rw = Chem.RWMol()
    conf = Chem.Conformer(len(heavy))
    for i, a in enumerate(heavy):
        rw.AddAtom(Chem.Atom(a.element.atomic_number))
        conf.SetAtomPosition(i, (a.pos.x, a.pos.y, a.pos.z))
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    try:
        with rdkit_messages(), rdBase.BlockLogs():
            rdDetermineBonds.DetermineConnectivity(mol)
            template = ccd.component(resname).to_rdkit(heavy_only=True)
            out = AllChem.AssignBondOrdersFromTemplate(template, mol)
            for a in out.GetAtoms():  # hydrogens are implicit: let RDKit count them from valence
                a.SetNoImplicit(False)
                a.SetNumRadicalElectrons(0)
            Chem.SanitizeMol(out)
            Chem.AssignStereochemistryFrom3D(out)
    except Exception:  # noqa: BLE001
        return None
    return out


def _mol_via_geometry(atoms, resname):
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    rw = Chem.RWMol()
    conf = Chem.Conformer(len(atoms))
    for i, a in enumerate(atoms):
        at = Chem.Atom(a.element.atomic_number)
        rw.AddAtom(at)
        conf.SetAtomPosition(i, (a.pos.x, a.pos.y, a.pos.z))
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    try:
        with rdkit_messages():
            rdDetermineBonds.DetermineConnectivity(mol)
            if sum(1 for a in atoms if a.element.name not in ("H", "D")) <= 60:
                rdDetermineBonds.DetermineBondOrders(mol, charge=0, allowChargedFragments=False)
            Chem.SanitizeMol(mol)
            Chem.AssignStereochemistryFrom3D(mol)
    except Exception:  # noqa: BLE001
        return None
    return mol


@dataclass
class LigandSite:
    """A ligand residue and its contact residues (no SMILES: cheap enough to mark on load)."""

    ligand: LigandRef
    residues: list[PocketResidue]
    cutoff: float = DEFAULT_CUTOFF
    warnings: list[str] = field(default_factory=list)
    residue: object = None  # the gemmi.Residue of the ligand
    chain: object = None  # its gemmi.Chain

    @property
    def keys(self) -> set[tuple[str, str]]:
        """{(chain, "number+icode")} of the contact residues: how the desktop names residues."""
        return {(r.chain, f"{r.resnum}{r.icode}") for r in self.residues}


def _check_cutoff(cutoff: float) -> float:
    try:
        cutoff = float(cutoff)
    except (TypeError, ValueError):
        raise PocketError(f"cutoff must be a number of Å, not {cutoff!r}") from None
    if not (0 < cutoff <= 20):
        raise PocketError(f"cutoff must be between 0 and 20 Å, not {cutoff}")
    return cutoff


def ligand_site(obj, ligand: str | None = None, chain: str | None = None, resnum: int | None = None,
                cutoff: float = DEFAULT_CUTOFF) -> LigandSite:
    """The pocket of a ligand residue: the one pocket rule (``find_pocket`` adds the SMILES and the
    sequences). ``ligand`` is a residue name or a spec (``"XK2 A:263"``); none: the largest ligand."""
    cutoff = _check_cutoff(cutoff)
    st = _structure(obj)
    if len(st) == 0:
        raise PocketError("the structure has no model")
    ch, res, warns = select_ligand(st, ligand, chain, resnum)
    if _res.is_amino_acid(res.name) and res.het_flag != "H":
        warns.append(f"{res.name} {ch.name}{res.seqid.num} is a polymer residue; using it as the ligand")
    lig_xyz = np.array([[a.pos.x, a.pos.y, a.pos.z] for a in res if _heavy(a)], float).reshape(-1, 3)
    residues = contact_residues(st, lig_xyz, cutoff, exclude=res)
    if not residues:
        warns.append(f"no protein residue within {cutoff} Å of the ligand")
    return LigandSite(_ref(ch, res), residues, cutoff, warns, res, ch)


def find_pocket(obj, ligand: str | None = None, chain: str | None = None, resnum: int | None = None,
                cutoff: float = DEFAULT_CUTOFF, ligand_mol=None) -> Pocket:
    """The pocket of a complex (LoadedObject or gemmi.Structure).

    ``ligand``/``chain``/``resnum`` select a ligand residue (``ligand_site``); ``ligand_mol`` (an
    RDKit Mol with a conformer, e.g. from a PoseBusters SDF) supplies the ligand from outside the
    structure instead.
    """
    cutoff = _check_cutoff(cutoff)
    st = _structure(obj)
    if len(st) == 0:
        raise PocketError("the structure has no model")
    seqs = {c: "".join(_res.one_letter(r.name) for r in rs) for c, rs in chain_residues(st).items()}
    if not seqs:
        raise PocketError("no protein chain (no amino-acid residues) in the structure")
    if ligand_mol is not None:
        if ligand_mol.GetNumConformers() == 0:
            raise PocketError("the ligand molecule has no coordinates")
        pos = ligand_mol.GetConformer().GetPositions()
        heavy = [a.GetIdx() for a in ligand_mol.GetAtoms() if a.GetAtomicNum() > 1]
        name = ligand_mol.GetProp("_Name").strip() if ligand_mol.HasProp("_Name") else ""
        info = LigandInfo(ligand or (name[:3].upper() if name else "LIG"), "", 0,
                          canonical_smiles(ligand_mol), ligand_mol, len(heavy))
        residues = contact_residues(st, pos[heavy], cutoff)
        warns = [] if residues else [f"no protein residue within {cutoff} Å of the ligand"]
        return Pocket(info, residues, seqs, cutoff, warns)
    site = ligand_site(st, ligand, chain, resnum, cutoff)
    mol, w = ligand_mol_from_residue(site.residue)
    smiles = canonical_smiles(mol) if mol is not None else None
    info = LigandInfo(site.residue.name, site.chain.name, site.residue.seqid.num, smiles, mol,
                      site.ligand.heavy_atoms)
    return Pocket(info, site.residues, seqs, cutoff, site.warnings + w)
