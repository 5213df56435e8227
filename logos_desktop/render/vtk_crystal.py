"""Crystals and frameworks: atoms and bonds in the cell, and the unit cell outline."""

from __future__ import annotations

import numpy as np

from logos_desktop.render.vtk_common import Layer, element_colors, segments_actor, sphere_actor
from logos_desktop.render.vtk_molecule import atom_actors, atom_radii

STYLES = ("ball-and-stick", "sticks", "spacefill")
CELL_COLOR = (0.85, 0.85, 0.85)

_CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                   if np.abs(_CORNERS[a] - _CORNERS[b]).sum() == 1], int)


def cell_outline(cell) -> tuple[np.ndarray, np.ndarray]:
    """(8 corner points, 12 edges) of the parallelepiped spanned by the rows of ``cell``."""
    corners = _CORNERS @ np.asarray(cell, float)
    return corners, _EDGES


def boundary_images(table, tol: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Periodic images of atoms that sit on a cell face, edge or corner (as VESTA draws them).

    Returns (atom index of each image, image positions)."""
    if table.cell is None or not len(table):
        return np.zeros(0, int), np.zeros((0, 3))
    cell = np.asarray(table.cell, float)
    frac = np.asarray(table.xyz, float) @ np.linalg.inv(cell)
    frac -= np.floor(frac + tol)  # wrap into [-tol, 1 - tol)
    idx, pos = [], []
    for shift in _CORNERS[1:]:  # the 7 non-zero combinations of +1 along a, b, c
        on_face = np.all((shift == 0) | (np.abs(frac) < tol), axis=1)
        for i in np.flatnonzero(on_face):
            idx.append(i)
            pos.append((frac[i] + shift) @ cell)
    return np.asarray(idx, int), np.asarray(pos, float).reshape(-1, 3)


def periodic_stubs(table, tol: float = 0.45, limit: int = 20000):
    """Half-bonds that cross the cell boundary (display only): (atom index, stub end point).

    The table's bonds lie inside the cell; a framework's linkers also bond across it. For each
    atom, a neighbour in an adjacent cell image closer than the sum of covalent radii + ``tol``
    gets a half-bond from the atom to the midpoint, so linkers do not look cut at the faces.
    """
    from scipy.spatial import cKDTree

    from logos_desktop.render.vtk_common import covalent_radii

    n = len(table)
    if table.cell is None or n == 0 or n > limit:
        return np.zeros(0, int), np.zeros((0, 3))
    cell = np.asarray(table.cell, float)
    xyz = np.asarray(table.xyz, float)
    rad = covalent_radii(table.atomic_numbers)
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)
                       if (i, j, k) != (0, 0, 0)], float) @ cell
    images = (xyz[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    owner = np.tile(np.arange(n), len(shifts))
    tree = cKDTree(images)
    hits = tree.query_ball_point(xyz, r=2 * rad.max() + tol)
    idx, ends = [], []
    for i, js in enumerate(hits):
        for j in js:
            d = np.linalg.norm(images[j] - xyz[i])
            h = table.elements[i] == "H" and table.elements[owner[j]] == "H"
            if 0.4 < d < rad[i] + rad[owner[j]] + tol and not h:
                idx.append(i)
                ends.append(0.5 * (xyz[i] + images[j]))
    return np.asarray(idx, int), np.asarray(ends, float).reshape(-1, 3)


def build_crystal(table, style: str = "ball-and-stick") -> Layer:
    if style not in STYLES:
        style = "ball-and-stick"
    idx = np.arange(len(table))
    actors = atom_actors(table, idx, style)
    if style != "spacefill":
        stub_idx, stub_end = periodic_stubs(table)
        if len(stub_idx):
            pts = np.vstack([table.xyz, stub_end])
            segs = np.column_stack([stub_idx, len(table) + np.arange(len(stub_idx))])
            colors = element_colors(table.atomic_numbers)[stub_idx]
            actors.append(segments_actor(pts, segs, colors, radius=0.15 if style == "sticks" else 0.11, width=3.0))
    img_idx, img_pos = boundary_images(table)
    if len(img_idx):
        actors.append(sphere_actor(img_pos, element_colors(table.atomic_numbers)[img_idx],
                                   atom_radii(table, style)[img_idx]))
    if table.cell is not None:
        corners, edges = cell_outline(table.cell)
        actors.append(segments_actor(corners, edges, np.tile(CELL_COLOR, (len(edges), 1)), width=2.0))
    return Layer(actors=actors, pickable=idx, pick_radii=np.maximum(atom_radii(table, style), 0.5),
                 description=f"{len(table)} sites, {style}")
