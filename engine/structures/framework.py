"""Metal–organic frameworks: a CIF becomes metal node(s) + organic linkers + the LOGOS material record.

The approach measured in shared/DATA-SOURCES.md (no maintained decomposition library works offline
here: mofstructure needs GPL openbabel, moffragmentor pins old numpy): pymatgen's periodic neighbour
list gives covalent-radius bonds; networkx splits the bond graph into metal-containing nodes
(metals plus bridging inorganic atoms: O, OH, F, ...) and organic components; each organic
component is unwrapped across cell boundaries, turned into its neutral parent (carboxylates as
acids, azolates as NH azoles, phosphonates as acids) and given bond orders by RDKit's valence
matching at total charge 0. Identical components are solved once. Every step is bounded:
structures over ``MAX_SITES`` sites and components over ``MAX_LINKER_ATOMS`` atoms are refused,
and a per-CIF ``timeout`` is checked between steps.

Node strings (LOGOS-GRAMMAR.md DEFAULT): metals, bridging inorganic atoms (H left out), then the
coordinating groups: ``Cu2(CO2)4``, ``Zn4O(CO2)6``; an infinite node is ``rod[...]`` or
``layer[...]`` (``net[...]`` for an all-inorganic 3D net) with the formula per repeat.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import reduce

import numpy as np

from engine.grammar import codec as _codec
from engine.grammar.chem import canonical_smiles, rdkit_messages
from engine.structures import bondorders as _bo

MAX_SITES = 6000
_RDKIT_FALLBACK = True
MAX_LINKER_ATOMS = 400  # atoms (H included) of one organic component handed to bond-order search
RDKIT_MAX_ATOMS = 150  # the fallback (RDKit's valence search) only on components up to this size
BIG_LINKER = 80  # components over this many atoms get one bond-order attempt, and only with time left
BRIDGE_SPAN = 5.0  # Å: a component binding metals further apart than this bridges an infinite node
BOND_TOL = 0.40  # Å added to the sum of covalent radii (the CSD convention)
OVERLAP = 0.60  # Å: closer atoms mean an unresolved disorder
OVERLAP_SAME = 1.00  # Å: two atoms of one element this close are two positions of one disordered atom
OVERLAP_H = 0.70  # Å: a hydrogen this close to another atom is a disordered position (X–H bonds are >= 0.8)
OVERLAP_HH = 1.00  # Å: two hydrogens this close are two disordered positions of one (H2 is not in a MOF)
DEFAULT_TIMEOUT = 10.0  # s per CIF, checked between steps (one bond-order search may overrun it)

NONMETALS = frozenset({"H", "D", "He", "B", "C", "N", "O", "F", "Ne", "Si", "P", "S", "Cl", "Ar", "As", "Se",
                       "Br", "Kr", "Te", "I", "Xe", "At", "Rn", "Ge", "Sb"})

# CSD covalent radii (Å) for the elements that matter most; others from RDKit's table.
_RADII = {"H": 0.23, "D": 0.23, "B": 0.83, "C": 0.68, "N": 0.68, "O": 0.68, "F": 0.64, "Si": 1.20, "P": 1.05,
          "S": 1.02, "Cl": 0.99, "Br": 1.21, "I": 1.40, "Se": 1.22, "As": 1.21, "Li": 1.28, "Na": 1.66,
          "K": 2.03, "Mg": 1.41, "Ca": 1.76, "Al": 1.21, "Zn": 1.22, "Cu": 1.32, "Co": 1.26, "Ni": 1.24,
          "Fe": 1.32, "Mn": 1.39, "Cr": 1.39, "V": 1.53, "Ti": 1.60, "Zr": 1.75, "Hf": 1.75, "Cd": 1.44,
          "Ag": 1.45, "In": 1.42, "Sc": 1.70, "Y": 1.90, "La": 2.07, "Ce": 2.04, "Pb": 1.46, "Ba": 2.15,
          "Sr": 1.95, "Ga": 1.22, "Sn": 1.39, "Bi": 1.48, "Hg": 1.32, "Pd": 1.39, "Pt": 1.36, "Au": 1.36,
          "Mo": 1.54, "W": 1.62, "Ru": 1.46, "Rh": 1.42, "Re": 1.51, "Os": 1.44, "Ir": 1.41, "U": 1.96,
          "Th": 2.06, "Be": 0.96, "Rb": 2.20, "Cs": 2.44, "Tl": 1.45, "Sb": 1.39, "Te": 1.47, "Ge": 1.17}


class FrameworkError(ValueError):
    pass


class NotAFramework(FrameworkError):
    """The structure has no metal–organic connectivity: refused, not a failure of the decomposer."""

    def __str__(self):
        return "not a framework: " + super().__str__()


# bound solvent (neutral parents): a terminal ligand even where it bridges two metal sites
# (formate and acetate are not here: bridging metals they are carboxylate linkers of their own)
SOLVENTS = frozenset({"O", "CO", "CCO", "CC(C)O", "CCCO", "CN(C)C=O", "CCN(CC)C=O", "CC(=O)N(C)C", "CS(C)=O",
                      "CC#N", "C1CCOC1", "C1COCCO1", "c1ccncc1", "CN1CCCC1=O", "CC(C)=O", "NC=O", "CNC=O",
                      "N", "ClCCl", "ClC(Cl)Cl", "c1ccccc1", "Cc1ccccc1", "O=C1CCCN1", "CCOCC", "COCCOC"})


@dataclass
class MetalNode:
    formula: str  # e.g. "Cu2(CO2)4" or "rod[Zn2O2(CO2)4]"
    metals: dict  # element -> count (per node, or per repeat when infinite)
    dimension: int  # 0 cluster, 1 rod, 2 layer, 3 net
    count: int = 1  # how many such nodes in the cell


@dataclass
class Framework:
    name: str
    ok: bool = False  # a complete record: a node with a metal and every linker sane
    metal: str = ""  # the <MetalS> segment
    nodes: list = field(default_factory=list)  # MetalNode
    linkers: list = field(default_factory=list)  # canonical SMILES, largest first
    record: str | None = None
    reasons: list = field(default_factory=list)  # why not ok
    warnings: list = field(default_factory=list)  # what was dropped (solvent, terminal ligands)
    seconds: float = 0.0
    failed_linkers: int = 0  # bridging organic components whose chemistry could not be made sane
    not_framework: bool = False  # refused: no metal–organic connectivity (not a decomposer failure)
    h_missing: bool = False  # the CIF has no hydrogens at all: all were added from the geometry
    h_added_carbon: int = 0  # hydrogens added on linker carbons (missing in the CIF)
    merged_overlaps: int = 0  # overlapping atom pairs (disorder) resolved by keeping one atom

    @property
    def decomposed(self) -> bool:
        """A metal node and at least one bridging linker were found (linkers may still be insane)."""
        return bool(self.nodes) and (bool(self.linkers) or self.failed_linkers > 0)

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "metal": self.metal, "linkers": self.linkers,
                "record": self.record, "reasons": self.reasons, "warnings": self.warnings,
                "nodes": [{"formula": n.formula, "dimension": n.dimension, "count": n.count} for n in self.nodes],
                "seconds": round(self.seconds, 3), "decomposed": self.decomposed,
                "not_framework": self.not_framework, "h_missing": self.h_missing,
                "h_added_carbon": self.h_added_carbon, "merged_overlaps": self.merged_overlaps,
                "failure": failure_class(self)}


def _radius(el: str) -> float:
    if el in _RADII:
        return _RADII[el]
    try:
        from rdkit import Chem

        return float(Chem.GetPeriodicTable().GetRcovalent(el))
    except Exception:  # noqa: BLE001
        return 1.5


def is_metal(el: str) -> bool:
    return el not in NONMETALS


# ------------------------------------------------------------------------------------------------


def _load(source, name):
    """A pymatgen Structure from a path, CIF text, LoadedObject or Structure."""
    from pathlib import Path

    from engine.structures import io as sio
    from engine.structures.model import LoadedObject

    if hasattr(source, "lattice") and hasattr(source, "sites"):
        return source, name or "framework"
    if isinstance(source, LoadedObject):
        if source.crystal is None:
            raise FrameworkError(f"{source.name} is a {source.kind}, not a crystal")
        return source.crystal, name or source.name
    if isinstance(source, (str, bytes)) and (isinstance(source, bytes) or "\n" in source):
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        fast = sio.read_p1_cif(text)
        if fast is not None:
            return fast, name or "framework"
        data = text.encode()
        objs = sio.read_bytes(data, fmt="cif", name=name or "framework.cif")
        return objs[0].crystal, name or objs[0].name
    p = Path(source)
    if p.suffix.lower() == ".cif" and p.is_file() and p.stat().st_size < sio.max_bytes():
        fast = sio.read_p1_cif(p.read_text(errors="replace"))
        if fast is not None:
            return fast, name or p.stem
    objs = sio.read_file(p)
    if objs[0].crystal is None:
        raise FrameworkError(f"{p.name} holds a {objs[0].kind}, not a crystal")
    return objs[0].crystal, name or p.stem


def decompose(source, name: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Framework:
    """Split a framework into metal node(s) and linkers. Never raises on bad content: a Framework
    with ``ok`` False and ``reasons`` says what went wrong."""
    t0 = time.monotonic()
    fw = Framework(name or "framework")
    try:
        s, fw.name = _load(source, name)
        _decompose(s, fw, t0 + timeout)
    except Exception as exc:  # noqa: BLE001 - a report row, never a crash
        fw.reasons.append(" ".join(str(exc).split()) or type(exc).__name__)
        fw.not_framework = isinstance(exc, NotAFramework)
    fw.ok = not fw.reasons and bool(fw.linkers) and bool(fw.nodes)
    if fw.ok:
        try:
            fw.record = _codec.encode_material(fw.metal, fw.linkers)
        except _codec.GrammarError as exc:
            fw.ok = False
            fw.reasons.append(str(exc))
    fw.seconds = time.monotonic() - t0
    return fw


def _check_time(deadline, stage):
    if time.monotonic() > deadline:
        raise FrameworkError(f"time limit reached during {stage}")


def _decompose(s, fw: Framework, deadline: float) -> None:
    if len(s) > MAX_SITES:
        raise FrameworkError(f"{len(s)} sites in the cell, over the {MAX_SITES} limit")
    if not s.is_ordered:
        raise FrameworkError("partial occupancy (disordered sites); decomposition needs an ordered structure")
    els = [site.specie.symbol for site in s]
    metals = [i for i, e in enumerate(els) if is_metal(e)]
    if not metals:
        raise NotAFramework("no metal in the structure")
    if "C" not in els:
        raise NotAFramework("no carbon in the structure")
    if "H" not in els and "D" not in els:
        fw.warnings.append("no hydrogen atoms in the CIF: every linker hydrogen was added from the geometry")
        fw.h_missing = True
    if len(s) and (np.abs(s.frac_coords) >= 1.0).any():
        # a site written thousands of cells away is the same site in a periodic crystal; left
        # there, the neighbour search walks every image in between (a damaged POSCAR hung it)
        s = s.copy()
        s.translate_sites(list(range(len(s))), [0.0, 0.0, 0.0], frac_coords=True, to_unit_cell=True)

    s, els, (ci, pj, images, dist), _ = _resolve_overlaps(s, els, fw, deadline)
    ci, pj, images = _bonds(s, els, ci, pj, images, dist)
    drop = _disorder_components(s, els, ci, pj, images)
    scarred: set[int] = set()  # atoms bonded to a dropped disorder component (new numbering)
    if drop:
        near = {int(j) for i, j in zip(ci.tolist(), pj.tolist()) if i in drop and j not in drop}
        kept = [k for k in range(len(els)) if k not in drop]
        renum = {old: new for new, old in enumerate(kept)}
        scarred = {renum[k] for k in near}
        s = s.copy()
        s.remove_sites(sorted(drop))
        els = [e for k, e in enumerate(els) if k not in drop]
        fw.warnings.append(f"disorder: {len(drop)} atom(s) of a second, overlapping component dropped "
                           "(the component listed first in the CIF is kept)")
        fw.merged_overlaps += len(drop)
        s, els, (ci, pj, images, dist), kept2 = _resolve_overlaps(s, els, fw, deadline)
        renum2 = {old: new for new, old in enumerate(kept2)}
        scarred = {renum2[k] for k in scarred if k in renum2}
        ci, pj, images = _bonds(s, els, ci, pj, images, dist)
    metals = [i for i, e in enumerate(els) if is_metal(e)]

    metal_mask = np.array([is_metal(e) for e in els])
    g = _PeriodicGraph(len(s), ci, pj, images)
    g.scarred = scarred

    # organic vs inorganic non-metal components
    nonmetal = [i for i in range(len(s)) if not metal_mask[i]]
    comps = g.components(set(nonmetal))
    organic, inorganic_atoms = [], set()
    metal_nbrs = {i: set() for i in range(len(s))}
    for i, j in zip(ci, pj):
        if metal_mask[j] and not metal_mask[i]:
            metal_nbrs[i].add(int(j))
    free_inorganic = 0
    for c in comps:
        if _is_organic(g, c, els, s.cart_coords, s.lattice.matrix):
            organic.append(c)
        elif any(metal_nbrs[i] for i in c):
            inorganic_atoms.update(c)
        else:
            free_inorganic += 1
    if free_inorganic:
        fw.warnings.append(f"dropped {free_inorganic} free inorganic species not bound to a metal (ions, water)")
    _check_time(deadline, "graph split")

    # metal nodes (secondary building units): metals, bridging inorganic atoms, and the atoms that
    # join metals through a linker's coordinating group (shared donor atoms, O–C–O of carboxylates)
    donor_atoms = {i for i in nonmetal if metal_nbrs[i] and i not in inorganic_atoms}
    carboxyl_c = set()
    for d in donor_atoms:
        if els[d] != "O":
            continue
        heavy = [n for n in g.neighbors(d) if not metal_mask[n] and els[n] not in ("H", "D")]
        if len(heavy) == 1 and els[heavy[0]] == "C":
            c = heavy[0]
            term_o = [n for n in g.neighbors(c) if els[n] == "O" and
                      sum(1 for m in g.neighbors(n) if not metal_mask[m]) == 1]
            if len(term_o) == 2:
                carboxyl_c.add(c)
    node_atoms = set(metals) | inorganic_atoms | donor_atoms | carboxyl_c

    def node_edge(u, v):
        if u in carboxyl_c and v in carboxyl_c:
            return False
        if (u in carboxyl_c or v in carboxyl_c) and not (els[u] == "O" or els[v] == "O"):
            return False  # a carboxylate C joins only through its own oxygens
        return True

    clusters = [c for c in g.components(node_atoms, node_edge) if any(metal_mask[i] for i in c)]
    atom_cluster = {}
    for k, c in enumerate(clusters):
        for i in c:
            atom_cluster[i] = k
    core_atoms = set(metals) | inorganic_atoms
    # each node's own frame: the image offset of its metals (None for infinite nodes)
    cluster_frame: dict[int, tuple] = {}
    for k, c in enumerate(clusters):
        offs_c, dim_c = g.unwrap(set(c), node_edge)
        basis = None
        if dim_c:
            _, sv, vt = np.linalg.svd(g.last_loops)
            basis = vt[:dim_c]  # orthonormal basis of the node's periodic directions
        cluster_frame[k] = (basis, offs_c)

    # organic components: unwrap, classify, solve
    solved: dict[str, tuple[str | None, list[str], int]] = {}
    h_carbon = h_dropped = 0
    linker_counts: Counter = Counter()
    cluster_groups: dict[int, Counter] = {k: Counter() for k in range(len(clusters))}
    terminal: Counter = Counter()
    free: Counter = Counter()
    frac = s.frac_coords
    lat = s.lattice.matrix
    for comp in organic:
        _check_time(deadline, "linkers")
        comp = set(comp)
        offs, dim = g.unwrap(comp)
        if dim > 0:
            raise FrameworkError(f"an organic component ({_formula_of([els[i] for i in comp])}) is infinite "
                                 f"in {dim} dimension(s): polymeric, not a linker")
        xyz = {i: (frac[i] + offs[i]) @ lat for i in comp}
        donors = [i for i in comp if metal_nbrs[i]]
        groups = _donor_groups(g, comp, donors, els)
        for grp, atoms in groups:
            for cl in {atom_cluster[m] for a in atoms for m in metal_nbrs[a]}:
                cluster_groups[cl][grp] += 1
        key = _graph_key(g, comp, els)
        if not donors:
            free[_formula_of([els[i] for i in comp])] += 1
            continue
        n_inst, metal_xyz = _node_instances(g, donors, offs, atom_cluster, cluster_frame, metal_mask, frac, lat)
        spread = max((float(np.linalg.norm(a - b)) for a in metal_xyz for b in metal_xyz), default=0.0)
        if n_inst < 2 and spread <= BRIDGE_SPAN:
            terminal[_formula_of([els[i] for i in comp])] += 1
            continue
        if key not in solved:
            if len(comp) > BIG_LINKER and deadline - time.monotonic() < 0.5 * DEFAULT_TIMEOUT:
                raise FrameworkError(f"time limit: no time left for the bond orders of a {len(comp)}-atom linker")
            solved[key] = _linker_smiles(g, comp, els, xyz, donors, metal_nbrs, deadline)
        smi, why, h_c = solved[key]
        if smi is not None and smi in SOLVENTS:
            terminal[smi] += 1  # a solvent molecule bridging two sites is still bound solvent
            continue
        h_carbon += h_c[0]
        h_dropped += h_c[1]
        if smi is None:
            bad = f"linker {_formula_of([els[i] for i in comp])}: {'; '.join(why)}"
            if bad not in fw.reasons:
                fw.reasons.append(bad)
            fw.failed_linkers += 1
            continue
        linker_counts[smi] += 1
    if free:
        fw.warnings.append("dropped unbound organic species (solvent/guests): "
                           + ", ".join(f"{f} x{n}" for f, n in sorted(free.items())))
    if terminal:
        fw.warnings.append("dropped terminal ligands bound to one site (bound solvent, capping groups): "
                           + ", ".join(f"{f} x{n}" for f, n in sorted(terminal.items())))
    if not linker_counts and not fw.failed_linkers:
        if not organic:
            raise NotAFramework("no organic component (carbon only in carbonate, cyanide or similar ions)")
        if not terminal:
            raise NotAFramework("no organic component binds a metal (organic molecules are guests only)")
        raise NotAFramework("no bridging organic linker: every organic part binds one metal site "
                            "(a molecular complex or an inorganic net with terminal ligands)")
    fw.h_added_carbon = h_carbon
    if h_dropped:
        fw.warnings.append(f"dropped {h_dropped} surplus hydrogen(s) on linker atoms (disordered H sets or N–H+)")
    if h_carbon:
        fw.warnings.append(f"added {h_carbon} hydrogen(s) on linker carbons from the geometry (missing in the CIF)")

    # node formulas
    formulas: Counter = Counter()
    node_objs: dict[str, MetalNode] = {}
    for k, c in enumerate(clusters):
        if not any(metal_mask[i] for i in c):
            continue
        basis = cluster_frame[k][0]
        dim = 0 if basis is None else len(basis)
        counts = Counter(els[i] for i in c if els[i] not in ("H", "D") and i in core_atoms)
        groups = cluster_groups[k]
        f = _node_formula(counts, groups, dim)
        formulas[f] += 1
        allc = list(counts.values()) + list(groups.values())
        div = reduce(math.gcd, allc) if dim > 0 and allc else 1  # per repeat, as in the formula
        node_objs.setdefault(f, MetalNode(f, {e: n // div for e, n in counts.items() if is_metal(e)}, dim))
    for f, n in formulas.items():
        node_objs[f].count = n
    order = sorted(formulas, key=lambda f: (-formulas[f], f))
    fw.nodes = [node_objs[f] for f in order]
    fw.metal = "+".join(order)
    fw.linkers = _codec.order_linkers(list(linker_counts))


def _bonds(s, els, ci, pj, images, dist):
    """The neighbour pairs that are bonds: covalent radii + ``BOND_TOL``; metal–carbon only when short
    (cyanide, carbonyl), not the C of a chelating carboxylate; no H–H and no H–metal bonds."""
    rad = np.array([_radius(e) for e in els])
    bonded = dist <= rad[ci] + rad[pj] + BOND_TOL
    metal = np.array([is_metal(e) for e in els])
    isC = np.array([e == "C" for e in els])
    mC = (isC[ci] & metal[pj]) | (isC[pj] & metal[ci])
    bonded &= ~mC | (dist <= rad[ci] + rad[pj])
    isH = np.array([e in ("H", "D") for e in els])
    bonded &= ~(isH[ci] & isH[pj])
    bonded &= ~(isH[ci] & metal[pj]) & ~(isH[pj] & metal[ci])
    return ci[bonded], pj[bonded], images[bonded]


def _disorder_components(s, els, ci, pj, images) -> set[int]:
    """Atoms of a second disorder component, to drop. Two atoms bonded to one non-metal atom at an
    impossible angle (under ``MIN_ANGLE``) are two positions of one disordered atom; so are two
    atoms of one element bonded to each other and to a shared atom that has too many bonds. The atoms in such
    conflicts split into parts (bonded among themselves); parts in conflict must belong to different
    components, found by two-colouring; in each connected set of conflicts, the colour holding the
    atom listed first in the CIF is kept. Empty when there is no conflict or the colouring fails."""
    from engine.structures.bondorders import MIN_ANGLE

    cart, lat = s.cart_coords, s.lattice.matrix
    metal = [is_metal(e) for e in els]
    vecs: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, j, im in zip(ci.tolist(), pj.tolist(), images.tolist()):
        if i != j and not metal[i] and not metal[j]:
            vecs.setdefault(i, []).append((j, cart[j] + np.array(im) @ lat - cart[i]))
    cos_min = math.cos(math.radians(MIN_ANGLE))
    conflicts = set()
    for i, vs in vecs.items():
        for a in range(len(vs)):
            for b in range(a + 1, len(vs)):
                (ja, va), (jb, vb) = vs[a], vs[b]
                if ja != jb and np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-12) > cos_min:
                    conflicts.add((min(ja, jb), max(ja, jb)))
    # an over-bonded atom whose two neighbours are bonded to each other: a ring flipped between two
    # orientations around that atom (the triangle's far edge joins the two positions)
    cap = {"C": 4, "N": 4, "O": 2, "S": 6, "P": 5, "B": 4}
    nbset = {i: {j for j, _ in vs} for i, vs in vecs.items()}
    for i, nbrs in nbset.items():
        if len(nbrs) > cap.get(els[i], 99):
            for ja in nbrs:
                for jb in nbrs:
                    if ja < jb and jb in nbset.get(ja, ()) and els[ja] == els[jb]:
                        conflicts.add((ja, jb))
    if not conflicts:
        return set()
    involved = {a for pair in conflicts for a in pair}
    parent = {a: a for a in involved}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in zip(ci.tolist(), pj.tolist()):
        if i in involved and j in involved and (min(i, j), max(i, j)) not in conflicts:
            parent[find(i)] = find(j)
    part_of = {a: find(a) for a in involved}
    members: dict[int, list[int]] = {}
    for a, p in part_of.items():
        members.setdefault(p, []).append(a)
    adj: dict[int, set] = {p: set() for p in members}
    for a, b in conflicts:
        pa, pb = part_of[a], part_of[b]
        if pa == pb:
            return set()  # a part in conflict with itself: not two clean components
        adj[pa].add(pb)
        adj[pb].add(pa)
    colour: dict[int, int] = {}
    drop: set[int] = set()
    for start in members:
        if start in colour:
            continue
        colour[start] = 0
        group, stack = [start], [start]
        while stack:
            p = stack.pop()
            for q in adj[p]:
                if q not in colour:
                    colour[q] = 1 - colour[p]
                    group.append(q)
                    stack.append(q)
                elif colour[q] == colour[p]:
                    return set()
        first = min(group, key=lambda p: min(members[p]))
        drop.update(a for p in group if colour[p] != colour[first] for a in members[p])
    # hydrogens bonded only to dropped atoms go with them
    for i, j in zip(ci.tolist(), pj.tolist()):
        if els[j] in ("H", "D") and i in drop:
            drop.add(j)
    return drop


def _resolve_overlaps(s, els, fw: Framework, deadline):
    """The neighbour list of a structure whose overlapping atoms (closer than ``OVERLAP``) are resolved.

    CoRE MOF CIFs are P1 at full occupancy, so a disordered group appears as two overlapping copies
    with nothing in the CIF to tell the components apart. Two atoms of one element closer than any
    bond between them (``OVERLAP_SAME``) are one atom (the first in the CIF is kept); a hydrogen on
    top of another atom is dropped. Different
    heavy elements on one spot (a mixed or misassigned site) are refused: no choice is honest."""
    rad = np.array([_radius(e) for e in els])
    kept = list(range(len(els)))  # original indices of the sites left
    for _ in range(4):
        rmax = 2 * rad.max() + BOND_TOL
        ci, pj, images, dist = s.get_neighbor_list(r=rmax, numerical_tol=1e-8)
        _check_time(deadline, "neighbour search")
        ci, pj = ci.astype(int), pj.astype(int)
        images = np.rint(images).astype(int)
        isH = np.array([e in ("H", "D") for e in els])
        same = np.array(els, dtype=object)[ci] == np.array(els, dtype=object)[pj]
        limit = np.where(isH[ci] & isH[pj], OVERLAP_HH, np.where(isH[ci] | isH[pj], OVERLAP_H,
                                                                 np.where(same, OVERLAP_SAME, OVERLAP)))
        close = np.flatnonzero((dist < limit) & (ci != pj))
        if not len(close):
            return s, els, (ci, pj, images, dist), kept
        drop: set[int] = set()
        for k in close.tolist():
            i, j = int(ci[k]), int(pj[k])
            if i in drop or j in drop:
                continue
            hi, hj = els[i] in ("H", "D"), els[j] in ("H", "D")
            if hi or hj:
                drop.add(max(i, j) if hi and hj else (i if hi else j))
            elif els[i] == els[j]:
                drop.add(max(i, j))
            else:
                raise FrameworkError(f"overlapping atoms {els[i]}{i + 1} and {els[j]}{j + 1} ({dist[k]:.2f} Å): "
                                     "unresolved disorder (two elements on one site)")
        s = s.copy()
        s.remove_sites(sorted(drop))
        els = [e for k, e in enumerate(els) if k not in drop]
        kept = [o for k, o in enumerate(kept) if k not in drop]
        rad = np.array([_radius(e) for e in els])
        if not fw.merged_overlaps:
            fw.warnings.append("overlapping atoms (disorder in the CIF) resolved by keeping one of each pair")
        fw.merged_overlaps += len(drop)
    raise FrameworkError("overlapping atoms remain after resolving the disorder")


def _is_organic(g, comp, els, xyz=None, lat=None) -> bool:
    """A component with carbon bonded to carbon or hydrogen, or a larger carbon-containing one;
    carbonate, cyanide, thiocyanate or carbonyl carbon alone is inorganic (part of a node)."""
    cset = set(comp)
    for i in comp:
        if els[i] != "C":
            continue
        nbrs = [j for j in g.neighbors(i) if j in cset]
        if any(els[j] in ("C", "H", "D") for j in nbrs):
            return True
        if len(nbrs) == 2 and xyz is not None:  # a bent two-neighbour carbon lacks its H: formate
            u, v = xyz[nbrs[0]] - xyz[i], xyz[nbrs[1]] - xyz[i]
            u, v = _min_image(u, lat), _min_image(v, lat)
            cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12))
            if cos > -0.87:  # under ~150°: not linear CO2/OCN/SCN
                return True
    return any(els[i] == "C" for i in comp) and sum(els[i] not in ("H", "D") for i in comp) > 4


def _min_image(vec, lat):
    frac = np.linalg.solve(lat.T, vec)
    return (frac - np.round(frac)) @ lat


FAILURE_CLASSES = ("overlapping/disordered atoms", "a linker's bond orders not found or not sane", "time limit",
                   "polymeric organic component", "other")


def failure_class(fw) -> str:
    """'ok', 'not a framework', or one of FAILURE_CLASSES, from a Framework (or its to_dict)."""
    get = fw.get if isinstance(fw, dict) else (lambda k, default=None: getattr(fw, k, default))
    if get("ok"):
        return "ok"
    if get("not_framework"):
        return "not a framework"
    why = (get("reasons") or [""])[0]
    if "time limit" in why:
        return "time limit"
    if "overlapping" in why or "disorder" in why or "partial occupancy" in why:
        return "overlapping/disordered atoms"
    if why.startswith("linker"):
        return "a linker's bond orders not found or not sane"
    if "infinite" in why:
        return "polymeric organic component"
    return "other"


def _node_instances(g, donors, offs, atom_cluster, cluster_frame, metal_mask, frac, lat):
    """How many distinct metal nodes (node, image) a component's donor atoms bind, and the Cartesian
    positions of the metal atoms it binds (in the component's unwrapped frame)."""
    seen = set()
    positions = []
    for a in donors:
        for m, im in g.adj[a]:
            if not metal_mask[m]:
                continue
            k = atom_cluster[m]
            basis, frame = cluster_frame[k]
            positions.append((frac[m] + offs[a] + np.array(im)) @ lat)
            d = (offs[a] + np.array(im) - frame[m]).astype(float)
            if basis is not None:  # infinite node: images along its own periodic directions are itself
                d = d - basis.T @ (basis @ d)
            seen.add((k, tuple(np.round(d, 3).tolist())))
    return len(seen), positions


class _PeriodicGraph:
    """Bonds of a periodic structure: adjacency lists of (neighbour, image of the neighbour)."""

    def __init__(self, n, ci, pj, images):
        self.adj: list[list[tuple[int, tuple]]] = [[] for _ in range(n)]
        for i, j, im in zip(ci.tolist(), pj.tolist(), images.tolist()):
            self.adj[i].append((j, tuple(im)))
        self._nb = [sorted({j for j, _ in a if j != k}) for k, a in enumerate(self.adj)]
        self.scarred: set[int] = set()  # atoms that were bonded to a dropped disorder component

    def neighbors(self, i):
        return self._nb[i]

    def components(self, nodes: set, edge_ok=None) -> list[list[int]]:
        seen, out = set(), []
        for start in sorted(nodes):
            if start in seen:
                continue
            seen.add(start)
            comp, stack = [start], [start]
            while stack:
                i = stack.pop()
                for j in self._nb[i]:
                    if j in nodes and j not in seen and (edge_ok is None or edge_ok(i, j)):
                        seen.add(j)
                        comp.append(j)
                        stack.append(j)
            out.append(sorted(comp))
        return out

    def unwrap(self, comp: set, edge_ok=None):
        """Image offsets that put a component in one piece, and the dimension of its periodicity
        (0: finite; 1: rod; 2: layer; 3: net)."""
        start = min(comp)
        offs = {start: (0, 0, 0)}
        loops = set()
        stack = [start]
        while stack:
            i = stack.pop()
            oi = offs[i]
            for j, im in self.adj[i]:
                if j not in comp or (edge_ok is not None and j != i and not edge_ok(i, j)):
                    continue
                want = (oi[0] + im[0], oi[1] + im[1], oi[2] + im[2])
                if j not in offs:
                    offs[j] = want
                    stack.append(j)
                elif offs[j] != want:
                    oj = offs[j]
                    loops.add((want[0] - oj[0], want[1] - oj[1], want[2] - oj[2]))
        dim = int(np.linalg.matrix_rank(np.array(sorted(loops)))) if loops else 0
        self.last_loops = np.array(sorted(loops), float).reshape(-1, 3)
        return {k: np.array(v) for k, v in offs.items()}, dim


def _graph_key(g, comp, els) -> str:
    import networkx as nx

    h = nx.Graph()
    for n in comp:
        h.add_node(n, el=els[n])
        for m in g.neighbors(n):
            if m in comp:
                h.add_edge(n, m)
    return f"{len(comp)}:" + nx.weisfeiler_lehman_graph_hash(h, node_attr="el", iterations=4)


def _formula_of(elements) -> str:
    c = Counter(elements)
    order = (["C", "H"] if "C" in c else []) + sorted(e for e in c if e not in ("C", "H") or "C" not in c)
    return "".join(f"{e}{c[e] if c[e] > 1 else ''}" for e in order)


def _donor_groups(g, comp, donors, els):
    """Coordinating groups of a linker: ('CO2', atoms) for carboxylates, ('N', [atom]) otherwise."""
    out, used = [], set()
    for d in donors:
        if d in used:
            continue
        heavy_nb = [n for n in g.neighbors(d) if n in comp and els[n] not in ("H", "D")]
        if els[d] == "O" and len(heavy_nb) == 1 and els[heavy_nb[0]] == "C":
            c = heavy_nb[0]
            oxy = [n for n in g.neighbors(c) if n in comp and els[n] == "O" and
                   len([m for m in g.neighbors(n) if m in comp]) == 1]
            if len(oxy) == 2:
                used.update(oxy)
                out.append(("CO2", [o for o in oxy if o in donors]))
                continue
        used.add(d)
        out.append((els[d], [d]))
    return out


def _node_formula(counts: Counter, groups: Counter, dim: int) -> str:
    if dim > 0:
        allc = list(counts.values()) + list(groups.values())
        div = reduce(math.gcd, allc) if allc else 1
        counts = Counter({e: n // div for e, n in counts.items()})
        groups = Counter({k: n // div for k, n in groups.items()})
    metals = sorted(e for e in counts if is_metal(e))
    others = sorted((e for e in counts if not is_metal(e)), key=lambda e: (e != "O", e))
    core = "".join(f"{e}{counts[e] if counts[e] > 1 else ''}" for e in metals + others)
    grp_order = sorted(groups, key=lambda k: (k != "CO2", k))
    tail = "".join(f"({k}){groups[k] if groups[k] > 1 else ''}" for k in grp_order if groups[k])
    body = core + tail
    return {0: body, 1: f"rod[{body}]", 2: f"layer[{body}]"}.get(dim, f"net[{body}]")


def _ring_sets(g, comp, els):
    import networkx as nx

    h = nx.Graph()
    h.add_nodes_from(comp)
    for u in comp:
        for v in g.neighbors(u):
            if v in comp and u != v:
                h.add_edge(u, v)
    return [c for c in nx.minimum_cycle_basis(h) if len(c) <= 8] if h.number_of_edges() < 400 else []


def _linker_smiles(g, comp, els, xyz, donors, metal_nbrs, deadline=None):
    """(canonical SMILES of the neutral parent linker, [], carbon hydrogens added) or (None, reasons, 0)."""
    from rdkit import Chem

    if len(comp) > MAX_LINKER_ATOMS:
        return None, [f"{len(comp)} atoms, over the {MAX_LINKER_ATOMS}-atom limit for bond-order search"], (0, 0)
    comp = sorted(comp)
    idx = {a: k for k, a in enumerate(comp)}
    rw = Chem.RWMol()
    for a in comp:
        rw.AddAtom(Chem.Atom(els[a]))
    seen = set()
    for a in comp:
        for b in g.neighbors(a):
            if b in idx and a != b and (min(a, b), max(a, b)) not in seen:
                seen.add((min(a, b), max(a, b)))
                rw.AddBond(idx[a], idx[b], Chem.BondType.SINGLE)
    # 1. the neutral parent from geometry (hybridisation, pi matching, hydrogens completed)
    pairs = sorted({(idx[a], idx[b]) for a in comp for b in g.neighbors(a) if b in idx and idx[a] < idx[b]})
    try:
        got = _bo.perceive([els[a] for a in comp], pairs, np.array([xyz[a] for a in comp]),
                           donors=[idx[a] for a in donors if a in idx])
        first = _sanity(got.mol)
        scarred = [comp[i] for i in got.h_carbon_atoms if comp[i] in g.scarred]
        if scarred and not first:
            first = [f"after the disorder was resolved, {len(scarred)} linker carbon(s) next to a dropped atom lack "
                     "hydrogens: the kept component is incomplete (overlapping or disordered atoms)"]
        if not first:
            return canonical_smiles(got.mol), [], (got.h_added_carbon, got.h_dropped)
    except _bo.BondOrderError as exc:
        first = [str(exc)]
    # RDKit's search only where the rules found no consistent bond orders: never to overrule a
    # rejection for disorder or an implausible shape
    if (_RDKIT_FALLBACK and any(els[a] in ("H", "D") for a in comp) and len(comp) <= RDKIT_MAX_ATOMS
            and first[0].startswith(("no consistent bond orders", "a carboxyl carbon with a C=C"))):
        smi, why = _linker_smiles_rdkit(rw, comp, idx, g, els, xyz, metal_nbrs, deadline)
        if smi is not None:
            return smi, [], (0, 0)
    return None, first, (0, 0)


def _linker_smiles_rdkit(rw, comp, idx, g, els, xyz, metal_nbrs, deadline):
    """RDKit's valence matching (DetermineBondOrders) at charge 0 on the CIF's own hydrogens: the
    fallback when the geometric rules find no consistent bond orders."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    hcount = {a: sum(1 for b in g.neighbors(a) if b in idx and els[b] in ("H", "D")) for a in comp}

    def heavy_deg(a):
        return sum(1 for b in g.neighbors(a) if b in idx and b != a)

    # neutral parent: protonate anionic donor sites
    protonate = []
    by_center: dict[int, list[int]] = {}
    for a in comp:
        if els[a] == "O" and hcount[a] == 0 and heavy_deg(a) == 1:
            c = next(b for b in g.neighbors(a) if b in idx and b != a)
            by_center.setdefault(c, []).append(a)
    optional = []
    for c, oxy in by_center.items():
        donors_here = [o for o in oxy if metal_nbrs[o]] or oxy
        if els[c] == "C" and len(oxy) >= 2:
            protonate.append(donors_here[0])
        elif els[c] == "P" and len(oxy) >= 3:
            protonate.extend((donors_here + [o for o in oxy if o not in donors_here])[:2])
        elif els[c] == "S" and len(oxy) >= 3:
            protonate.append(donors_here[0])
        elif els[c] in ("C", "B", "Si", "As") and len(oxy) == 1 and metal_nbrs[oxy[0]]:
            optional.append(oxy[0])  # phenolate/alkoxide, or a neutral carbonyl donor
    for ring in _ring_sets(g, comp, els):
        ns = [a for a in ring if els[a] == "N" and hcount[a] == 0 and heavy_deg(a) == 2]
        if len(ring) == 5 and len(ns) >= 2 and not any(els[a] == "N" and hcount[a] for a in ring):
            protonate.append(next((a for a in ns if metal_nbrs[a]), ns[0]))

    def attempt(extra, charge=0):
        m = Chem.RWMol(rw)
        conf = Chem.Conformer(len(comp) + len(extra))
        for a in comp:
            conf.SetAtomPosition(idx[a], tuple(float(x) for x in xyz[a]))
        for k, a in enumerate(extra):
            h = m.AddAtom(Chem.Atom(1))
            m.AddBond(idx[a], h, Chem.BondType.SINGLE)
            conf.SetAtomPosition(h, tuple(float(x) + 0.97 * (t == 0) for t, x in enumerate(xyz[a])))
        mol = m.GetMol()
        mol.AddConformer(conf, assignId=True)
        with rdkit_messages() as msgs:
            try:
                rdDetermineBonds.DetermineBondOrders(mol, charge=charge, allowChargedFragments=True,
                                                     embedChiral=False)
                Chem.SanitizeMol(mol)
            except Exception as exc:  # noqa: BLE001
                return None, [" ".join(str(exc).split()) or "bond orders not found"]
        implicit = sum(a.GetNumImplicitHs() for a in mol.GetAtoms())
        if implicit and charge == 0:
            return None, [f"the bond orders found need {implicit} hydrogen(s) the CIF does not have"]
        return mol, msgs

    tries = [protonate, protonate + optional] if optional else [protonate]
    if len(comp) > BIG_LINKER:
        tries = tries[-1:]  # the search is slow on big linkers: one attempt
    last = ["bond orders not found"]
    found = []
    for extra in tries:
        if deadline is not None and time.monotonic() > deadline:
            last = ["time limit reached during the bond-order search"]
            break
        mol, why = attempt(extra)
        if mol is None:
            last = why
            m = re.search(r"does not match input \((-?\d+)\)", " ".join(why))
            if (m and -8 <= int(m.group(1)) < 0 and len(comp) <= BIG_LINKER
                    and (deadline is None or time.monotonic() < deadline)):
                # the valence match found an anion: solve at that charge, then protonate to the parent
                mol, why2 = attempt(extra, charge=int(m.group(1)))
                if mol is None:
                    continue
                mol = _neutralise(mol)
            else:
                continue
        problems = _sanity(mol)
        if problems:
            last = problems
            continue
        # several protonation states may fit: the aromatic one is the chemistry (a phenol, not a dienone)
        found.append((sum(a.GetIsAromatic() for a in mol.GetAtoms()), -len(found), canonical_smiles(mol)))
    if found:
        return max(found)[2], []
    return None, last


def _neutralise(mol):
    from rdkit import Chem
    from rdkit.Chem.MolStandardize import rdMolStandardize

    with rdkit_messages():
        out = rdMolStandardize.Uncharger().uncharge(Chem.RemoveHs(mol))
        Chem.SanitizeMol(out)
    return out


def _sanity(mol) -> list[str]:
    """RDKit accepting a molecule is not proof: no radicals, and charges only as balanced N+/O- pairs."""
    out = []
    rad = [a.GetIdx() for a in mol.GetAtoms() if a.GetNumRadicalElectrons()]
    if rad:
        out.append(f"radical electrons on {len(rad)} atom(s)")
    charged = [a for a in mol.GetAtoms() if a.GetFormalCharge()]
    if charged:
        total = sum(a.GetFormalCharge() for a in charged)
        odd = [a for a in charged if not (a.GetSymbol() == "N" and a.GetFormalCharge() == 1) and
               not (a.GetSymbol() == "O" and a.GetFormalCharge() == -1)]
        if total != 0 or odd:
            out.append("charged atoms: " + ", ".join(f"{a.GetSymbol()}{a.GetFormalCharge():+d}" for a in charged[:6]))
    if _bo.enediols(mol):
        out.append("a carboxyl carbon with a C=C and two OH (the enol of an acid): bond orders not sane")
    if _bo.gem_diols(mol):
        out.append("a carbon with two OH and a hydrogen (a carboxyl carbon made sp3): bond orders not sane")
    out.extend(_implausible(mol))
    return out


def _implausible(mol) -> list[str]:
    """Shapes that sanitise but come from disordered atoms bonded across two components: a linker in
    pieces, a three-membered ring holding N/O/S or a double bond, three- or four-membered rings fused
    or spiro to another ring, an O–O bond."""
    from rdkit import Chem

    if len(Chem.GetMolFrags(mol)) > 1:
        return ["the linker falls apart into several molecules (disordered atoms)"]
    ri = mol.GetRingInfo()
    small = [r for r in ri.AtomRings() if len(r) <= 4]
    bad = []
    for r in small:
        atoms = [mol.GetAtomWithIdx(i) for i in r]
        if len(r) == 3 and (any(a.GetSymbol() != "C" for a in atoms) or
                            any(b.GetBondType() != Chem.BondType.SINGLE for a in atoms for b in a.GetBonds()
                                if b.GetOtherAtomIdx(a.GetIdx()) in r)):
            bad.append("a three-membered ring with a heteroatom or a double bond")
            break
    if any(ri.NumAtomRings(i) > 1 for r in small for i in r):
        bad.append("a three- or four-membered ring fused to another ring")
    if any(b.GetBeginAtom().GetSymbol() == "O" and b.GetEndAtom().GetSymbol() == "O" for b in mol.GetBonds()):
        bad.append("an O–O bond")
    return [f"implausible structure ({', '.join(bad)}): disordered atoms"] if bad else []


# ------------------------------------------------------------------------------------------------
# hard time bound


def _child(conn, text, name, timeout):
    try:
        conn.send(decompose(text, name, timeout=timeout).to_dict())
    except BaseException as exc:  # noqa: BLE001 - report, never hang the parent
        conn.send({"name": name, "ok": False, "reasons": [f"{type(exc).__name__}: {exc}"]})
    finally:
        conn.close()


def decompose_isolated(text: str, name: str = "framework", *, timeout: float = DEFAULT_TIMEOUT,
                       hard_timeout: float = 30.0) -> Framework:
    """``decompose`` in a child process that is killed after ``hard_timeout`` seconds: a strict bound
    per CIF (RDKit's bond-order search cannot be interrupted in-process). For batch use (training)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    t0 = time.monotonic()
    proc = ctx.Process(target=_child, args=(child, text, name, timeout), daemon=True)
    proc.start()
    child.close()
    got = None
    if parent.poll(hard_timeout):
        try:
            got = parent.recv()
        except EOFError:
            got = None
    if proc.is_alive():
        proc.kill()
    proc.join(5)
    fw = Framework(name)
    if got is None:
        fw.reasons = [f"hard time limit: no result within {hard_timeout:.0f} s (process stopped)"]
    else:
        fw.ok, fw.metal, fw.linkers = got.get("ok", False), got.get("metal", ""), got.get("linkers", [])
        fw.record, fw.reasons, fw.warnings = got.get("record"), got.get("reasons", []), got.get("warnings", [])
        fw.nodes = [MetalNode(n["formula"], {}, n["dimension"], n["count"]) for n in got.get("nodes", [])]
        fw.not_framework, fw.h_missing = got.get("not_framework", False), got.get("h_missing", False)
        fw.h_added_carbon, fw.merged_overlaps = got.get("h_added_carbon", 0), got.get("merged_overlaps", 0)
        fw.failed_linkers = 0 if got.get("decomposed") is None else int(got["decomposed"] and not fw.linkers)
    fw.seconds = time.monotonic() - t0
    return fw


# ------------------------------------------------------------------------------------------------
# CoRE MOF access


def iter_core_mof(subset: str = "2019-ASR", limit: int | None = None, every: int = 1):
    """(name, CIF text) from the CoRE MOF data package (requirements/data.txt), in archive order,
    taking every ``every``-th CIF (streamed: the tar.xz is read once)."""
    import io
    import tarfile

    from engine import datasets

    blob = datasets.read_bytes("core-mof", f"CoRE_MOF/data/{subset}.tar.xz")
    n = 0
    k = 0
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r|xz") as tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".cif"):
                continue
            k += 1
            if (k - 1) % every:
                continue
            fh = tf.extractfile(m)
            if fh is None:
                continue
            yield m.name.rsplit("/", 1)[-1][:-4], fh.read().decode("utf-8", "replace")
            n += 1
            if limit is not None and n >= limit:
                return


def _warm_file():
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "tests" / "data" / "structures" / "FUDQIF_clean.cif"


def summarise(rows: list[dict], subset: str = "", every: int = 1, seconds_total: float = 0.0) -> dict:
    """Counts over ``Framework.to_dict`` rows: structures that are not frameworks are reported apart
    and left out of the denominator; each failure class with its count."""
    total = len(rows)
    not_fw = [r for r in rows if r.get("not_framework")]
    frameworks = [r for r in rows if not r.get("not_framework")]
    ok = [r for r in frameworks if r["ok"]]
    classes = Counter(failure_class(r) for r in frameworks if not r["ok"])
    secs = [r["seconds"] for r in rows]
    return {
        "subset": subset, "cifs": total, "every": every,
        "not_a_framework": len(not_fw),
        "not_a_framework_reasons": Counter(r["reasons"][0].split(": ", 1)[-1][:60] for r in not_fw).most_common(),
        "frameworks": len(frameworks),
        "complete_sane": len(ok),
        "fraction_complete_sane": round(len(ok) / len(frameworks), 4) if frameworks else 0.0,
        "decomposed": sum(bool(r.get("decomposed")) for r in frameworks),
        "failure_classes": {k: classes[k] for k in FAILURE_CLASSES if classes[k]},
        "ok_with_hydrogens_added": sum(1 for r in ok if r.get("h_missing") or r.get("h_added_carbon")),
        "ok_from_cif_without_hydrogens": sum(1 for r in ok if r.get("h_missing")),
        "ok_with_disorder_resolved": sum(1 for r in ok if r.get("merged_overlaps")),
        "seconds_total": round(seconds_total, 1),
        "seconds_median": round(float(np.median(secs)), 3) if secs else 0.0,
        "seconds_max": round(max(secs), 3) if secs else 0.0,
    }


def format_summary(summ: dict) -> str:
    """The summary as the lines the benchmark prints."""
    lines = [f"CoRE MOF {summ['subset']}: {summ['cifs']} CIFs (every {summ['every']}th)",
             f"  not a framework: {summ['not_a_framework']} (not counted)"]
    lines += [f"    {why}: {n}" for why, n in summ["not_a_framework_reasons"]]
    lines.append(f"  frameworks: {summ['frameworks']}; complete records with sane linkers: {summ['complete_sane']} "
                 f"({100 * summ['fraction_complete_sane']:.1f} %)")
    lines.append("  failures by class:" + ("" if summ["failure_classes"] else " none"))
    lines += [f"    {k}: {n}" for k, n in summ["failure_classes"].items()]
    lines.append(f"  complete records that needed hydrogens added: {summ['ok_with_hydrogens_added']} "
                 f"(CIF without any hydrogen: {summ['ok_from_cif_without_hydrogens']}); "
                 f"with disorder resolved: {summ['ok_with_disorder_resolved']}")
    lines.append(f"  time per CIF: median {summ['seconds_median']} s, worst {summ['seconds_max']} s "
                 f"(total {summ['seconds_total']} s)")
    return "\n".join(lines)


def report(n: int = 500, every: int = 24, subset: str = "2019-ASR", timeout: float = DEFAULT_TIMEOUT,
           out=None, progress=None, hard_timeout: float = 30.0) -> dict:
    """Decompose ``n`` CoRE MOF CIFs (every ``every``-th of the subset: ``2019-ASR``, ``2019-FSR`` or
    ``2014``) and count the outcomes (``summarise``); each CIF runs in a child process stopped after
    ``hard_timeout`` seconds."""
    rows = []
    t0 = time.monotonic()
    decompose(_warm_file(), "warm-up")  # imports loaded once, before the children fork
    for name, text in iter_core_mof(subset, limit=n, every=every):
        fw = decompose_isolated(text, name, timeout=timeout, hard_timeout=hard_timeout)
        rows.append(fw.to_dict())
        if progress:
            progress(len(rows), fw)
    summary = summarise(rows, subset, every, time.monotonic() - t0)
    if out:
        import json
        from pathlib import Path

        Path(out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return summary


if __name__ == "__main__":  # python -m engine.structures.framework [N] [EVERY] [OUT.json] [SUBSET]
    import json
    import sys

    args = sys.argv[1:]
    summ = report(int(args[0]) if args else 500, int(args[1]) if len(args) > 1 else 24,
                  subset=args[3] if len(args) > 3 else "2019-ASR",
                  out=args[2] if len(args) > 2 and args[2] != "-" else None,
                  progress=lambda k, fw: print(f"{k:4d} {fw.name[:40]:40s} ok={fw.ok} {fw.seconds:.2f}s", flush=True))
    print(format_summary(summ))
    print(json.dumps(summ, indent=1))
