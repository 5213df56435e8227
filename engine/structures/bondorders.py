"""Bond orders and hydrogens of an organic fragment from its 3D geometry: the neutral parent molecule.

Used by ``engine.structures.framework`` for MOF linkers cut out of a periodic structure. The CIF
gives heavy atoms, bonds (by distance) and often only some hydrogens; the linker's donor atoms lost
their protons to the metal. The rules (textbook geometry, no fitted parameters):

1. Each heavy atom's hybridisation from its neighbour count and geometry: a carbon with three
   neighbours is sp2 when planar (centre within 0.25 Å of its neighbours' plane; tetrahedral is
   ~0.5 Å), sp3 otherwise; a two-neighbour carbon is sp when linear, sp3 when its bonds are long
   single bonds at a tetrahedral angle, sp2 otherwise; a one-neighbour carbon by its bond length
   (triple, double, or a methyl). This fixes how many pi bonds each atom needs ("required") and how
   many hydrogens the CIF is missing on it.
2. Heteroatoms that may either carry a pi bond or a hydrogen (a one-neighbour O or S, a
   two-neighbour N, an NH2/=NH nitrogen) are "flexible". Hypervalent S/P centres need pi bonds to
   their terminal oxygens (sulfonates, phosphonates); an N with a terminal O is N+–O- (nitro,
   N-oxide).
3. Pi bonds are placed by a maximum-weight matching (networkx) in which every required pi unit
   weighs far more than any bond-length preference, so the matching first satisfies every sp2/sp
   atom, then prefers short bonds for the double bonds (quinone vs catechol, C=O vs C–OH).
4. A flexible atom left without a pi bond gets its hydrogen: that is the neutral parent (a
   carboxylate becomes the acid, an azolate the NH azole, a phenolate the phenol).

The result is checked by RDKit's sanitisation; the caller checks charges and radicals again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MIN_ANGLE = 50.0  # degrees: two bonds closer than this (cyclopropane has 60°) mean disordered atoms
PLANAR = 0.25  # Å: an sp2 centre lies this close to the plane of its three neighbours
LINEAR = 160.0  # degrees: an sp centre
REQUIRED = 10_000.0  # matching weight of one required pi unit (far above any length preference)
FLEX_STEPS = (0.0, 2.0, 4.0, 6.0, 9.0)  # weights of a flexible atom's pi bond against the bond-length preference

# (single, double) bond lengths in Å for the bond-length preference of the pi matching
_LEN = {("C", "C"): (1.52, 1.34), ("C", "N"): (1.46, 1.28), ("C", "O"): (1.41, 1.21), ("N", "N"): (1.43, 1.25),
        ("N", "O"): (1.40, 1.21), ("C", "S"): (1.80, 1.62), ("O", "S"): (1.56, 1.43), ("O", "P"): (1.57, 1.48),
        ("O", "Se"): (1.70, 1.60), ("C", "Se"): (1.94, 1.75), ("S", "S"): (2.05, 1.90), ("N", "S"): (1.70, 1.54),
        ("C", "P"): (1.82, 1.66), ("N", "P"): (1.70, 1.57), ("As", "O"): (1.72, 1.62), ("B", "O"): (1.37, 1.30)}
HALOGENS = frozenset({"F", "Cl", "Br", "I"})
HYPERVALENT = {"S": 6, "Se": 6, "Te": 6, "P": 5, "As": 5}


_DEBUG = False


class BondOrderError(ValueError):
    pass


@dataclass
class Perceived:
    mol: object  # RDKit Mol with explicit hydrogens, sanitised
    h_added: int  # hydrogens added in all
    h_added_carbon: int  # of these, on carbon (the CIF lacked them: not a donor's lost proton)
    h_dropped: int = 0  # surplus hydrogens dropped (disordered sets, ammonium N–H)
    h_carbon_atoms: tuple = ()  # input indices of the carbons that were given hydrogens


def _angle(a, b, c) -> float:
    u, v = a - b, c - b
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12))
    return float(np.degrees(np.arccos(max(-1.0, min(1.0, cos)))))


def _out_of_plane(centre, nbrs) -> float:
    p = np.array(nbrs)
    n = np.cross(p[1] - p[0], p[2] - p[0])
    nn = np.linalg.norm(n)
    if nn < 1e-9:
        return 0.0
    return float(abs(np.dot(centre - p[0], n / nn)))


def _pref(e1, e2, d) -> float:
    """Bond-length preference for a double bond: +5 at a double-bond length, -5 at a single one."""
    key = tuple(sorted((e1, e2)))
    ds, dd = _LEN.get(key, (None, None))
    if ds is None:
        return 0.0
    return float(np.clip(10.0 * (ds - d) / (ds - dd) - 5.0, -8.0, 6.0))


def _single_like(e1, e2, dist) -> bool:
    """A bond long enough to be single: nearer the single than the double length of the pair (1.45 Å
    where the pair is not tabulated)."""
    ds, dd = _LEN.get(tuple(sorted((e1, e2))), (None, None))
    return dist >= 1.45 if ds is None else dist >= ds - 0.4 * (ds - dd)


def perceive(els: list[str], bonds: list[tuple[int, int]], xyz, donors=()) -> Perceived:
    """The neutral parent of a fragment: ``els`` element symbols (H included), ``bonds`` index pairs,
    ``xyz`` (n, 3) Cartesian coordinates in one piece; ``donors``: indices of the atoms bound to a
    metal. Raises BondOrderError with the reason.

    Bond lengths in CIFs are often poor, so several solutions are made: with a growing weight on
    pi bonds of the flexible atoms, and with an O or S on a ring carbon fixed as OH/SH. The one with
    the most aromatic atoms is kept (a hydroquinone, not a quinone; an NH pyrazole, not a quinoid
    diazafulvene; a free-base porphyrin); ties go to the one that follows the bond lengths most."""
    els, bonds, xyz, dropped, keep = _prune_hydrogens(list(els), list(bonds), np.asarray(xyz, float), set(donors))
    best, err = None, None
    variants = [(z, e, f, ()) for z in (False, True) for e in (False, True) for f in FLEX_STEPS]
    variants += [(False, False, f, nh) for nh in _n4_cavities(els, bonds, xyz) for f in FLEX_STEPS]
    skip = set()
    for zwitterion, exo_h, flex, force_nh in variants:
        if (zwitterion, exo_h) in skip:
            continue
        try:
            got = _perceive(els, bonds, xyz, exo_h=exo_h, flex_w=flex, zwitterion=zwitterion, force_nh=force_nh)
        except BondOrderError as exc:
            err = err or exc
            if str(exc) in ("no exocyclic O/S", "no ring N+"):
                skip.add((zwitterion, exo_h))
            continue
        if best is None or _rank(got) > _rank(best):
            best = got
    if best is None:
        raise err
    best.h_dropped = dropped
    best.h_carbon_atoms = tuple(keep[i] for i in best.h_carbon_atoms) if keep else best.h_carbon_atoms
    return best


MAX_DEGREE = {"C": 4, "N": 3, "O": 2, "S": 6, "B": 3, "Si": 4, "P": 5, "F": 1, "Cl": 1, "Br": 1, "I": 1}


def _prune_hydrogens(els, bonds, xyz, donors=frozenset()):
    """Disordered hydrogens (two half-occupied sets written at full occupancy) and protonated
    donors: a hydrogen keeps only its nearest partner, and an atom with more bonds than its
    element allows loses its surplus hydrogens (the later ones in the CIF: the first disorder
    component is kept; an ammonium N becomes its neutral amine; a planar N bound to a metal has no
    room for an H, which is a neighbour's H-bond misread as a bond). Returns the pruned fragment and
    how many hydrogens were dropped."""
    n = len(els)
    isH = [e in ("H", "D") for e in els]

    def dist(i, j):
        return float(np.linalg.norm(xyz[i] - xyz[j]))

    partners: dict[int, list[int]] = {}
    for i, j in bonds:
        for a, b in ((i, j), (j, i)):
            if isH[a]:
                partners.setdefault(a, []).append(b)
    for i, j in bonds:  # a halogen bonds to one atom only, like a hydrogen: keep its nearest partner
        for a, b in ((i, j), (j, i)):
            if els[a] in HALOGENS and not isH[b]:
                partners.setdefault(a, []).append(b)
    keep_bond = set()
    for h, ps in partners.items():
        heavy = [p for p in ps if not isH[p]]
        if heavy:
            keep_bond.add((h, min(heavy, key=lambda p: dist(h, p))))
    single = [isH[k] or els[k] in HALOGENS for k in range(n)]
    bonds = [(i, j) for i, j in bonds
             if not (single[i] or single[j]) or (i, j) in keep_bond or (j, i) in keep_bond]
    nb: list[list[int]] = [[] for _ in range(n)]
    for i, j in bonds:
        nb[i].append(j)
        nb[j].append(i)
    drop = {h for h in range(n) if isH[h] and not nb[h]}
    for i in range(n):  # a lone O whose only heavy partner is another O: a solvent or disordered O atom
        heavy = [j for j in nb[i] if not isH[j]]
        if els[i] == "O" and len(heavy) == 1 and els[heavy[0]] == "O" and len(nb[heavy[0]]) > 1:
            drop.add(i)
            drop.update(j for j in nb[i] if isH[j])
    for i in donors:
        hs = [j for j in nb[i] if isH[j]]
        if els[i] == "N" and len(nb[i]) == 3 and hs and _out_of_plane(xyz[i], [xyz[j] for j in nb[i]]) < PLANAR:
            drop.update(hs)
    for i in range(n):
        cap = MAX_DEGREE.get(els[i])
        kept = [j for j in nb[i] if j not in drop]
        if cap is None or isH[i] or len(kept) <= cap:
            continue
        hs = sorted(j for j in kept if isH[j])
        surplus = len(kept) - cap
        if surplus <= len(hs):
            drop.update(hs[len(hs) - surplus:])
    if not drop:
        return els, bonds, xyz, 0, None
    keep = [i for i in range(n) if i not in drop]
    new = {old: k for k, old in enumerate(keep)}
    bonds = [(new[i], new[j]) for i, j in bonds if i in new and j in new]
    return [els[i] for i in keep], bonds, xyz[keep], sum(1 for h in drop if nb[h]), keep


def _aromatic(mol) -> int:
    return sum(a.GetIsAromatic() for a in mol.GetAtoms())


@lru_cache(maxsize=None)
def _pattern(smarts: str):
    from rdkit import Chem

    return Chem.MolFromSmarts(smarts)


def _matches(mol, smarts: str) -> int:
    """How often ``smarts`` matches ``mol`` with its hydrogens explicit."""
    from rdkit import Chem

    return len(Chem.AddHs(mol).GetSubstructMatches(_pattern(smarts)))


def enediols(mol) -> int:
    """Carbons carrying two OH and a C=C: the enol form of a carboxylic acid, never its neutral parent."""
    return _matches(mol, "[CX3](=[#6])(-[OX2]-[#1])-[OX2]-[#1]")


def gem_diols(mol) -> int:
    """sp3 carbons with two OH and an H: a carboxyl carbon read as pyramidal (disorder or a bad CIF)."""
    return _matches(mol, "[CX4](-[#1])(-[OX2]-[#1])-[OX2]-[#1]")


def _rank(got):
    mol = got.mol
    return (-enediols(mol), _aromatic(mol), -got.h_added, -sum(1 for a in mol.GetAtoms() if a.GetFormalCharge()))


def _n4_cavities(els, bonds, xyz) -> list[tuple[int, int]]:
    """Two opposite N of each N4 macrocycle cavity (porphyrin, phthalocyanine): four two-neighbour
    N without H, each 2.5-3.3 Å from two of the others. The free base has NH on an opposite pair,
    which the matching alone does not find (it gives the 0-NH or the 4-NH form)."""
    deg: dict[int, int] = {}
    hasH = set()
    for i, j in bonds:
        for a, b in ((i, j), (j, i)):
            deg[a] = deg.get(a, 0) + 1
            if els[b] in ("H", "D"):
                hasH.add(a)
    ns = [i for i, e in enumerate(els) if e == "N" and deg.get(i) == 2 and i not in hasH]
    out = []
    for a in ns:
        cis = [b for b in ns if b != a and 2.5 <= float(np.linalg.norm(xyz[a] - xyz[b])) <= 3.3]
        if len(cis) != 2:
            continue
        b, c = cis
        far = [d for d in ns if d not in (a, b, c) and 2.5 <= float(np.linalg.norm(xyz[b] - xyz[d])) <= 3.3
               and 2.5 <= float(np.linalg.norm(xyz[c] - xyz[d])) <= 3.3]
        if len(far) == 1 and a < far[0] and a == min(a, b, c, far[0]):
            out.append((a, far[0]))
    return out


def _perceive(els, bonds, xyz, exo_h: bool, flex_w: float, zwitterion: bool = False, force_nh=()) -> Perceived:
    import networkx as nx
    from rdkit import Chem

    n = len(els)
    xyz = np.asarray(xyz, float)
    nb: list[list[int]] = [[] for _ in range(n)]
    for i, j in bonds:
        if i != j and j not in nb[i]:
            nb[i].append(j)
            nb[j].append(i)
    isH = [e in ("H", "D") for e in els]
    for i in range(n):
        if isH[i] and len(nb[i]) > 1:
            raise BondOrderError(f"hydrogen {i + 1} bonded to {len(nb[i])} atoms (overlapping atoms)")

    def d(i, j):
        return float(np.linalg.norm(xyz[i] - xyz[j]))

    for i in range(n):
        for a in range(len(nb[i])):
            for b in range(a + 1, len(nb[i])):
                ang = _angle(xyz[nb[i][a]], xyz[i], xyz[nb[i][b]])
                if ang < MIN_ANGLE:
                    raise BondOrderError(f"bond angle {ang:.0f}° at {els[i]}{i + 1}: overlapping or disordered atoms")

    req = [0] * n  # required pi units
    flex = [False] * n  # one optional pi unit, else hydrogen(s)
    flex_h = [0] * n  # hydrogens a flexible atom gets when it has no pi bond (one less with it)
    addh = [0] * n  # hydrogens to add regardless
    charge = [0] * n
    terminal_o = [[j for j in nb[i] if els[j] == "O" and len(nb[j]) == 1] for i in range(n)]
    sp2_c = [False] * n  # carbons that are sp2 by geometry alone (planar three-neighbour carbons)
    for i in range(n):
        if els[i] == "C" and len(nb[i]) == 3:
            sp2_c[i] = _out_of_plane(xyz[i], [xyz[j] for j in nb[i]]) < PLANAR
    exo = set()  # O/S on a carbon with two carbon neighbours (phenol-type, not carboxyl or amide)
    if exo_h:
        for i in range(n):
            if els[i] in ("O", "S") and len(nb[i]) == 1 and els[nb[i][0]] == "C":
                c = nb[i][0]
                if len(nb[c]) == 3 and sum(els[j] == "C" for j in nb[c]) == 2:
                    exo.add(i)
        if not exo:
            raise BondOrderError("no exocyclic O/S")

    plus = set()  # planar ring N (three neighbours) that may be N+ (pyridinium of a betaine, or N–H+)
    if zwitterion:
        for i in range(n):
            if (els[i] == "N" and len(nb[i]) == 3 and not terminal_o[i] and sum(isH[j] for j in nb[i]) <= 1
                    and _out_of_plane(xyz[i], [xyz[j] for j in nb[i]]) < PLANAR
                    and sum(sp2_c[j] or (els[j] == "C" and len(nb[j]) == 2) for j in nb[i]) >= 2):
                plus.add(i)
        if not plus:
            raise BondOrderError("no ring N+")

    for i, e in enumerate(els):  # nitro and N-oxide first: N+ with one O-
        if e == "N" and len(nb[i]) == 3 and terminal_o[i]:
            charge[i], req[i] = 1, 1
            charge[max(terminal_o[i], key=lambda j: d(i, j))] = -1
    for i, e in enumerate(els):
        if isH[i] or charge[i]:
            continue
        deg = len(nb[i])
        heavy = [j for j in nb[i] if not isH[j]]
        if e == "C":
            if deg > 4:
                raise BondOrderError(f"carbon {i + 1} with {deg} bonds (overlapping or disordered atoms)")
            if deg == 4:
                continue
            if deg == 3:
                planar = _out_of_plane(xyz[i], [xyz[j] for j in nb[i]]) < PLANAR
                req[i], addh[i] = (1, 0) if planar else (0, 1)
            elif deg == 2:
                ang = _angle(xyz[nb[i][0]], xyz[i], xyz[nb[i][1]])
                lens = [d(i, j) for j in heavy]
                if ang > LINEAR:
                    req[i] = 2
                elif ang < 120.0 and heavy and all(_single_like(els[i], els[j], d(i, j)) for j in heavy):
                    addh[i] = 2
                else:
                    req[i], addh[i] = 1, 1
            elif deg == 1:
                j = nb[i][0]
                L = d(i, j)
                if isH[j]:
                    raise BondOrderError(f"carbon {i + 1} bonded to one hydrogen only")
                short, mid = {"N": (1.20, 1.36), "O": (1.17, 1.30)}.get(els[j], (1.25, 1.38))
                if L < short:
                    req[i], addh[i] = 2, 1
                elif L < mid:
                    req[i], addh[i] = 1, 2
                else:
                    addh[i] = 3
            else:
                raise BondOrderError(f"carbon {i + 1} with no bonds")
        elif e == "N":
            if deg >= 4:
                raise BondOrderError(f"nitrogen {i + 1} with {deg} bonds (a quaternary N+ has no neutral parent)")
            if deg == 3:
                pass  # amine, amide, pyrrole-type N (nitro and N-oxide N+ were set above)
            elif deg == 2 and i in force_nh:
                addh[i] = 1  # the NH pair of a free-base macrocycle
            elif deg == 2:
                ang = _angle(xyz[nb[i][0]], xyz[i], xyz[nb[i][1]])
                lens = [d(i, j) for j in heavy]
                if ang > LINEAR:
                    req[i] = 2 if len(heavy) == 2 else 1
                elif (len(heavy) == 2 and all(_single_like("N", els[j], d(i, j)) for j in heavy) and ang < 118.0
                      and not all(sp2_c[j] for j in heavy)):
                    addh[i] = 1  # sp3 amine N–H
                elif len(heavy) == 2:
                    flex[i], flex_h[i] = True, 1
                else:
                    flex[i], flex_h[i] = True, 1  # =N–H or –NH2 (one H present)
            elif deg == 1:
                L = d(i, nb[i][0])
                if L < 1.20:
                    req[i] = 2
                else:
                    flex[i], flex_h[i] = True, 2
            else:
                raise BondOrderError(f"nitrogen {i + 1} with no bonds")
        elif e in ("O", "S", "Se", "Te"):
            if deg == 1:
                if isH[nb[i][0]] or i in exo:
                    addh[i] = 1
                else:
                    flex[i], flex_h[i] = True, 1
            elif deg == 2 or e == "O":
                if deg > 2:
                    raise BondOrderError(f"oxygen {i + 1} with {deg} bonds (overlapping atoms)")
            else:
                req[i] = max(0, (4 if deg == 3 else HYPERVALENT[e]) - deg)
        elif e in ("P", "As"):
            if deg == 4:
                req[i] = 1
            elif deg not in (3, 5):
                raise BondOrderError(f"{e} {i + 1} with {deg} bonds")
        elif e in HALOGENS:
            if deg != 1:
                raise BondOrderError(f"{e} {i + 1} with {deg} bonds")
        elif e == "B":
            if deg == 4:
                raise BondOrderError(f"boron {i + 1} with 4 bonds (a borate anion has no neutral parent)")
            addh[i] = max(0, 3 - deg)
        elif e in ("Si", "Ge"):
            addh[i] = max(0, 4 - deg)
        else:
            raise BondOrderError(f"element {e} in an organic fragment")

    # maximum-weight matching of pi units
    g = nx.Graph()
    for i in plus:
        flex[i] = True  # its pi bond makes it N+ (balanced by an O- below), else it stays a neutral amine N
    units = {i: [(i, k) for k in range(req[i])] + ([(i, "f")] if flex[i] else []) for i in range(n)}
    for i in range(n):
        for u in units[i]:
            g.add_node(u)
    for i in range(n):
        for j in nb[i]:
            if j < i or not units[i] or not units[j]:
                continue
            pref = _pref(els[i], els[j], d(i, j))
            for u in units[i]:
                for v in units[j]:
                    w = REQUIRED * ((u[1] != "f") + (v[1] != "f")) + flex_w * ((u[1] == "f") + (v[1] == "f")) + pref
                    if w > 0:
                        g.add_edge(u, v, weight=w)
    matching = nx.max_weight_matching(g, maxcardinality=False) if g.number_of_edges() else set()
    if _DEBUG:
        print("req", {f"{els[i]}{i + 1}": req[i] for i in range(n) if req[i]})
        print("flex", [f"{els[i]}{i + 1}" for i in range(n) if flex[i]], "addh", sum(addh))
        print("weight", sum(g[u][v]["weight"] for u, v in matching))
    order: dict[tuple[int, int], int] = {}
    pi = [0] * n
    for u, v in matching:
        a, b = u[0], v[0]
        order[(min(a, b), max(a, b))] = order.get((min(a, b), max(a, b)), 1) + 1
        pi[a] += 1
        pi[b] += 1
    unsat = [i for i in range(n) if pi[i] < req[i]]
    if unsat:
        names = ", ".join(f"{els[i]}{i + 1}" for i in unsat[:4])
        raise BondOrderError(f"no consistent bond orders: {len(unsat)} unsaturated atom(s) without a partner ({names})")
    for i in range(n):
        if flex[i]:
            addh[i] += flex_h[i] - (1 if pi[i] else 0)
    n_plus = sum(1 for i in plus if pi[i])
    if n_plus:
        for i in plus:
            if pi[i]:
                charge[i] = 1
        # each N+ is balanced by a carboxylate O- (an O without its pi bond on a C that has a C=O)
        anions = [i for i in range(n) if flex[i] and els[i] == "O" and not pi[i] and addh[i] == 1
                  and any(pi[j] and any(els[k] == "O" and pi[k] for k in nb[j]) for j in nb[i])]
        if len(anions) < n_plus:
            raise BondOrderError("an N+ without a carboxylate to balance it")
        for i in anions[:n_plus]:
            addh[i], charge[i] = 0, -1

    rw = Chem.RWMol()
    for i, e in enumerate(els):
        a = Chem.Atom("H" if e == "D" else e)
        a.SetFormalCharge(charge[i])
        a.SetNoImplicit(True)
        rw.AddAtom(a)
    types = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    for i in range(n):
        for j in nb[i]:
            if j > i:
                bo = order.get((i, j), 1)
                if bo > 3:
                    raise BondOrderError(f"bond order {bo} between atoms {i + 1} and {j + 1}")
                rw.AddBond(i, j, types[bo])
    h_total = h_carbon = 0
    for i in range(n):
        for _ in range(addh[i]):
            h = rw.AddAtom(Chem.Atom(1))
            rw.AddBond(i, h, Chem.BondType.SINGLE)
            h_total += 1
            h_carbon += els[i] == "C"
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # noqa: BLE001
        raise BondOrderError(" ".join(str(exc).split()) or "RDKit sanitisation failed") from None
    if any(charge[i] == 1 and els[i] == "N" and any(isH[j] for j in nb[i]) for i in plus):
        # an N–H+ with a carboxylate: the neutral parent moves the proton back (RDKit's Uncharger)
        from rdkit.Chem.MolStandardize import rdMolStandardize

        try:
            mol = Chem.AddHs(rdMolStandardize.Uncharger().uncharge(Chem.RemoveHs(mol)))
        except Exception as exc:  # noqa: BLE001
            raise BondOrderError(" ".join(str(exc).split()) or "neutralisation failed") from None
    return Perceived(mol, h_total, h_carbon, h_carbon_atoms=tuple(i for i in range(n) if addh[i] and els[i] == "C"))
