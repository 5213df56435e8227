"""Headless structure edits: each edit applies and reverts itself.

The GUI wraps each edit in a ``QUndoCommand``; scripts and tests use them directly::

    edit = ReplaceAtom(3, "N")
    edit.apply(obj)      # raises EditError (nothing changed) if the result would not sanitise
    edit.revert(obj)     # back to the exact previous state (atoms, bonds, coordinates)
    edit.apply(obj)      # redo gives the same result as the first apply

An edit snapshots the field it changes (``mol``, ``structure`` or ``crystal``) before its first
apply and computes its result once, so undo/redo never re-runs a random or iterative step and
never corrupts bonds. A molecule edit refuses (``EditError``) a result that fails RDKit
sanitisation and says why; ``warnings`` lists what the user should know about an applied edit.

An object keeps the edits of its atoms that are applied now: ``obj.edit_log`` (each edit's
``summary``, oldest first; ``revert`` takes it off again) and ``obj.modified`` (the log is not
empty: the object is no longer what its file holds, so a task must be sent the object as it is
now, not the file). ``edit_summary(obj)`` says it in a few words.
"""

from __future__ import annotations

from typing import Any

STANDARD_RESIDUES = (
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
    "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
)
BACKBONE = ("N", "CA", "C", "O", "OXT")


class EditError(ValueError):
    """An edit that cannot be applied; the object is left unchanged. ``str()`` says why."""


class Edit:
    """Base class. Subclasses name the field they change and implement ``_compute``."""

    field: str = "mol"
    label: str = "edit"
    changes_atoms: bool = True  # False: the atoms are untouched (display sets such as the pocket)

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._before: Any = None
        self._after: Any = None
        self._done = False

    # -- public -------------------------------------------------------------------------------
    @property
    def summary(self) -> str:
        """What the edit did, in a few words, for the provenance of an edited input."""
        return self._summary or self.label

    _summary: str = ""

    def apply(self, obj) -> None:
        current = getattr(obj, self.field)
        if current is None:
            raise EditError(f"{self.label}: {obj.name} has no {self._what()} to edit")
        if self._after is None:
            self._before = _copy(current)
            self._after = self._compute(_copy(current), obj)
        setattr(obj, self.field, _copy(self._after))
        self._done = True
        if self.changes_atoms:
            _log(obj).append(self.summary)
            obj.modified = True

    def revert(self, obj) -> None:
        if not self._done:
            raise EditError(f"{self.label}: cannot revert an edit that was not applied")
        setattr(obj, self.field, _copy(self._before))
        self._done = False
        if self.changes_atoms:
            log = _log(obj)
            if self.summary in log:  # undo runs newest first: the last entry is this edit's
                del log[len(log) - 1 - log[::-1].index(self.summary)]
            obj.modified = bool(log)

    # -- subclass hook ------------------------------------------------------------------------
    def _compute(self, value, obj):  # pragma: no cover - abstract
        raise NotImplementedError

    def _what(self) -> str:
        return {"mol": "molecule", "structure": "macromolecular structure", "crystal": "crystal"}[self.field]


def _log(obj) -> list:
    log = getattr(obj, "edit_log", None)
    if log is None:
        log = []
        obj.edit_log = log
    return log


def edit_summary(obj, most: int = 2) -> str:
    """The applied edits of ``obj`` in a few words ("mutated A25 ASP→ALA; deleted 2 atoms and 3
    more edits"); "" for an unedited object."""
    log = list(getattr(obj, "edit_log", None) or [])
    if not log:
        return ""
    shown = "; ".join(log[:most])
    rest = len(log) - most
    return shown + (f" and {rest} more edit{'s' if rest != 1 else ''}" if rest > 0 else "")


def _copy(value):
    if value is None:
        return None
    mod = type(value).__module__
    if mod.startswith("rdkit"):
        from rdkit import Chem

        return Chem.Mol(value)
    if mod.startswith("gemmi"):
        return value.clone()
    if hasattr(value, "copy"):
        return value.copy()
    raise TypeError(f"cannot copy {type(value).__name__}")


def _sanitised(mol, label: str):
    """Sanitise ``mol`` (an RWMol or Mol); raise EditError with RDKit's reason if it fails."""
    from rdkit import Chem

    mol = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several exception types, all with a clear message
        raise EditError(f"{label}: the result does not sanitise ({exc}); nothing was changed") from exc
    return mol


