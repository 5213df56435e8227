"""Proteins and complexes: backbone trace by chain, ligands in sticks, pocket residues highlighted.

Big structures default to the trace drawn as lines; sticks and space-filling (impostors) are
available for any size, with the trace as the stand-in while the user drags the view.
"""

from __future__ import annotations

import numpy as np

from logos_desktop.render.vtk_common import (
    CHAIN_PALETTE, LIGAND_CARBON, POCKET_CARBON, TUBE_LIMIT, Layer, element_colors, segments_actor,
    sphere_actor, vdw_radii,
)
from logos_desktop.render.vtk_molecule import atom_actors

STYLES = ("trace", "tube", "sticks", "spacefill")
TRACE_ATOMS = {"CA": 4.3, "P": 7.8}  # atom name -> longest link (Å) between consecutive residues


def chain_colors(chains) -> np.ndarray:
    names = {c: i for i, c in enumerate(dict.fromkeys(chains))}
    return CHAIN_PALETTE[np.array([names[c] % len(CHAIN_PALETTE) for c in chains], int)] if chains else np.zeros((0, 3))


def masks(table):
    """(polymer, ligand, other) atom masks by the engine's one rule (``engine.structures.pocket.
    atom_classes``): modified residues (CSO…) are polymer, waters are hidden (in no mask), ions and
    additives are 'other'. Cached per table."""
    cached = _MASKS.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    from engine.structures.pocket import atom_classes

    m = atom_classes(table.res_names)
    out = (m["polymer"], m["ligand"], m["other"])
    _MASKS.clear()  # keep only the latest table: tables are big
    _MASKS[id(table)] = (table, out)
    return out


_MASKS: dict = {}


def residue_keys(table) -> list[tuple[str, str]]:
    return [(c, str(int(n))) for c, n in zip(table.chains, table.res_nums)]


def pocket_mask(table, pocket) -> np.ndarray:
    if not pocket or not len(table):
        return np.zeros(len(table), bool)
    keys = residue_keys(table)
    return np.fromiter((k in pocket for k in keys), bool, len(keys)) & masks(table)[0]


def trace(table):
    """(atom indices of trace atoms, (M, 2) segments between consecutive ones in a chain)."""
    polymer = masks(table)[0]
    segs = []
    picked = []
    for name, cutoff in TRACE_ATOMS.items():
        is_name = np.fromiter((n == name or n.strip() == name for n in table.atom_names), bool, len(table))
        idx = np.flatnonzero(is_name & polymer)
        if len(idx) < 1:
            continue
        picked.append(idx)
        if len(idx) < 2:
            continue
        a, b = idx[:-1], idx[1:]
        same = np.array([table.chains[i] == table.chains[j] for i, j in zip(a, b)], bool)
        d = np.linalg.norm(table.xyz[a] - table.xyz[b], axis=1)
        ok = same & (d < cutoff)
        segs.append(np.column_stack([a[ok], b[ok]]))
    idx = np.concatenate(picked) if picked else np.zeros(0, int)
    seg = np.vstack(segs) if segs else np.zeros((0, 2), int)
    return idx, seg


HELIX_RADIUS, STRAND_RADIUS = 0.9, 0.65


def secondary_structure(structure) -> dict[tuple[str, int], str]:
    """(chain, residue number) -> "H" (helix) or "E" (strand) from the file's HELIX/SHEET records
    (mmCIF struct_conf / struct_sheet_range); residues not listed are coil."""
    out: dict[tuple[str, int], str] = {}
    if structure is None:
        return out
    spans = [(h.start, h.end, "H") for h in structure.helices]
    spans += [(t.start, t.end, "E") for sh in structure.sheets for t in sh.strands]
    for start, end, kind in spans:
        chain = start.chain_name
        for n in range(start.res_id.seqid.num, end.res_id.seqid.num + 1):
            out[(chain, n)] = kind
    return out


