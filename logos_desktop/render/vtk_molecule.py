"""Small molecules: ball-and-stick, sticks, or space-filling (impostor spheres), element colours."""

from __future__ import annotations

import numpy as np

from logos_desktop.render.vtk_common import (
    Layer, element_colors, half_bonds, segments_actor, sphere_actor, vdw_radii,
)

STYLES = ("ball-and-stick", "sticks", "spacefill")
STICK_RADIUS = 0.15


def atom_radii(table, style: str) -> np.ndarray:
    z = table.atomic_numbers
    if style == "spacefill":
        return vdw_radii(z)
    if style == "sticks":
        return np.full(len(table), STICK_RADIUS)
    return np.clip(0.25 * vdw_radii(z), 0.18, 0.6)


def atom_actors(table, idx, style: str, colors=None, bond_radius: float | None = None) -> list:
    """Actors for the atoms ``idx`` of ``table`` and the bonds between them."""
    idx = np.asarray(idx, int)
    if len(idx) == 0:
        return []
    colors = element_colors(table.atomic_numbers) if colors is None else np.asarray(colors, float)
    radii = atom_radii(table, style)
    actors = [sphere_actor(table.xyz[idx], colors[idx], radii[idx])]
    if style != "spacefill" and len(table.bonds):
        inside = np.zeros(len(table), bool)
        inside[idx] = True
        b = table.bonds[inside[table.bonds[:, 0]] & inside[table.bonds[:, 1]]]
        if len(b):
            pts, segs, cols = half_bonds(table.xyz, b, colors)
            r = bond_radius if bond_radius is not None else (STICK_RADIUS if style == "sticks" else 0.11)
            actors.append(segments_actor(pts, segs, cols, radius=r, width=3.0))
    return actors


def build_molecule(table, style: str = "ball-and-stick") -> Layer:
    if style not in STYLES:
        style = "ball-and-stick"
    idx = np.arange(len(table))
    layer = Layer(actors=atom_actors(table, idx, style), pickable=idx,
                  pick_radii=np.maximum(atom_radii(table, style), 0.5),
                  description=f"{len(table)} atoms, {style}")
    if len(table) > 20000 and style != "spacefill":  # a huge 'molecule': points while dragging
        layer.standin = [sphere_actor(table.xyz, element_colors(table.atomic_numbers), 0.3)]
    return layer


__all__ = ["STYLES", "build_molecule", "atom_actors", "atom_radii"]