def _atomic_number(symbol: str) -> int:
    """1..118 for an element symbol, 0 for anything else (no RDKit invariant noise)."""
    from rdkit import Chem

    pt = Chem.GetPeriodicTable()
    table = {pt.GetElementSymbol(z): z for z in range(1, 119)}
    return table.get(symbol.strip().capitalize(), 0)


def _kekulized(mol):
    """An RWMol with explicit single/double bonds, so that opening or changing a ring leaves no
    stray aromatic flags (sanitisation re-perceives aromaticity)."""
    from rdkit import Chem

    rw = Chem.RWMol(mol)
    try:
        Chem.Kekulize(rw, clearAromaticFlags=True)
    except Exception:  # noqa: BLE001 - not kekulizable: edit the aromatic form as it is
        rw = Chem.RWMol(mol)
    return rw


def _check_atom(mol, index: int, label: str) -> None:
    if not 0 <= index < mol.GetNumAtoms():
        raise EditError(f"{label}: atom index {index} is out of range (0..{mol.GetNumAtoms() - 1})")


# -- molecules ------------------------------------------------------------------------------
class DeleteAtoms(Edit):
    """Delete atoms (and the hydrogens bonded only to them)."""

    def __init__(self, indices) -> None:
        super().__init__()
        self.indices = sorted({int(i) for i in indices})
        self.label = f"delete {len(self.indices)} atom{'s' if len(self.indices) != 1 else ''}"

    def _compute(self, mol, obj):
        from rdkit import Chem

        if not self.indices:
            raise EditError("delete atoms: nothing selected")
        for i in self.indices:
            _check_atom(mol, i, self.label)
        doomed = set(self.indices)
        for i in self.indices:
            for nb in mol.GetAtomWithIdx(i).GetNeighbors():
                if nb.GetAtomicNum() == 1 and nb.GetDegree() == 1:
                    doomed.add(nb.GetIdx())
        if len(doomed) >= mol.GetNumAtoms():
            raise EditError("delete atoms: that would delete every atom; nothing was changed")
        self._summary = f"deleted {len(doomed)} atom{'s' if len(doomed) != 1 else ''}"
        rw = _kekulized(mol)
        for i in sorted(doomed, reverse=True):
            rw.RemoveAtom(i)
        out = _sanitised(rw, self.label)
        frags = len(Chem.GetMolFrags(out))
        if frags > 1:
            self.warnings.append(f"the molecule now has {frags} disconnected fragments")
        return out


class ReplaceAtom(Edit):
    """Change one atom's element (formal charge reset to 0, hydrogens recomputed)."""

    def __init__(self, index: int, element: str) -> None:
        super().__init__()
        self.index = int(index)
        self.element = element.strip().capitalize()
        self.label = f"replace atom {self.index} by {self.element}"

    def _compute(self, mol, obj):
        from rdkit import Chem

        _check_atom(mol, self.index, self.label)
        z = _atomic_number(self.element)
        if z <= 0:
            raise EditError(f"{self.label}: {self.element!r} is not an element symbol")
        rw = _kekulized(mol)
        atom = rw.GetAtomWithIdx(self.index)
        atom.SetAtomicNum(z)
        atom.SetFormalCharge(0)
        atom.SetNoImplicit(False)
        atom.SetNumExplicitHs(0)
        return _sanitised(rw, self.label)


class AddHydrogens(Edit):
    label = "add hydrogens"

    def _compute(self, mol, obj):
        from rdkit import Chem

        return Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)


class RemoveHydrogens(Edit):
    label = "remove hydrogens"

    def _compute(self, mol, obj):
        from rdkit import Chem

        try:
            return Chem.RemoveHs(mol)
        except Exception as exc:
            raise EditError(f"{self.label}: {exc}") from exc


