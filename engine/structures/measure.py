"""Geometry of picked atoms: distance, angle, dihedral (Å and degrees)."""

from __future__ import annotations

import numpy as np


def distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(b, float) - np.asarray(a, float)))


def angle(a, b, c) -> float:
    """Angle a-b-c in degrees."""
    u = np.asarray(a, float) - np.asarray(b, float)
    v = np.asarray(c, float) - np.asarray(b, float)
    cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def dihedral(a, b, c, d) -> float:
    """Dihedral a-b-c-d in degrees, (-180, 180] (IUPAC sign convention)."""
    p = [np.asarray(x, float) for x in (a, b, c, d)]
    b0, b1, b2 = p[0] - p[1], p[2] - p[1], p[3] - p[2]
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    x = np.dot(v, w)
    y = np.dot(np.cross(b1n, v), w)
    return float(np.degrees(np.arctan2(y, x)))


def measure(points) -> tuple[str, float] | None:
    """The measurement for 2, 3 or 4 picked positions: ("distance"|"angle"|"dihedral", value)."""
    n = len(points)
    if n == 2:
        return "distance", distance(*points)
    if n == 3:
        return "angle", angle(*points)
    if n == 4:
        return "dihedral", dihedral(*points)
    return None