def tube_actor(table, segs, colors, radius: float = 0.45, per_residue: int = 6, sse=None):
    """A smooth tube (spline through the trace atoms), one polyline per unbroken chain segment;
    with ``sse`` ((chain, resnum) -> "H"/"E"), helices and strands are drawn thicker."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkFiltersCore import vtkTubeFilter
    from vtkmodules.vtkFiltersGeneral import vtkSplineFilter
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

    # chain the (a, b) links into runs a0-a1-a2-...
    runs, current = [], []
    for a, b in segs:
        if current and current[-1] == a:
            current.append(b)
        else:
            if len(current) > 1:
                runs.append(current)
            current = [a, b]
    if len(current) > 1:
        runs.append(current)
    if not runs:
        return None
    pts = vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(table.xyz, np.float32), deep=True))
    lines = vtkCellArray()
    for run in runs:
        lines.InsertNextCell(len(run))
        for i in run:
            lines.InsertCellPoint(int(i))
    pd = vtkPolyData()
    pd.SetPoints(pts)
    pd.SetLines(lines)
    col = numpy_to_vtk(np.clip(np.asarray([colors[r[0]] for r in runs]) * 255, 0, 255).astype(np.uint8), deep=True)
    col.SetName("colors")
    pd.GetCellData().SetScalars(col)
    if sse:
        r = np.full(len(table), radius, np.float32)
        for i in {int(i) for run in runs for i in run}:
            kind = sse.get((table.chains[i], int(table.res_nums[i])))
            if kind == "H":
                r[i] = HELIX_RADIUS
            elif kind == "E":
                r[i] = STRAND_RADIUS
        rad = numpy_to_vtk(r, deep=True)
        rad.SetName("radius")
        pd.GetPointData().SetScalars(rad)
    spline = vtkSplineFilter()
    spline.SetInputData(pd)
    spline.SetSubdivideToLength()
    spline.SetLength(3.8 / per_residue)
    tube = vtkTubeFilter()
    tube.SetInputConnection(spline.GetOutputPort())
    tube.SetRadius(radius)
    tube.SetNumberOfSides(10)
    tube.CappingOn()
    if sse:
        tube.SetVaryRadiusToVaryRadiusByAbsoluteScalar()
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(tube.GetOutputPort())
    mapper.SetColorModeToDirectScalars()
    mapper.SetScalarModeToUseCellFieldData()
    mapper.SelectColorArray("colors")
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetSpecular(0.2)
    return actor


def _colored_by_element(table, idx, carbon):
    colors = element_colors(table.atomic_numbers)
    carbons = idx[table.atomic_numbers[idx] == 6]
    colors[carbons] = carbon
    return colors


def build_protein(table, style: str = "trace", pocket=None, sse=None, ligand_opacity: float = 1.0) -> Layer:
    """``ligand_opacity`` below 1 fades the ligands (a docked pose is then drawn over its reference)."""
    if style not in STYLES:
        style = "trace"
    polymer, ligand, other = masks(table)
    in_pocket = pocket_mask(table, pocket)
    ca, segs = trace(table)
    ccol = chain_colors(table.chains)
    actors: list = []
    standin = None
    trace_actor = None
    if len(segs):
        big = len(segs) > TUBE_LIMIT
        trace_actor = segments_actor(table.xyz, segs, ccol[segs[:, 0]], radius=None if big else 0.3,
                                     width=3.0 if big else 2.0)
    if style in ("trace", "tube"):
        tube = tube_actor(table, segs, ccol, sse=sse) if style == "tube" and len(segs) else None
        if tube is not None:
            actors.append(tube)
            standin = [trace_actor] if trace_actor is not None and len(segs) > 2000 else None
        elif trace_actor is not None:
            actors.append(trace_actor)
        elif polymer.any():  # no CA/P atoms: show what there is
            actors += atom_actors(table, np.flatnonzero(polymer), "sticks")
        pickable = np.concatenate([ca, np.flatnonzero(ligand | other | in_pocket)])
    else:
        shown = np.flatnonzero(polymer | ligand | other)
        colors = element_colors(table.atomic_numbers)
        carbon = np.flatnonzero(polymer & (table.atomic_numbers == 6))
        colors[carbon] = ccol[carbon] if len(carbon) else colors[carbon]
        if style == "spacefill":
            colors[in_pocket & (table.atomic_numbers == 6)] = POCKET_CARBON
            colors[ligand & (table.atomic_numbers == 6)] = LIGAND_CARBON
            actors.append(sphere_actor(table.xyz[shown], colors[shown], vdw_radii(table.atomic_numbers[shown])))
        else:
            actors += atom_actors(table, np.flatnonzero(polymer & ~in_pocket), "sticks", colors, bond_radius=0.1)
        pickable = shown
        if trace_actor is not None and len(shown) > 5000:
            standin = [trace_actor]
    if style != "spacefill":
        lig = np.flatnonzero(ligand)
        if len(lig):
            if ligand_opacity < 1.0:  # faded: thin see-through sticks
                lig_actors = atom_actors(table, lig, "sticks", _colored_by_element(table, lig, LIGAND_CARBON),
                                         bond_radius=0.08)[1:]
                for a in lig_actors:
                    a.GetProperty().SetOpacity(ligand_opacity)
            else:
                lig_actors = atom_actors(table, lig, "ball-and-stick",
                                         _colored_by_element(table, lig, LIGAND_CARBON))
            actors += lig_actors
        oth = np.flatnonzero(other)
        if len(oth):
            actors += atom_actors(table, oth, "ball-and-stick")
        pk = np.flatnonzero(in_pocket)
        if len(pk):
            actors += atom_actors(table, pk, "sticks", _colored_by_element(table, pk, POCKET_CARBON),
                                  bond_radius=0.17)
    if not actors and len(table):  # nothing but water (or unknown atoms): show them rather than nothing
        idx = np.arange(len(table))
        actors.append(sphere_actor(table.xyz, element_colors(table.atomic_numbers), 0.3))
        pickable = idx
    if standin is None and style == "trace" and len(table) > 5000 and trace_actor is not None:
        standin = [trace_actor]
    pickable = np.unique(pickable.astype(int))
    radii = np.maximum(0.6, vdw_radii(table.atomic_numbers[pickable]) * (1.0 if style == "spacefill" else 0.4))
    desc = f"{len(table)} atoms, {style}; ligand atoms {int(ligand.sum())}; pocket residues {len(pocket or ())}"
    return Layer(actors=actors, standin=standin, pickable=pickable, pick_radii=radii, description=desc)


def trace_table(structure):
    """A quick AtomTable of the polymer's trace atoms (CA, P) and every atom of the other residues
    but water (the engine's ``residue_class``), without bonds.

    Used for the first frame of a big structure while the full table (with bonds) is built.
    """
    from engine.structures.atoms import AtomTable
    from engine.structures.pocket import POLYMER, WATER, residue_class

    xyz, el, z, names, resn, resi, chains, het = [], [], [], [], [], [], [], []
    for ch in structure[0]:
        cname = ch.name
        for res in ch:
            rname = res.name
            kind = residue_class(rname)
            if kind == WATER:
                continue
            if kind != POLYMER:
                atoms, hetero = list(res), True
            else:
                a = res.get_ca() or res.get_p()
                if a is None:
                    continue
                atoms, hetero = (a,), False
            num = res.seqid.num
            for a in atoms:
                p = a.pos
                xyz.append((p.x, p.y, p.z))
                e = a.element
                el.append(e.name)
                z.append(e.atomic_number)
                names.append(a.name)
                resn.append(rname)
                resi.append(num)
                chains.append(cname)
                het.append(hetero)
    n = len(xyz)
    return AtomTable(np.asarray(xyz, np.float32).reshape(n, 3), el, np.asarray(z, int), names, resn,
                     np.asarray(resi, int), chains, np.asarray(het, bool), np.zeros((0, 2), int),
                     np.zeros(0, float), None)