class CleanUp3D(Edit):
    """ETKDG re-embedding (optional) then MMFF94 optimisation (UFF where MMFF has no parameters)."""

    def __init__(self, reembed: bool = True, seed: int = 0xF00D, max_iters: int = 2000) -> None:
        super().__init__()
        self.reembed, self.seed, self.max_iters = reembed, seed, max_iters
        self.label = "3D clean-up (ETKDG + MMFF)" if reembed else "force-field clean-up (MMFF)"

    def _compute(self, mol, obj):
        from rdkit import Chem
        from rdkit.Chem import AllChem

        had_h = any(a.GetAtomicNum() == 1 for a in mol.GetAtoms())
        had_xyz = mol.GetNumConformers() > 0
        work = Chem.AddHs(mol, addCoords=had_xyz)
        reference = Chem.Mol(work) if had_xyz else None
        if self.reembed or work.GetNumConformers() == 0:
            params = AllChem.ETKDGv3()
            params.randomSeed = self.seed
            if AllChem.EmbedMolecule(work, params) != 0:
                params.useRandomCoords = True
                if AllChem.EmbedMolecule(work, params) != 0:
                    raise EditError(f"{self.label}: ETKDG could not embed this molecule")
        if AllChem.MMFFHasAllMoleculeParams(work):
            status = AllChem.MMFFOptimizeMolecule(work, maxIters=self.max_iters)
        elif AllChem.UFFHasAllMoleculeParams(work):
            self.warnings.append("MMFF94 has no parameters for this molecule: used UFF instead")
            status = AllChem.UFFOptimizeMolecule(work, maxIters=self.max_iters)
        else:
            self.warnings.append("neither MMFF94 nor UFF has parameters: geometry from ETKDG only")
            status = 0
        if status == 1:
            self.warnings.append(f"force field did not converge in {self.max_iters} iterations")
        if reference is not None:  # stay where the molecule was (e.g. in its pocket)
            from rdkit.Chem import rdMolAlign

            heavy = [(a.GetIdx(), a.GetIdx()) for a in work.GetAtoms() if a.GetAtomicNum() > 1]
            rdMolAlign.AlignMol(work, reference, atomMap=heavy or [(i, i) for i in range(work.GetNumAtoms())])
        return work if had_h else Chem.RemoveHs(work)


class SetSmiles(Edit):
    """Replace the molecule by one parsed from SMILES, with 3D coordinates (ETKDG, 2D fallback)."""

    def __init__(self, smiles: str, seed: int = 0xF00D) -> None:
        super().__init__()
        self.smiles = smiles.strip()
        self.seed = seed
        self.label = f"set SMILES {self.smiles[:40]}"

    def _compute(self, mol, obj):
        new = preview_smiles(self.smiles)
        from rdkit import Chem
        from rdkit.Chem import AllChem

        work = Chem.AddHs(new)
        params = AllChem.ETKDGv3()
        params.randomSeed = self.seed
        if AllChem.EmbedMolecule(work, params) == 0:
            if AllChem.MMFFHasAllMoleculeParams(work):
                AllChem.MMFFOptimizeMolecule(work, maxIters=500)
            out = Chem.RemoveHs(work)
        else:
            AllChem.Compute2DCoords(new)
            out = new
            self.warnings.append("ETKDG could not embed the molecule: it has 2D coordinates")
        if mol is not None and mol.GetNumConformers() and out.GetNumConformers():
            from rdkit.Geometry import Point3D

            shift = mol.GetConformer().GetPositions().mean(0) - out.GetConformer().GetPositions().mean(0)
            conf = out.GetConformer()
            for i, p in enumerate(conf.GetPositions() + shift):  # keep it where the old one was
                conf.SetAtomPosition(i, Point3D(*p))
        if obj.mol is not None and obj.mol.HasProp("_Name"):
            out.SetProp("_Name", obj.mol.GetProp("_Name"))
        return out

    def apply(self, obj) -> None:
        if obj.mol is None and obj.kind in ("molecule",):
            raise EditError(f"{self.label}: {obj.name} has no molecule")
        super().apply(obj)


def preview_smiles(smiles: str):
    """Parse SMILES for a live preview; EditError with RDKit's reason when it does not parse."""
    from rdkit import Chem, RDLogger

    smiles = smiles.strip()
    if not smiles:
        raise EditError("empty SMILES")
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            raise EditError(f"SMILES {smiles!r} does not parse")
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:
            raise EditError(f"SMILES {smiles!r} does not sanitise: {exc}") from exc
    finally:
        RDLogger.EnableLog("rdApp.*")
    return mol


# -- proteins -------------------------------------------------------------------------------
def _find_residue(structure, chain: str, seqid: str):
    model = structure[0]
    for ch in model:
        if ch.name != chain:
            continue
        for res in ch:
            if str(res.seqid.num) + (res.seqid.icode.strip() or "") == str(seqid).strip():
                return res
    return None


