"""The receptor of a docking run, prepared by Meeko from the loaded structure.

Steps, each reported to the user: model 1 only; alternate locations resolved (the first, or the
letter the user chose, per residue where that letter exists); waters removed; the reference ligand
(a hetero residue the user named, or a ligand molecule given beside the protein) removed and kept as
the reference pose; hydrogens of the file dropped (Meeko adds its own from its residue templates);
then Meeko's ``Polymer`` matches every residue to a chemical template. Residues no template matches
(missing atoms, unknown hetero groups such as ions or cofactors) are removed and LISTED, never
silently: ``Receptor.removed``. The rigid receptor PDBQT is Meeko's writer's, not ours.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.docking.box import DEFAULT_PADDING, Box, box_around
from engine.docking.errors import DockingError


@dataclass
class ReferenceLigand:
    """The co-crystal (or given) ligand: its pose defines the box and RMSDs are measured to it."""

    name: str  # residue name or molecule name
    chain: str
    resnum: int
    smiles: str | None
    molblock: str  # heavy atoms, bond orders from the CCD (or the given file), receptor frame

    def mol(self):
        from rdkit import Chem

        return Chem.MolFromMolBlock(self.molblock, removeHs=False, sanitize=True)

    def xyz(self) -> np.ndarray:
        m = self.mol()
        pos = m.GetConformer().GetPositions()
        return pos[[a.GetIdx() for a in m.GetAtoms() if a.GetAtomicNum() > 1]]

    def label(self) -> str:
        return f"{self.name} {self.chain}:{self.resnum}" if self.chain else self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "chain": self.chain, "resnum": self.resnum, "smiles": self.smiles}


@dataclass
class Receptor:
    name: str
    source: str  # file name, for messages
    input_sha256: str  # of the file's bytes as given
    pdbqt: str  # Meeko's rigid receptor
    removed: list[dict] = field(default_factory=list)  # {"residue", "reason"}: removed before docking
    waters_removed: int = 0
    hetero_removed: list[str] = field(default_factory=list)  # reference ligand (and other ligands named)
    altloc: str | None = None
    altloc_residues: list[str] = field(default_factory=list)
    reference: ReferenceLigand | None = None
    warnings: list[str] = field(default_factory=list)
    _polymer: object = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """Content address of the prepared receptor (the map cache is keyed by it and the box)."""
        return hashlib.sha256(self.pdbqt.encode()).hexdigest()

    def summary(self) -> list[str]:
        """What preparation did, one line each, for the user."""
        out = []
        if self.altloc_residues:
            out.append(f"alternate locations: kept {self.altloc or 'the first'} in "
                       + _listing(self.altloc_residues))
        if self.waters_removed:
            out.append(f"removed {self.waters_removed} water molecule(s)")
        if self.hetero_removed:
            out.append("removed the reference ligand " + ", ".join(self.hetero_removed))
        if self.removed:
            by_reason: dict[str, list[str]] = {}
            for r in self.removed:
                by_reason.setdefault(r["reason"], []).append(r["residue"])
            out.append(f"removed {len(self.removed)} residue(s) that Meeko could not type: "
                       + "; ".join(f"{why}: {_listing(res)}" for why, res in by_reason.items()))
        return out + list(self.warnings)

    def box_from_reference(self, padding: float = DEFAULT_PADDING) -> Box:
        if self.reference is None:
            raise DockingError(f"{self.source}: no reference ligand to put the box around; "
                               "name one (--ligand) or choose pocket residues (--pocket)")
        return box_around(self.reference.xyz(), padding, source=f"ligand {self.reference.label()}")

    def box_from_residues(self, spec, padding: float = 0.0) -> Box:
        """The box around the heavy atoms of the pocket residues given as "A:137,A:139,…"."""
        wanted = parse_residues(spec, self.source)
        poly = self._polymer
        xyz, found = [], set()
        for rid, mon in poly.get_valid_monomers().items():
            chain, num, icode = _split_res_id(rid)
            for w in wanted:
                if w[1] == num and w[2] == icode and w[0] in (None, chain):
                    found.add(w)
                    m = mon.rdkit_mol
                    pos = m.GetConformer().GetPositions()
                    xyz.extend(pos[[a.GetIdx() for a in m.GetAtoms() if a.GetAtomicNum() > 1]])
        missing = [w for w in wanted if w not in found]
        if missing:
            names = ", ".join(f"{c + ':' if c else ''}{n}{i.strip()}" for c, n, i in missing)
            removed = {r["residue"].split()[0] for r in self.removed}
            raise DockingError(f"{self.source}: pocket residue(s) {names} not in the prepared receptor"
                               + (f" (removed before docking: {', '.join(sorted(removed))})" if removed else ""))
        label = ",".join(f"{c + ':' if c else ''}{n}{i.strip()}" for c, n, i in wanted)
        return box_around(np.array(xyz), padding, source=f"residues {label}")

    def pocket_mol(self, box: Box, margin: float = 6.0):
        """The prepared protein (hydrogens, bond orders from Meeko's templates, PDB residue info) cut
        to the residues with an atom within ``margin`` Å of the box: what PoseBusters and ProLIF
        read in the workers."""
        from rdkit import Chem

        poly = self._polymer
        lo = np.asarray(box.center) - np.asarray(box.size) / 2 - margin
        hi = np.asarray(box.center) + np.asarray(box.size) / 2 + margin
        keep = set()
        for rid, mon in poly.get_valid_monomers().items():
            pos = mon.rdkit_mol.GetConformer().GetPositions()
            if np.any(np.all((pos >= lo) & (pos <= hi), axis=1)):
                keep.add(rid)
        if not keep:
            raise DockingError(f"{self.source}: no protein atom within {margin:g} Å of the box")
        with _quiet_logs():
            mol = poly.to_rdkit_mol(residues_to_add=keep)
            Chem.SanitizeMol(mol)
        return mol


def _listing(items: list[str], n: int = 12) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def parse_residues(spec, source: str) -> list[tuple[str | None, int, str]]:
    """"A:137,A:139,B:45A" → (chain or None, number, insertion code or ""), the ligand task's reading."""
    from engine.tasks.protein_input import parse_residue_list

    try:
        out = [(c, n, i.strip()) for c, n, i in parse_residue_list(spec, source)]
    except ValueError as exc:
        raise DockingError(str(exc).replace("cannot read residue", "cannot read pocket residue")) from None
    if not out:
        raise DockingError(f"{source}: the pocket has no residues")
    return out


def _split_res_id(rid: str) -> tuple[str, int, str]:
    chain, num = rid.split(":")
    icode = ""
    if num and num[-1].isalpha():
        num, icode = num[:-1], num[-1]
    return chain, int(num), icode


@contextmanager
def _quiet_logs():
    """Meeko and RDKit report template matching on the root logger and stderr; we collect what
    matters ourselves and keep the user's terminal clean."""
    from rdkit import RDLogger

    prev = logging.root.manager.disable
    logging.disable(logging.WARNING)
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        logging.disable(prev)
        RDLogger.EnableLog("rdApp.*")


def _read_structure(path, data: bytes | None, fmt: str | None, name: str):
    import gemmi

    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DockingError(f"{path}: cannot read the receptor file ({exc.strerror or exc})") from None
    if len(data) == 0:
        raise DockingError(f"{name}: the receptor file is empty")
    text = data.decode("utf-8", "replace")
    low = (fmt or Path(name).suffix.lstrip(".")).lower()
    is_cif = low in ("cif", "mmcif") or text.lstrip().startswith("data_")
    try:
        if is_cif:
            st = gemmi.make_structure_from_block(gemmi.cif.read_string(text)[0])
        else:
            st = gemmi.read_pdb_string(text)
    except Exception as exc:  # noqa: BLE001 - gemmi's parse errors carry the line
        raise DockingError(f"{name}: not a readable {'mmCIF' if is_cif else 'PDB'} file "
                           f"({' '.join(str(exc).split())[:200]})") from None
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise DockingError(f"{name}: the receptor file has no atoms")
    return st, data


def _resolve_altlocs(st, altloc: str | None) -> list[str]:
    """Keep one alternate location per residue: ``altloc`` where the residue has it, else the first."""
    touched = []
    for ch in st[0]:
        for res in ch:
            letters = sorted({a.altloc for a in res if a.has_altloc()})
            if not letters:
                continue
            touched.append(f"{ch.name}:{res.name}{res.seqid.num}{res.seqid.icode.strip()}")
            keep = altloc if altloc in letters else letters[0]
            for i in reversed(range(len(res))):
                if res[i].has_altloc() and res[i].altloc != keep:
                    del res[i]
            for a in res:
                a.altloc = "\0"
    return touched


def prepare_receptor(path=None, *, data: bytes | None = None, fmt: str | None = None, name: str | None = None,
                     ligand: str | None = None, chain: str | None = None, resnum: int | None = None,
                     reference_mol=None, altloc: str | None = None) -> Receptor:
    """Prepare the receptor from a PDB or mmCIF file (``path``, or its ``data`` bytes).

    ``ligand``/``chain``/``resnum`` name the reference ligand inside the file (removed from the
    receptor, kept as the reference pose); ``reference_mol`` gives it from outside (an RDKit
    molecule with coordinates, e.g. from an SDF beside a protein file whose ligand was removed).
    """
    from rdkit import Chem

    from engine.structures import pocket as _pocket
    from engine.structures import residues as _res

    name = name or (Path(path).name if path is not None else "receptor")
    st, raw = _read_structure(path, data, fmt, name)
    if altloc is not None and not re.fullmatch(r"[A-Za-z0-9]", altloc):
        raise DockingError(f"alternate location must be one letter or digit, not {altloc!r}")
    while len(st) > 1:
        del st[1]
    warnings = []
    touched = _resolve_altlocs(st, altloc)
    st.remove_hydrogens()
    model = st[0]
    if not any(_res.is_amino_acid(r.name) for ch in model for r in ch):
        raise DockingError(f"{name}: no protein in the receptor file (no amino-acid residue)")

    reference = None
    hetero_removed = []
    if reference_mol is not None:
        if reference_mol.GetNumConformers() == 0:
            raise DockingError("the reference ligand has no coordinates")
        heavy = Chem.RemoveHs(reference_mol, sanitize=False)
        rname = reference_mol.GetProp("_Name").strip() if reference_mol.HasProp("_Name") else ""
        try:
            smi = Chem.MolToSmiles(Chem.RemoveHs(reference_mol))
        except Exception:  # noqa: BLE001
            smi = None
        reference = ReferenceLigand(rname or "ligand", "", 0, smi, Chem.MolToMolBlock(heavy))
    elif ligand is not None or chain is not None or resnum is not None:
        try:
            ch, res, w = _pocket.select_ligand(st, ligand, chain, resnum)
        except _pocket.PocketError as exc:
            raise DockingError(f"{name}: {exc}") from None
        warnings += w
        mol, w = _pocket.ligand_mol_from_residue(res)
        warnings += w
        if mol is None:
            raise DockingError(f"{name}: the ligand {res.name} {ch.name}:{res.seqid.num} could not be read "
                               "as a molecule")
        smi = Chem.MolToSmiles(Chem.RemoveHs(mol))
        reference = ReferenceLigand(res.name, ch.name, res.seqid.num, smi, Chem.MolToMolBlock(Chem.RemoveHs(mol)))
        hetero_removed.append(f"{res.name} {ch.name}:{res.seqid.num}")
        for i, r in enumerate(ch):
            if r.seqid.num == res.seqid.num and r.seqid.icode == res.seqid.icode and r.name == res.name:
                del ch[i]
                break

    waters = 0
    for ch in model:
        for i in reversed(range(len(ch))):
            if _res.is_water(ch[i].name):
                del ch[i]
                waters += 1
    # residues Meeko has no template for would make it fetch one from the PDB's web site: this is an
    # offline tool, so they are removed here and listed (ions, cofactors, other ligands, odd residues)
    known = _template_names()
    removed = []
    for ch in model:
        for i in reversed(range(len(ch))):
            r = ch[i]
            if r.name.strip().upper() not in known:
                rname = r.name.strip().upper()
                kind = ("non-standard amino acid" if _res.is_amino_acid(rname)
                        else "ion" if rname in _res.IONS
                        else "crystallisation additive" if rname in _res.ADDITIVES
                        else "ligand or cofactor")
                removed.append({"residue": f"{ch.name}:{r.name}{r.seqid.num}{r.seqid.icode.strip()}",
                                "reason": f"{kind}, no residue template"})
                del ch[i]
    removed.reverse()
    st.remove_empty_chains()
    keys_in = []
    for ch in model:
        for r in ch:
            keys_in.append((f"{ch.name}:{r.seqid.num}{r.seqid.icode.strip()}", r.name))
    if len({k for k, _ in keys_in}) != len(keys_in):
        warnings.append("some residues share a chain, number and insertion code; Meeko keeps one of each")
    st.setup_entities()

    from meeko import PDBQTWriterLegacy, Polymer

    # Meeko stops on a residue it cannot build at all (rather than skipping it): that residue is
    # removed, listed, and preparation tried again
    for _attempt in range(50):
        try:
            with _quiet_logs():
                poly = Polymer.from_pdb_string(st.make_pdb_string(), allow_bad_res=True)
                rigid, _flex = PDBQTWriterLegacy.write_from_polymer(poly)
            break
        except Exception as exc:  # noqa: BLE001 - Meeko's own reason, on one line
            why = " ".join(str(exc).split())
            hit = re.search(r"key '?([A-Za-z0-9]{1,4}):(-?\d+)([A-Za-z]?)'?", why)
            if not hit or not _delete_residue(st, hit.group(1), int(hit.group(2)), hit.group(3)):
                raise DockingError(f"{name}: Meeko could not prepare the receptor: {why[:300]}") from None
            key = f"{hit.group(1)}:{hit.group(2)}{hit.group(3)}"
            resname = next((r for k, r in keys_in if k == key), "")
            removed.append({"residue": f"{hit.group(1)}:{resname}{hit.group(2)}{hit.group(3)}",
                            "reason": "Meeko could not build it from its atoms (distorted or incomplete residue)"})
            keys_in = [(k, r) for k, r in keys_in if k != key]
    else:
        raise DockingError(f"{name}: Meeko could not prepare the receptor (too many residues it cannot build)")
    valid = set(poly.get_valid_monomers())
    ignored = set(poly.get_ignored_monomers())
    for key, resname in keys_in:
        if key in valid:
            continue
        if key in ignored:
            why = ("no residue template matches its atoms (missing or extra atoms)" if _res.is_amino_acid(resname)
                   else "hetero group, no residue template")
        else:
            why = "could not be read as a residue"
        removed.append({"residue": f"{key.split(':')[0]}:{resname}{key.split(':')[1]}", "reason": why})
    if not valid or not any(_res.is_amino_acid(m.input_resname) for m in poly.get_valid_monomers().values()):
        raise DockingError(f"{name}: no protein residue could be typed for docking")
    _label_monomers(poly)
    return Receptor(name=Path(name).stem, source=name, input_sha256=hashlib.sha256(raw).hexdigest(),
                    pdbqt=rigid, removed=removed, waters_removed=waters, hetero_removed=hetero_removed,
                    altloc=altloc, altloc_residues=touched, reference=reference, warnings=warnings,
                    _polymer=poly)


_TEMPLATE_NAMES: frozenset | None = None


def _template_names() -> frozenset:
    """Residue names Meeko's shipped templates can type (standard and some modified residues)."""
    global _TEMPLATE_NAMES
    if _TEMPLATE_NAMES is None:
        from meeko import ResidueChemTemplates

        t = ResidueChemTemplates.create_from_defaults()
        names = {k for k in t.residue_templates if k.isalnum()}
        names |= set(t.ambiguous)
        _TEMPLATE_NAMES = frozenset(n.upper() for n in names)
    return _TEMPLATE_NAMES


def _delete_residue(st, chain: str, num: int, icode: str) -> bool:
    for ch in st[0]:
        if ch.name != chain:
            continue
        for i, r in enumerate(ch):
            if r.seqid.num == num and r.seqid.icode.strip() == icode.strip():
                del ch[i]
                return True
    return False


def _label_monomers(poly) -> None:
    """PDB residue information on every typed atom, so that the protein molecule that Meeko stitches
    from its monomers carries residue names and numbers (what ProLIF and PoseBusters read)."""
    from rdkit import Chem

    for rid, mon in poly.get_valid_monomers().items():
        chain, num, icode = _split_res_id(rid)
        for i, atom in enumerate(mon.rdkit_mol.GetAtoms()):
            atom.SetMonomerInfo(Chem.AtomPDBResidueInfo(
                mon.atom_names[i], residueName=mon.input_resname, residueNumber=num, chainId=chain,
                insertionCode=icode or " ", isHeteroAtom=False))


