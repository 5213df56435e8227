"""Crystals and frameworks: atoms and bonds in the cell, and the unit cell outline."""

from __future__ import annotations

import numpy as np

from logos_desktop.render.vtk_common import Layer, segments_actor
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


def build_crystal(table, style: str = "ball-and-stick") -> Layer:
    if style not in STYLES:
        style = "ball-and-stick"
    idx = np.arange(len(table))
    actors = atom_actors(table, idx, style)
    if table.cell is not None:
        corners, edges = cell_outline(table.cell)
        actors.append(segments_actor(corners, edges, np.tile(CELL_COLOR, (len(edges), 1)), width=2.0))
    return Layer(actors=actors, pickable=idx, pick_radii=np.maximum(atom_radii(table, style), 0.5),
                 description=f"{len(table)} sites, {style}")