class MutateResidue(Edit):
    """Rename a residue to another standard amino acid, keeping the backbone and CB.

    The new side chain beyond CB is not built (no rotamer library here): the edit says so.
    """

    field = "structure"

    def __init__(self, chain: str, seqid: str | int, new_name: str) -> None:
        super().__init__()
        self.chain, self.seqid, self.new_name = chain, str(seqid), new_name.strip().upper()
        self.label = f"mutate {chain}/{self.seqid} to {self.new_name}"

    def _compute(self, structure, obj):
        if self.new_name not in STANDARD_RESIDUES:
            raise EditError(f"{self.label}: {self.new_name} is not one of the 20 standard amino acids")
        res = _find_residue(structure, self.chain, self.seqid)
        if res is None:
            raise EditError(f"{self.label}: there is no residue {self.chain}/{self.seqid}")
        if res.name not in STANDARD_RESIDUES:
            raise EditError(f"{self.label}: {res.name} is not a standard amino acid")
        old = res.name
        self._summary = f"mutated {self.chain}{self.seqid} {old}→{self.new_name}"
        keep = set(BACKBONE) | ({"CB"} if self.new_name != "GLY" else set())
        for i in reversed(range(len(res))):
            if res[i].name not in keep:
                res.remove_atom(res[i].name, res[i].altloc, res[i].element)
        res.name = self.new_name
        if self.new_name not in ("GLY", "ALA"):
            self.warnings.append(
                f"{old}→{self.new_name}: side chain kept up to CB; atoms beyond CB are not built")
        return structure


class SetPocket(Edit):
    """Mark (``mark=True``) or unmark residues as pocket residues.

    The pocket is the set of ``(chain, seqid)`` pairs held beside the object (``obj.pocket``
    if present, else the ``pocket`` set given here); residues must exist in the structure.
    """

    field = "structure"
    changes_atoms = False

    def __init__(self, residues, mark: bool = True, pocket: set | None = None) -> None:
        super().__init__()
        self.residues = [(str(c), str(s)) for c, s in residues]
        self.mark = mark
        self.pocket = pocket
        n = len(self.residues)
        self.label = f"{'mark' if mark else 'unmark'} {n} pocket residue{'s' if n != 1 else ''}"
        self._changed: list[tuple[str, str]] = []

    def _target(self, obj) -> set:
        target = self.pocket if self.pocket is not None else getattr(obj, "pocket", None)
        if target is None:
            raise EditError(f"{self.label}: no pocket set to edit")
        return target

    def apply(self, obj) -> None:
        if obj.structure is None:
            raise EditError(f"{self.label}: {obj.name} has no macromolecular structure")
        target = self._target(obj)
        missing = [f"{c}/{s}" for c, s in self.residues if _find_residue(obj.structure, c, s) is None]
        if missing:
            raise EditError(f"{self.label}: no residue {', '.join(missing[:5])} in {obj.name}")
        self._changed = [r for r in self.residues if (r in target) != self.mark]
        for r in self._changed:
            (target.add if self.mark else target.discard)(r)
        self._done = True

    def revert(self, obj) -> None:
        if not self._done:
            raise EditError(f"{self.label}: cannot revert an edit that was not applied")
        target = self._target(obj)
        for r in self._changed:
            (target.discard if self.mark else target.add)(r)
        self._done = False


# -- crystals -------------------------------------------------------------------------------
class Supercell(Edit):
    field = "crystal"

    def __init__(self, na: int, nb: int, nc: int) -> None:
        super().__init__()
        self.scale = (int(na), int(nb), int(nc))
        self.label = f"supercell {na}×{nb}×{nc}"

    def _compute(self, crystal, obj):
        if min(self.scale) < 1 or max(self.scale) > 10:
            raise EditError(f"{self.label}: each repeat must be 1 to 10")
        n = len(crystal) * self.scale[0] * self.scale[1] * self.scale[2]
        if n > 200_000:
            raise EditError(f"{self.label}: would make {n} sites (limit 200,000)")
        crystal.make_supercell(list(self.scale))
        return crystal


class SubstituteElement(Edit):
    field = "crystal"

    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new = old.strip().capitalize(), new.strip().capitalize()
        self.label = f"substitute {self.old} → {self.new}"

    def _compute(self, crystal, obj):
        from pymatgen.core import Element

        for sym in (self.old, self.new):
            try:
                Element(sym)
            except Exception as exc:
                raise EditError(f"{self.label}: {sym!r} is not an element symbol") from exc
        species = [sp for sp in crystal.composition.elements
                   if getattr(getattr(sp, "element", sp), "symbol", str(sp)) == self.old]
        if not species:
            raise EditError(f"{self.label}: the crystal has no {self.old}")
        if any(getattr(sp, "oxi_state", None) for sp in species):
            self.warnings.append(f"oxidation states of {self.old} dropped on the new {self.new} sites")
        crystal.replace_species({sp: self.new for sp in species})
        return crystal
