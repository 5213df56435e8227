"""Chemical Component Dictionary entries (atoms, charges, bonds with orders) from biotite's copy.

Loading biotite's whole dictionary takes 5–15 s, so each entry used is also kept as a small JSON
file under ``<cache dir>/ccd/`` (the user's cache, ``LOGOS_CACHE_DIR``) and read from there on later
runs. The entries are facts from the dictionary; nothing here guesses chemistry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from engine import paths

_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 1, 6: 2, 7: 3, 9: 1, 0: 1, 8: 0}  # biotite BondType -> Kekulé order
_AROMATIC = {5, 6, 7, 9}
_NAME_OK = re.compile(r"^[A-Z0-9]{1,5}$")


@dataclass(frozen=True)
class Component:
    name: str
    atom_names: tuple[str, ...]
    elements: tuple[str, ...]  # upper case, as in the dictionary ("CL")
    charges: tuple[int, ...]
    bonds: tuple[tuple[int, int, int, bool], ...]  # (i, j, Kekulé order, aromatic)

    def bond_orders_by_name(self) -> dict[tuple[str, str], float]:
        """{(atom1, atom2): order} with aromatic bonds as 1.5 (for drawing)."""
        out = {}
        for i, j, order, arom in self.bonds:
            out[(self.atom_names[i], self.atom_names[j])] = 1.5 if arom else float(order or 1)
        return out

    @property
    def heavy_atoms(self) -> int:
        return sum(1 for e in self.elements if e not in ("H", "D"))

    def to_rdkit(self, heavy_only: bool = False):
        """The dictionary's molecule as an RDKit Mol (no coordinates), sanitised."""
        from rdkit import Chem

        keep = [k for k, e in enumerate(self.elements) if not (heavy_only and e in ("H", "D"))]
        index = {k: n for n, k in enumerate(keep)}
        rw = Chem.RWMol()
        for k in keep:
            a = Chem.Atom(self.elements[k].capitalize())
            a.SetFormalCharge(self.charges[k])
            rw.AddAtom(a)
        for i, j, order, _arom in self.bonds:
            if i in index and j in index and order:
                rw.AddBond(index[i], index[j], _bond_type(order))
        mol = rw.GetMol()
        Chem.SanitizeMol(mol)
        return mol


def _bond_type(order: int):
    from rdkit import Chem

    return {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE,
            4: Chem.BondType.QUADRUPLE}.get(order, Chem.BondType.SINGLE)


def _cache_file(name: str):
    return paths.cache_dir() / "ccd" / f"{name}.json"


@lru_cache(maxsize=4096)
def component(name: str) -> Component:
    """The dictionary entry for residue ``name``; KeyError when the dictionary has none."""
    name = name.strip().upper()
    if not _NAME_OK.match(name):
        raise KeyError(f"{name!r} is not a component name")
    f = _cache_file(name)
    if f.is_file():
        try:
            d = json.loads(f.read_text())
            if d is None:
                raise KeyError(f"{name} is not in the Chemical Component Dictionary")
            return Component(name, tuple(d["atom_names"]), tuple(d["elements"]), tuple(d["charges"]),
                             tuple(tuple(b) for b in d["bonds"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, KeyError) and "not in the Chemical" in str(exc):
                raise
    import biotite.structure.info as info

    try:
        arr = info.residue(name)
    except KeyError:
        _store(f, None)
        raise KeyError(f"{name} is not in the Chemical Component Dictionary") from None
    bonds = tuple((int(i), int(j), _ORDER.get(int(t), 1), int(t) in _AROMATIC) for i, j, t in arr.bonds.as_array())
    comp = Component(name, tuple(str(x) for x in arr.atom_name), tuple(str(x).upper() for x in arr.element),
                     tuple(int(x) for x in arr.charge), bonds)
    _store(f, {"atom_names": comp.atom_names, "elements": comp.elements, "charges": comp.charges,
               "bonds": [list(b) for b in comp.bonds]})
    return comp


def _store(f, data) -> None:
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(f)
    except OSError:  # a read-only cache only costs speed
        pass


def known(name: str) -> bool:
    try:
        component(name)
        return True
    except KeyError:
        return False
