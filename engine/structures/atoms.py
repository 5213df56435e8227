"""AtomTable: the flat numpy view of any LoadedObject that the 3D view draws.

Bonds: molecules take RDKit's bonds and orders; proteins and complexes take the Chemical Component
Dictionary's bonds and orders by atom name (``engine.structures.ccd``, biotite's copy), peptide and
nucleotide links between consecutive residues, and distance-based bonds for residues the dictionary
lacks; crystals take covalent-radius bonds inside the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.structures import residues as _res
from engine.structures.model import LoadedObject


@dataclass
class AtomTable:
    xyz: np.ndarray  # (N, 3) float32, Å, Cartesian
    elements: list[str]
    atomic_numbers: np.ndarray  # (N,) int
    atom_names: list[str]
    res_names: list[str]
    res_nums: np.ndarray
    chains: list[str]
    hetero: np.ndarray  # (N,) bool
    bonds: np.ndarray  # (M, 2) int
    bond_orders: np.ndarray  # (M,) float (1, 1.5, 2, 3)
    cell: np.ndarray | None = None  # (3, 3)

    def __len__(self) -> int:
        return int(self.xyz.shape[0])


def _empty() -> AtomTable:
    return AtomTable(np.zeros((0, 3), np.float32), [], np.zeros(0, int), [], [], np.zeros(0, int), [],
                     np.zeros(0, bool), np.zeros((0, 2), int), np.zeros(0, float), None)


def atom_table(obj: LoadedObject) -> AtomTable:
    """The atoms of ``obj`` as numpy arrays (an empty table for a bare sequence)."""
    if obj.structure is not None:
        return _from_gemmi(obj.structure)
    if obj.mol is not None:
        return _from_rdkit(obj.mol)
    if obj.crystal is not None:
        return _from_pymatgen(obj.crystal)
    return _empty()


# --- RDKit ------------------------------------------------------------------------------------

_ORDER = {"SINGLE": 1.0, "DOUBLE": 2.0, "TRIPLE": 3.0, "AROMATIC": 1.5}


def _from_rdkit(mol) -> AtomTable:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    n = mol.GetNumAtoms()
    if mol.GetNumConformers() == 0:
        m = Chem.Mol(mol)
        ok = -1
        if n <= 200:
            try:
                ok = AllChem.EmbedMolecule(m, randomSeed=0xF00D, maxAttempts=0, useRandomCoords=n > 60)
            except Exception:  # noqa: BLE001
                ok = -1
        if ok != 0:
            AllChem.Compute2DCoords(m)
        xyz = m.GetConformer().GetPositions()
    else:
        xyz = mol.GetConformer().GetPositions()
    elements, z, names, resn, resi, chains, het = [], [], [], [], [], [], []
    for a in mol.GetAtoms():
        elements.append(a.GetSymbol())
        z.append(a.GetAtomicNum())
        info = a.GetPDBResidueInfo()
        if info is not None:
            names.append(info.GetName().strip())
            resn.append(info.GetResidueName().strip())
            resi.append(info.GetResidueNumber())
            chains.append(info.GetChainId().strip())
            het.append(bool(info.GetIsHeteroAtom()))
        else:
            names.append(f"{a.GetSymbol()}{a.GetIdx() + 1}")
            resn.append("LIG")
            resi.append(1)
            chains.append("")
            het.append(True)
    bonds = np.array([[b.GetBeginAtomIdx(), b.GetEndAtomIdx()] for b in mol.GetBonds()], dtype=int).reshape(-1, 2)
    orders = np.array([_ORDER.get(str(b.GetBondType()), float(b.GetBondTypeAsDouble() or 1.0))
                       for b in mol.GetBonds()], dtype=float)
    return AtomTable(np.asarray(xyz, np.float32).reshape(-1, 3), elements, np.array(z, int), names, resn,
                     np.array(resi, int), chains, np.array(het, bool), bonds, orders, None)


# --- gemmi (proteins, complexes) ------------------------------------------------------------------


def _from_gemmi(st) -> AtomTable:
    model = st[0]
    coords, elements, z, names = [], [], [], []
    resn, resi, chains, het = [], [], [], []
    residues = []  # (start, end, name, chain, polymer-linkable)
    k = 0
    for ch in model:
        cname = ch.name
        for res in ch:
            rname = res.name
            polymer = _res.is_polymer_residue(rname)
            hetero = res.het_flag == "H" or not polymer
            start = k
            for a in res:
                p = a.pos
                coords.append((p.x, p.y, p.z))
                el = a.element
                sym = el.name
                elements.append(sym if sym != "X" else (a.name.strip()[:1] or "X"))
                z.append(el.atomic_number)
                names.append(a.name)
            k = len(names)
            n = k - start
            resn.extend([rname] * n)
            resi.extend([res.seqid.num] * n)
            chains.extend([cname] * n)
            het.extend([hetero] * n)
            residues.append((start, k, rname, cname, polymer))
    xyz = np.array(coords, np.float32).reshape(-1, 3)
    bonds, orders = _template_bonds(xyz, elements, names, residues)
    return AtomTable(xyz, elements, np.array(z, int), names, resn, np.array(resi, int), chains,
                     np.array(het, bool), bonds, orders, None)


_TEMPLATES: dict[str, dict | None] = {}


def _residue_template(name: str):
    """{(atom1, atom2): order} for a residue name from the Chemical Component Dictionary."""
    if name not in _TEMPLATES:
        from engine.structures import ccd

        try:
            _TEMPLATES[name] = ccd.component(name).bond_orders_by_name()
        except KeyError:
            _TEMPLATES[name] = None
    return _TEMPLATES[name]


def _template_bonds(xyz, elements, names, residues):
    """Intra-residue bonds and orders from the dictionary by atom name, peptide/nucleotide links
    between consecutive polymer residues, and distance bonds for residues the dictionary lacks."""
    n = len(elements)
    if n == 0:
        return np.zeros((0, 2), int), np.zeros(0, float)
    pairs, orders, lonely = [], [], []
    for start, end, rname, _chain, _poly in residues:
        tmpl = _residue_template(rname)
        if tmpl is None:
            lonely.extend(range(start, end))
            continue
        index = {names[i]: i for i in range(start, end)}
        for (a1, a2), order in tmpl.items():
            i, j = index.get(a1), index.get(a2)
            if i is not None and j is not None:
                pairs.append((i, j))
                orders.append(order)
    # links between consecutive polymer residues of a chain: C–N (peptide) and O3'–P (nucleotide)
    for (s1, e1, _n1, c1, p1), (s2, e2, _n2, c2, p2) in zip(residues, residues[1:]):
        if not (p1 and p2 and c1 == c2):
            continue
        for a, b in (("C", "N"), ("O3'", "P")):
            i = next((t for t in range(s1, e1) if names[t] == a), None)
            j = next((t for t in range(s2, e2) if names[t] == b), None)
            if i is not None and j is not None and np.sum((xyz[i] - xyz[j]) ** 2) < 2.0 ** 2:
                pairs.append((i, j))
                orders.append(1.0)
    bonds = np.array(pairs, int).reshape(-1, 2)
    bond_orders = np.array(orders, float)
    if lonely:
        extra, eo = _distance_bonds(xyz, elements, subset=np.array(lonely, int))
        if len(extra):
            bonds = np.vstack([bonds, extra])
            bond_orders = np.concatenate([bond_orders, eo])
    return bonds, bond_orders


_COV = {"H": 0.31, "C": 0.76, "N": 0.71, "O": 0.66, "F": 0.57, "P": 1.07, "S": 1.05, "CL": 1.02, "BR": 1.20,
        "I": 1.39, "B": 0.84, "SI": 1.11, "SE": 1.20}


def covalent_radius(el: str) -> float:
    el = el.upper()
    if el in _COV:
        return _COV[el]
    try:
        from rdkit import Chem

        return float(Chem.GetPeriodicTable().GetRcovalent(el.capitalize()))
    except Exception:  # noqa: BLE001
        return 1.5


def _distance_bonds(xyz, elements, subset=None, tol=0.45):
    """Bonds by covalent radii (sum + tol Å); with ``subset``, only bonds touching those atoms."""
    from scipy.spatial import cKDTree

    xyz = np.asarray(xyz, float)
    rad = np.array([covalent_radius(e) for e in elements])
    tree = cKDTree(xyz)
    if subset is None:
        pairs = tree.query_pairs(2 * rad.max() + tol, output_type="ndarray")
    else:
        sub = cKDTree(xyz[subset])
        res = sub.query_ball_tree(tree, 2 * rad.max() + tol)
        pairs = np.array([(subset[i], j) for i, js in enumerate(res) for j in js if subset[i] != j], int).reshape(-1, 2)
        pairs = np.unique(np.sort(pairs, axis=1), axis=0) if len(pairs) else pairs
    if len(pairs) == 0:
        return np.zeros((0, 2), int), np.zeros(0, float)
    d = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
    keep = (d > 0.4) & (d < rad[pairs[:, 0]] + rad[pairs[:, 1]] + tol)
    hh = np.array([elements[i].upper() == "H" and elements[j].upper() == "H" for i, j in pairs])
    keep &= ~hh
    out = pairs[keep].astype(int)
    return out, np.ones(len(out), float)


# --- pymatgen (crystals) ------------------------------------------------------------------------


def _from_pymatgen(s) -> AtomTable:
    n = len(s)
    xyz = np.asarray(s.cart_coords, np.float32).reshape(-1, 3)
    elements, z = [], []
    for site in s:
        sp = max(site.species.items(), key=lambda kv: kv[1])[0]  # majority species on a disordered site
        el = getattr(sp, "element", sp)
        sym = getattr(el, "symbol", str(el))
        elements.append(sym)
        z.append(int(getattr(el, "Z", 0)))
    bonds, orders = _distance_bonds(xyz, elements) if n else (np.zeros((0, 2), int), np.zeros(0, float))
    names = [f"{e}{i + 1}" for i, e in enumerate(elements)]
    return AtomTable(xyz, elements, np.array(z, int), names, [""] * n, np.zeros(n, int), [""] * n,
                     np.zeros(n, bool), bonds, orders, np.asarray(s.lattice.matrix, float))


# --- sequences ----------------------------------------------------------------------------------


def chain_sequences(st, polymer_only: bool = True) -> dict[str, str]:
    """chain name -> one-letter sequence of its amino-acid residues (model 1), in file order."""
    out: dict[str, str] = {}
    for ch in st[0]:
        letters = [_res.one_letter(r.name) for r in ch if _res.is_amino_acid(r.name)]
        if letters or not polymer_only:
            name = ch.name
            if name in out:  # gemmi may split a chain's ligands/waters into a same-named chain
                out[name] += "".join(letters)
            else:
                out[name] = "".join(letters)
    return {k: v for k, v in out.items() if v or not polymer_only}
