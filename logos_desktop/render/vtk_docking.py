"""A docked pose's extras in the 3D view: the protein–ligand interactions as dashed lines labelled
by residue, and the reference ligand faded (when the protein shown does not carry it).

The interactions are the engine's (ProLIF, ``engine.docking.analysis``): each has a ``type``, the
``residue``, a ``distance`` and the two points a line joins (``ligand_xyz``, ``protein_xyz``). Only
the colours are chosen here.
"""

from __future__ import annotations

import numpy as np

from logos_desktop.render.vtk_common import LIGAND_CARBON, label_actor, segments_actor

DASH, GAP = 0.22, 0.16  # Å
LINE_RADIUS = 0.075

# interaction type (ProLIF class) -> colour of its dashed line and label
COLOURS = {
    "HBDonor": (0.35, 0.78, 1.0), "HBAcceptor": (0.35, 0.78, 1.0),
    "Cationic": (1.0, 0.35, 0.65), "Anionic": (1.0, 0.35, 0.65),
    "PiStacking": (1.0, 0.88, 0.25), "CationPi": (0.78, 0.5, 1.0), "PiCation": (0.78, 0.5, 1.0),
    "Hydrophobic": (0.72, 0.72, 0.72), "XBDonor": (0.4, 1.0, 0.8), "MetalDonor": (0.55, 0.6, 1.0),
}
OTHER = (0.9, 0.9, 0.9)
# short words for the legend (the engine's labels are longer sentences)
SHORT = {"HBDonor": "H-bond", "HBAcceptor": "H-bond", "Cationic": "salt bridge", "Anionic": "salt bridge",
         "PiStacking": "π-stacking", "CationPi": "cation–π", "PiCation": "cation–π",
         "Hydrophobic": "hydrophobic", "XBDonor": "halogen bond", "MetalDonor": "metal"}


def colour_of(kind: str) -> tuple[float, float, float]:
    return COLOURS.get(kind, OTHER)


def drawable(interactions) -> list[dict]:
    """The interactions that have both end points."""
    out = []
    for it in interactions or []:
        a, b = it.get("ligand_xyz"), it.get("protein_xyz")
        if a is None or b is None or len(a) != 3 or len(b) != 3:
            continue
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            continue
        out.append(it)
    return out


def dashes(a, b, dash: float = DASH, gap: float = GAP) -> np.ndarray:
    """(k, 2, 3) start and end points of the dashes of a dashed line from ``a`` to ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    length = float(np.linalg.norm(b - a))
    if length < 1e-6:
        return np.zeros((0, 2, 3))
    u = (b - a) / length
    starts = np.arange(0.0, length, dash + gap)
    ends = np.minimum(starts + dash, length)
    return np.stack([a + np.outer(starts, u), a + np.outer(ends, u)], axis=1)


def interaction_actors(interactions, labels: bool = True) -> tuple[list, list[dict]]:
    """Actors for the dashed lines (one actor for all lines) and their residue labels; returns
    (actors, the interactions drawn, in the order of their lines)."""
    drawn = drawable(interactions)
    if not drawn:
        return [], []
    pts, segs, cols = [], [], []
    for it in drawn:
        d = dashes(it["ligand_xyz"], it["protein_xyz"])
        base = len(pts) * 2
        for k, (p, q) in enumerate(d):
            segs.append((base + 2 * k, base + 2 * k + 1))
        pts.extend(d)
        cols += [colour_of(it.get("type", ""))] * len(d)
    points = np.asarray(pts, np.float32).reshape(-1, 3)
    actor = segments_actor(points, np.asarray(segs), np.asarray(cols), radius=LINE_RADIUS)
    actor.GetProperty().SetAmbient(0.6)
    actor.GetProperty().SetDiffuse(0.5)
    actors = [actor]
    if labels:
        actors += label_actors(drawn)
    return actors, drawn


def label_text(it: dict) -> str:
    res = str(it.get("residue") or "")
    if ":" in res:  # "B:ASP30" -> "ASP30 B" reads as a chemist writes it
        chain, name = res.split(":", 1)
        res = f"{name} {chain}"
    dist = it.get("distance")
    return f"{res} {float(dist):.1f} Å" if isinstance(dist, (int, float)) and np.isfinite(dist) else res


def label_actors(drawn: list[dict]) -> list:
    """One 2D label per interaction, at the protein end of its line, coloured like it; a residue
    with several interactions of the same colour is labelled once."""
    groups: dict[tuple, list] = {}
    seen = set()
    for it in drawn:
        colour = colour_of(it.get("type", ""))
        key = (it.get("residue"), colour)
        if key in seen:
            continue
        seen.add(key)
        a, b = np.asarray(it["ligand_xyz"], float), np.asarray(it["protein_xyz"], float)
        groups.setdefault(colour, []).append((a + 0.8 * (b - a), label_text(it)))
    actors = []
    for colour, items in groups.items():
        actors.append(label_actor([x for x, _ in items], [t for _, t in items], size=14, colour=colour,
                                  bold=True, background=0.65))
    return actors


def open_direction(centre, obstacles, current=None, corridor: float = 4.0, reach: float = 30.0) -> np.ndarray:
    """The unit vector from ``centre`` along which the fewest ``obstacles`` (protein atoms) stand
    in the line of sight: the side from which to look into a pocket. Ties go to the direction
    nearest ``current``."""
    centre = np.asarray(centre, float)
    pts = np.asarray(obstacles, float).reshape(-1, 3) - centre
    pts = pts[np.linalg.norm(pts, axis=1) < reach]
    n = 96
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5 ** 0.5) * k
    dirs = np.column_stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)])
    if not len(pts):
        return np.asarray(current, float) if current is not None else dirs[0]
    t = pts @ dirs.T  # (atoms, directions): distance along each direction
    perp2 = (pts ** 2).sum(axis=1)[:, None] - t ** 2
    blocked = ((t > 2.0) & (perp2 < corridor ** 2)).sum(axis=0).astype(float)
    if current is not None:
        c = np.asarray(current, float)
        c = c / (np.linalg.norm(c) or 1.0)
        blocked += 0.5 * (1 - dirs @ c)  # a tie-break, worth less than one atom
    return dirs[int(np.argmin(blocked))]


def faded_molecule_actors(mol, opacity: float = 0.35) -> list:
    """A molecule (RDKit, with coordinates) as thin see-through sticks with green carbons (the
    reference ligand drawn as the protein view draws its own ligand when faded)."""
    from engine.structures.atoms import atom_table
    from engine.structures.model import LoadedObject
    from logos_desktop.render.vtk_common import element_colors
    from logos_desktop.render.vtk_molecule import atom_actors

    table = atom_table(LoadedObject(kind="molecule", name="reference", source=None, fmt="sdf", mol=mol))
    colors = element_colors(table.atomic_numbers)
    colors[table.atomic_numbers == 6] = LIGAND_CARBON
    actors = atom_actors(table, np.arange(len(table)), "sticks", colors, bond_radius=0.08)
    actors = actors[1:] if len(actors) > 1 else actors
    for a in actors:
        a.GetProperty().SetOpacity(opacity)
    return actors
