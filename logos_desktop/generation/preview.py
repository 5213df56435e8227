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


# -- results that are not molecules: their picture (engine.grammar.pictures) -----------------------

KIND_WORDS = {"material": ("material", "metal node and linkers"),
              "sequence": ("sequence", "sequence with its pocket residues"),
              "reaction": ("reaction", "reactants and product")}


def row_picture(row) -> dict | None:
    """What the engine says a stored result is made of (its decoded record)."""
    from engine.grammar.pictures import result_picture

    return result_picture(getattr(row, "objects", None), getattr(row, "record", None),
                          getattr(row, "smiles", None), getattr(row, "sequence", None))


def crystal_object(row):
    """A crystal LoadedObject from a row's stored CIF (a material whose record has coordinates)."""
    if not getattr(row, "cif", None):
        return None
    from engine.structures import io

    try:
        objs = io.read_bytes(row.cif.encode(), fmt="cif", name=f"result {row.id}")
    except Exception:  # noqa: BLE001 - unreadable coordinates: the building blocks are still drawn
        return None
    crystals = [o for o in objs if o.crystal is not None]
    if not crystals:
        return None
    crystals[0].name = f"result {row.id}"  # the CIF's data block names the source structure, not the result
    return crystals[0]


def show_picture(gen, row) -> bool:
    """Show a valid result that is not a molecule (a material, a sequence, a reaction): its picture
    in the 2D view; in 3D its crystal when the row has coordinates, else nothing (the previous
    result's preview is removed, a line says why). False for molecules and rows without a picture."""
    if not getattr(row, "valid", False) or getattr(row, "smiles", None):
        return False
    picture = row_picture(row)
    if picture is None or picture.get("kind") not in KIND_WORDS:
        return False
    window = gen.window
    ws = window.workspace
    if gen.preview_item_id is not None and ws.item(gen.preview_item_id) is not None:
        ws.remove(gen.preview_item_id)  # the previous result would be left on screen as if it were this one
    gen.preview_item_id = None
    what, parts = KIND_WORDS[picture["kind"]]
    crystal = crystal_object(row) if picture["kind"] == "material" else None
    view3d = getattr(window, "view3d", None)
    if crystal is not None:
        crystal._logos_preview = True
        crystal._logos_free_frame = True
        items = ws.add_objects([crystal])
        if items:
            gen.preview_item_id = items[0].id
            ws.set_current(items[0].id)
    elif view3d is not None and hasattr(view3d, "show_note"):
        view3d.show_note(f"Result {row.id} ({what}) has no 3D coordinates: its {parts} are drawn in the 2D view.")
    view2d = getattr(window, "view2d", None)
    if view2d is not None and hasattr(view2d, "show_result"):
        task = getattr(row, "task", None)
        view2d.show_result(picture, f"<b>result {row.id}</b> · {task or what}")
    return True
