"""A generated candidate as a workspace object: a molecule with a 3D conformer (RDKit ETKDG),
placed at the centre of the pocket it was designed for when that protein is loaded."""

from __future__ import annotations

import re

_LABEL = re.compile(r"^(\w+):([A-Za-z]{3})(-?\d+)")


def pocket_centre(structure, labels) -> tuple[float, float, float] | None:
    """Centroid of the atoms of the residues named like ``A:ASP25`` (the ligand task's pocket)."""
    wanted = set()
    for lab in labels or []:
        m = _LABEL.match(str(lab))
        if m:
            wanted.add((m.group(1), int(m.group(3))))
    if not wanted or structure is None:
        return None
    xs = []
    for ch in structure[0]:
        for res in ch:
            if (ch.name, res.seqid.num) in wanted:
                xs += [(a.pos.x, a.pos.y, a.pos.z) for a in res]
    if not xs:
        return None
    n = len(xs)
    return (sum(p[0] for p in xs) / n, sum(p[1] for p in xs) / n, sum(p[2] for p in xs) / n)


def candidate_object(row, anchor=None):
    """engine.structures LoadedObject for a result row with SMILES (None if RDKit cannot embed it)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from rdkit.Geometry import Point3D

    from engine.structures.model import LoadedObject

    mol = Chem.MolFromSmiles(row.smiles or "")
    if mol is None:
        return None
    molh = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = 0xF00D
    warnings = []
    if AllChem.EmbedMolecule(molh, params) != 0:
        warnings.append("no 3D conformer could be embedded; 2D coordinates shown")
        AllChem.Compute2DCoords(molh)
    else:
        try:
            AllChem.MMFFOptimizeMolecule(molh, maxIters=200)
        except Exception:  # noqa: BLE001 - an un-parametrised molecule keeps its ETKDG geometry
            pass
    centre = None
    objects = row.objects if isinstance(row.objects, dict) else {}
    if anchor is not None and getattr(anchor, "structure", None) is not None:
        centre = pocket_centre(anchor.structure, objects.get("pocket"))
    if centre is not None:
        conf = molh.GetConformer()
        pts = [conf.GetAtomPosition(i) for i in range(molh.GetNumAtoms())]
        cx = sum(p.x for p in pts) / len(pts)
        cy = sum(p.y for p in pts) / len(pts)
        cz = sum(p.z for p in pts) / len(pts)
        for i, p in enumerate(pts):
            conf.SetAtomPosition(i, Point3D(p.x - cx + centre[0], p.y - cy + centre[1], p.z - cz + centre[2]))
        warnings.append(f"placed at the centre of the pocket of {anchor.name} (not docked)")
    name = f"result {row.id}"
    heavy = Chem.RemoveHs(molh)  # the heavy atoms keep their 3D coordinates
    heavy.SetProp("_Name", name)
    obj = LoadedObject(kind="molecule", name=name, source=None, fmt="sdf", mol=heavy, warnings=warnings)
    obj._logos_free_frame = centre is None  # not in a pocket: laid beside what is shown
    return obj
