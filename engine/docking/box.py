"""The search box: from the reference ligand's extent plus padding, or from pocket residues.

Facts measured here (shared/DOCKING.md): a box of the ligand's extent + 5 Å each side (at least
18 Å a side) redocked kinase ligands to < 1 Å, a fixed 22 Å cube let them settle in a neighbouring
groove. A side over 40 Å is refused: Vina's search is not meant for whole-protein boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.docking.errors import DockingError

DEFAULT_PADDING = 5.0  # Å each side
MIN_SIDE = 18.0  # Å: room for a small ligand to turn
MAX_SIDE = 40.0  # Å


@dataclass(frozen=True)
class Box:
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    source: str = ""  # "ligand MK1 A:902 + 5.0 Å" / "residues A:25,A:27 + 0.0 Å"

    def to_dict(self) -> dict:
        return {"center": [round(float(x), 3) for x in self.center],
                "size": [round(float(x), 3) for x in self.size], "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "Box":
        return cls(tuple(float(x) for x in d["center"]), tuple(float(x) for x in d["size"]), d.get("source", ""))

    def contains(self, xyz) -> np.ndarray:
        xyz = np.asarray(xyz, float).reshape(-1, 3)
        c, h = np.asarray(self.center), np.asarray(self.size) / 2
        return np.all(np.abs(xyz - c) <= h + 1e-6, axis=1)


def box_around(xyz, padding: float = DEFAULT_PADDING, min_side: float = MIN_SIDE,
               max_side: float = MAX_SIDE, source: str = "") -> Box:
    """The axis-aligned box around points, ``padding`` Å each side, sides at least ``min_side``."""
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    if len(xyz) == 0:
        raise DockingError(f"{source or 'the box'}: no atoms to put a box around")
    if not np.all(np.isfinite(xyz)):
        raise DockingError(f"{source or 'the box'}: coordinates are not finite")
    if padding < 0 or padding > 20:
        raise DockingError(f"box padding must be between 0 and 20 Å, not {padding}")
    lo, hi = xyz.min(0), xyz.max(0)
    size = np.maximum(hi - lo + 2 * padding, min_side)
    if np.any(size > max_side):
        raise DockingError(
            f"{source or 'the box'}: the box would be {size[0]:.1f} × {size[1]:.1f} × {size[2]:.1f} Å; "
            f"a side over {max_side:.0f} Å is too large for a docking search (choose fewer or closer "
            "pocket residues, or a smaller padding)")
    center = (lo + hi) / 2
    label = f"{source} + {padding:g} Å" if source else f"+ {padding:g} Å"
    return Box(tuple(float(x) for x in center), tuple(float(x) for x in size), label)


def check_box(box: Box) -> Box:
    """A box given by hand (centre and size): finite, positive, at most MAX_SIDE a side."""
    c, s = np.asarray(box.center, float), np.asarray(box.size, float)
    if c.shape != (3,) or s.shape != (3,) or not (np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
        raise DockingError("the box needs a finite centre and size of three numbers each")
    if np.any(s <= 0):
        raise DockingError(f"box sides must be positive, not {s.tolist()}")
    if np.any(s > MAX_SIDE):
        raise DockingError(f"the box is {s[0]:.1f} × {s[1]:.1f} × {s[2]:.1f} Å; a side over {MAX_SIDE:.0f} Å "
                           "is too large for a docking search")
    return box
