"""Can these reactants make this product? One chemical check for retrosynthesis and forward reaction.

The rule (``reactants_supply_product``): every heavy atom of the product must be supplied by a
reactant, up to a small allowance for atoms that reagents typically bring (an oxidant's O, a
chlorinating agent's Cl); in retrosynthesis every reactant must supply part of the product; and the
reactants must map onto the product with few bonds made or broken (one step, not a rebuild).

How atoms are assigned: RDKit's maximum common substructure (``rdFMCS``) between each reactant and
the product, with elements compared but bond orders and ring membership relaxed (a reaction changes
bond orders and opens or closes rings, it does not change elements). Reactants are taken largest
common substructure first; each one is matched against the product atoms that no earlier reactant
has claimed, so two reactants never supply the same atom; a second round lets a reactant's unused
atoms supply what is still missing (a greedy first choice can split a reactant's share). When that
order fails, each other reactant is tried first. Product atoms left over are "not supplied".
Because the comparison is relaxed, a large unrelated molecule can often be threaded onto a small
product; the count of bonds made or broken (leaving groups cut off, rings opened or closed, bonds
between the pieces) is what tells such a fit from a reaction.

Thresholds, chosen on reactions: the 40 textbook reactions in
tests/engine/tasks/test_reaction_check.py need at most 2 bond edits with one reactant, 7 with two
(Robinson annulation), 8 with four (Ugi); 1480 template-generated disconnections of MOSES molecules
(the datamol retro templates that training/data.py uses) need at most 2 with one reactant and 7 with
two. Unrelated reactants that still cover the product need 11-13 with one reactant and 8 with two.
Hence at most 3 + 2 per reactant. Reagent-supplied atoms in those sets: at most 2 (sulfide to
sulfone; the carbonyl of a urea or carbamate from phosgene or CDI, which the templates leave out).

Every ``FindMCS`` call has a time limit (``timeout_s``, whole seconds, as rdFMCS takes it), so one
odd sample cannot hang the engine; a timed-out comparison keeps the best match found so far and the
result says so.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

# Product heavy atoms that may come from no listed reactant (reagents: an oxidant's O, thionyl
# chloride's Cl, ...): at most this many ...
MAX_UNSUPPLIED = 2
# ... and at most this fraction of the product's heavy atoms (rounded down), so a small product
# must be supplied almost entirely (aspirin, 13 heavy atoms: one atom).
MAX_UNSUPPLIED_FRACTION = 0.15
# Elements that reagents (not listed as reactants) commonly put into a product. Carbon only as a
# one-carbon unit bonded to no other carbon: the carbonyl that phosgene or CDI puts between two
# heteroatoms (a urea, a carbamate), a methyl that a methylating agent puts on N, O or S.
REAGENT_ELEMENTS = frozenset({"O", "N", "S", "F", "Cl", "Br", "I"})
# Bonds made or broken, all reactants together (see _bond_edits): at most a base plus so many per
# reactant (joining one more reactant makes a bond and usually cuts off a leaving group).
BOND_EDITS_BASE = 3
BOND_EDITS_PER_REACTANT = 2
# Embeddings of a common substructure in the product compared to pick the most faithful one.
MAX_EMBEDDINGS = 200
# Seconds per FindMCS call (rdFMCS takes whole seconds), and for one whole check: past it, no
# further comparison starts (a check makes up to three comparisons per reactant).
TIMEOUT_S = 1
MAX_SECONDS = 3.0


@dataclass
class ReactionCheck:
    """Verdict of :func:`reactants_supply_product` with what was matched."""

    ok: bool
    reasons: list[str]
    product_heavy: int = 0
    supplied: int = 0  # product heavy atoms supplied by the reactants
    unsupplied: list[str] = field(default_factory=list)  # e.g. "C7", element + 1-based product atom index
    contributions: list[int] = field(default_factory=list)  # per reactant (input order): atoms supplied
    bond_edits: int = 0  # bonds made or broken by the assignment
    timed_out: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _mol(x):
    from rdkit import Chem

    if isinstance(x, Chem.Mol):
        m = Chem.Mol(x)
    else:
        m = Chem.MolFromSmiles(str(x))
    if m is None:
        return None
    return Chem.RemoveHs(m, sanitize=False) if any(a.GetAtomicNum() == 1 for a in m.GetAtoms()) else m


def _params(timeout_s: int):
    from rdkit.Chem import rdFMCS

    p = rdFMCS.MCSParameters()
    p.AtomTyper = rdFMCS.AtomCompare.CompareElements
    p.BondTyper = rdFMCS.BondCompare.CompareAny
    p.AtomCompareParameters.RingMatchesRingOnly = False
    p.AtomCompareParameters.CompleteRingsOnly = False
    p.AtomCompareParameters.MatchValences = False
    p.AtomCompareParameters.MatchChiralTag = False
    p.AtomCompareParameters.MatchFormalCharge = False
    p.BondCompareParameters.RingMatchesRingOnly = False
    p.BondCompareParameters.CompleteRingsOnly = False
    p.BondCompareParameters.MatchStereo = False
    p.MaximizeBonds = False  # the most atoms, not the most bonds
    p.Timeout = max(1, int(timeout_s))
    return p


def _submol(product, keep: list[int]):
    """A molecule (the product, or a reactant) restricted to atoms ``keep`` (not sanitised: a cut aromatic ring stays as it is);
    each atom remembers its product index in the ``orig`` property."""
    from rdkit import Chem

    rw = Chem.RWMol(product)
    for a in rw.GetAtoms():
        a.SetIntProp("orig", a.GetIdx())
    keep_set = set(keep)
    for idx in sorted((a.GetIdx() for a in product.GetAtoms() if a.GetIdx() not in keep_set), reverse=True):
        rw.RemoveAtom(idx)
    m = rw.GetMol()
    m.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(m)
    return m


def _match(reactant, target, params) -> tuple[dict[int, int], bool]:
    """The largest common substructure of ``reactant`` and ``target`` as {target atom: reactant
    atom}, and whether the comparison timed out."""
    from rdkit import Chem
    from rdkit.Chem import rdFMCS

    if target.GetNumAtoms() == 0 or reactant.GetNumAtoms() == 0:
        return {}, False
    res = rdFMCS.FindMCS([reactant, target], params)
    if res.numAtoms == 0 or not res.smartsString:
        return {}, bool(res.canceled)
    query = Chem.MolFromSmarts(res.smartsString)
    if query is None:
        return {}, bool(res.canceled)
    r_hit = reactant.GetSubstructMatch(query)
    t_hits = target.GetSubstructMatches(query, uniquify=False, maxMatches=MAX_EMBEDDINGS)
    if not r_hit or not t_hits:
        return {}, bool(res.canceled)
    # the common substructure may sit in the product in several places; take the one that keeps
    # most of the reactant's bonds as they are (same type) and closes the fewest new bonds
    best = max(t_hits, key=lambda t: _agreement(reactant, target, r_hit, t))
    return dict(zip(best, r_hit)), bool(res.canceled)


def _agreement(reactant, target, r_hit, t_hit) -> int:
    """Target bonds among the embedded atoms that the reactant has with the same bond type, less
    those the reactant does not have at all."""
    pos = {t: k for k, t in enumerate(t_hit)}
    same = extra = 0
    for tb in target.GetBonds():
        x, y = pos.get(tb.GetBeginAtomIdx()), pos.get(tb.GetEndAtomIdx())
        if x is None or y is None:
            continue
        rb = reactant.GetBondBetweenAtoms(r_hit[x], r_hit[y])
        if rb is None:
            extra += 1
        elif rb.GetBondType() == tb.GetBondType():
            same += 1
    return same - extra


def reactants_supply_product(product, reactants, *, every_reactant: bool = True,
                             timeout_s: int = TIMEOUT_S) -> ReactionCheck:
    """See :func:`_check` (the rule); SMILES inputs are remembered, so a task's validate and score
    on one sample compute it once."""
    reactants = list(reactants)
    if isinstance(product, str) and all(isinstance(r, str) for r in reactants):
        res = _cached(product, tuple(reactants), every_reactant, timeout_s)
        return replace(res, reasons=list(res.reasons), unsupplied=list(res.unsupplied),
                       contributions=list(res.contributions))
    return _check(product, reactants, every_reactant=every_reactant, timeout_s=timeout_s)


@lru_cache(maxsize=512)
def _cached(product: str, reactants: tuple, every_reactant: bool, timeout_s: int) -> ReactionCheck:
    return _check(product, list(reactants), every_reactant=every_reactant, timeout_s=timeout_s)


def _check(product, reactants, *, every_reactant: bool = True,
           timeout_s: int = TIMEOUT_S) -> ReactionCheck:
    """Can ``reactants`` supply the heavy-atom skeleton of ``product``?

    ``product`` and ``reactants`` are SMILES or RDKit molecules. ``every_reactant``: each reactant
    must supply at least one product atom (retrosynthesis; a forward prompt may list reagents).
    Valid when (1) the product atoms supplied by no reactant are at most ``MAX_UNSUPPLIED`` and
    ``MAX_UNSUPPLIED_FRACTION`` of the product and of elements that reagents bring
    (``REAGENT_ELEMENTS``); (2) with ``every_reactant``, every reactant supplies a product atom; (3)
    the assignment needs at most ``BOND_EDITS_BASE + BOND_EDITS_PER_REACTANT * len(reactants)`` bonds
    made or broken.
    """
    t0 = time.perf_counter()
    prod = _mol(product)
    if prod is None or prod.GetNumAtoms() == 0:
        return ReactionCheck(False, ["the product is not a valid molecule"], seconds=time.perf_counter() - t0)
    reacs = [_mol(r) for r in reactants]
    bad = [i for i, m in enumerate(reacs, 1) if m is None or m.GetNumAtoms() == 0]
    if bad or not reacs:
        return ReactionCheck(False, [f"reactant {i} is not a valid molecule" for i in bad] or ["no reactant"],
                             product_heavy=prod.GetNumAtoms(), seconds=time.perf_counter() - t0)
    params = _params(timeout_s)
    n = prod.GetNumAtoms()
    timed_out = False

    def match(reactant, target):
        # past the budget for the whole check, no further comparison starts
        if time.perf_counter() - t0 > MAX_SECONDS:
            return {}, True
        return _match(reactant, target, params)
    # first pass: each reactant against the whole product, to order them (largest first) and to
    # find those that share nothing at all
    full = []
    for m in reacs:
        hit, late = match(m, prod)
        timed_out |= late
        full.append(hit)

    def assign(order):
        """Product atoms to reactants in this order: {reactant: {product atom: reactant atom}}."""
        late_any = False
        remaining = set(range(n))
        share: dict[int, dict[int, int]] = {}
        for i in order:
            if not remaining:
                share[i] = {}
                continue
            if set(full[i]) <= remaining:
                hit = dict(full[i])
            else:
                sub = _submol(prod, sorted(remaining))
                sub_hit, late = match(reacs[i], sub)
                late_any |= late
                hit = {sub.GetAtomWithIdx(j).GetIntProp("orig"): k for j, k in sub_hit.items()}
            share[i] = hit
            remaining -= set(hit)
        # second round: a greedy first choice can split a reactant's share; atoms still unsupplied
        # may come from reactant atoms not used yet
        for i in order:
            if not remaining:
                break
            unused = [a.GetIdx() for a in reacs[i].GetAtoms() if a.GetIdx() not in set(share[i].values())]
            if not unused:
                continue
            sub = _submol(prod, sorted(remaining))
            rsub = _submol(reacs[i], unused)
            sub_hit, late = match(rsub, sub)
            late_any |= late
            for j, k in sub_hit.items():
                share[i][sub.GetAtomWithIdx(j).GetIntProp("orig")] = rsub.GetAtomWithIdx(k).GetIntProp("orig")
            remaining -= {sub.GetAtomWithIdx(j).GetIntProp("orig") for j in sub_hit}
        edits, per = _bond_edits(prod, reacs, share)
        return share, sorted(remaining), edits, per, late_any

    def acceptable(left, edits, share):
        return (len(left) <= limit and not _not_from_reagents(prod, left)
                and edits <= max_edits and (not every_reactant or all(share.values())))

    limit = min(MAX_UNSUPPLIED, int(MAX_UNSUPPLIED_FRACTION * n))
    max_edits = BOND_EDITS_BASE + BOND_EDITS_PER_REACTANT * len(reacs)
    order = sorted(range(len(reacs)), key=lambda i: (-len(full[i]), i))
    share, left, edits, per_reactant, late = assign(order)
    timed_out |= late
    # largest first can let one reactant thread itself over another's atoms; when that order fails,
    # each other reactant is tried first, and the assignment with the fewest unsupplied atoms, then
    # the fewest bond edits, is kept
    if not acceptable(left, edits, share):
        for first in order[1:]:
            alt = assign([first] + [i for i in order if i != first])
            timed_out |= alt[4]
            if (len(alt[1]), alt[2]) < (len(left), edits):
                share, left, edits, per_reactant = alt[:4]
            if acceptable(left, edits, share):
                break

    reasons: list[str] = []
    smiles = [_smiles(m) for m in reacs]
    if every_reactant:
        for i in range(len(reacs)):
            if not full[i]:
                reasons.append(f"reactant {i + 1} ({smiles[i]}) shares no substructure with the product")
            elif not share[i]:
                reasons.append(f"reactant {i + 1} ({smiles[i]}) supplies no product atom that the other "
                               f"reactants do not already supply")
    labels = [f"{prod.GetAtomWithIdx(j).GetSymbol()}{j + 1}" for j in left]
    if left:
        foreign = _not_from_reagents(prod, left)
        if len(left) > limit or foreign:
            why = (f"at most {limit} may come from reagents" if len(left) > limit
                   else f"reagents do not supply {', '.join(foreign)}")
            reasons.append(f"product atoms supplied by no reactant: {', '.join(labels)} "
                           f"({len(left)} of {n} heavy atoms; {why})")
    if edits > max_edits and not reasons:
        worst = max(range(len(reacs)), key=lambda i: (per_reactant[i], -i))
        reasons.append(f"the reactants fit the product only with {edits} bonds made or broken (at most "
                       f"{max_edits} for one step from {len(reacs)} reactant{'s' if len(reacs) > 1 else ''}); reactant {worst + 1} ({smiles[worst]}) alone needs "
                       f"{per_reactant[worst]}: its atoms do not map onto the product")
    if timed_out and reasons:
        reasons.append(f"the substructure comparison timed out ({params.Timeout} s per comparison, "
                       f"{MAX_SECONDS:g} s per check); the match may be incomplete")
    return ReactionCheck(ok=not reasons, reasons=reasons, product_heavy=n, supplied=n - len(left),
                         unsupplied=labels, contributions=[len(share[i]) for i in range(len(reacs))],
                         bond_edits=edits, timed_out=timed_out, seconds=round(time.perf_counter() - t0, 4))


def _not_from_reagents(prod, atoms) -> list[str]:
    """Labels of the unsupplied product atoms that no reagent would bring (see REAGENT_ELEMENTS)."""
    out = []
    for j in atoms:
        a = prod.GetAtomWithIdx(j)
        if a.GetSymbol() in REAGENT_ELEMENTS:
            continue
        if a.GetSymbol() == "C" and not any(nb.GetSymbol() == "C" for nb in a.GetNeighbors()):
            continue
        out.append(f"{a.GetSymbol()}{j + 1}" + (" (a carbon on carbon)" if a.GetSymbol() == "C" else ""))
    return out


def _bond_edits(prod, reacs, share) -> tuple[int, list[int]]:
    """Bonds made or broken by the assignment ``share`` (in all, and touching each reactant): product
    bonds between atoms of different reactants or to an unsupplied atom, product bonds between
    atoms of one reactant that the reactant does not have (a ring closed), and reactant bonds from a
    supplied atom to an atom that does not reach the product (a leaving group cut off) or between
    two supplied atoms that the product does not have (a ring opened)."""
    owner = {p: i for i, hit in share.items() for p in hit}
    per = [0] * len(reacs)
    total = 0
    for b in prod.GetBonds():
        x, y = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        ox, oy = owner.get(x), owner.get(y)
        if ox is not None and ox == oy and reacs[ox].GetBondBetweenAtoms(share[ox][x], share[ox][y]) is not None:
            continue
        total += 1
        for o in {ox, oy} - {None}:
            per[o] += 1
    for i, hit in share.items():
        inv = {r: p for p, r in hit.items()}
        for b in reacs[i].GetBonds():
            pa, pc = inv.get(b.GetBeginAtomIdx()), inv.get(b.GetEndAtomIdx())
            if (pa is None) != (pc is None) or (pa is not None and prod.GetBondBetweenAtoms(pa, pc) is None):
                total += 1
                per[i] += 1
    return total, per


def _smiles(m) -> str:
    from rdkit import Chem

    try:
        return Chem.MolToSmiles(m)
    except Exception:  # noqa: BLE001 - an unsanitised fragment still gets a name
        return "?"


def check_reaction_record(rec) -> tuple[list[str], list[ReactionCheck]]:
    """The check on a decoded reaction record (``engine.grammar.records.Reaction``): a
    retrosynthesis record's reactants must all take part in making its product; in a forward
    record each product must be made from the reactants (reactants may be reagents that supply
    nothing). Returns (reasons, one ReactionCheck per product)."""
    reactants = [m.smiles for m in rec.reactants]
    checks = [reactants_supply_product(p.smiles, reactants, every_reactant=rec.retro) for p in rec.products]
    if rec.retro:
        return [r for c in checks for r in c.reasons], checks
    return [f"product {i}: {r}" for i, c in enumerate(checks, 1) for r in c.reasons], checks
