"""Errors of the docking package: each message names what was given and says why."""

from __future__ import annotations


class DockingError(ValueError):
    """Bad receptor, box or settings: the whole docking run cannot start."""


class LigandError(ValueError):
    """One ligand cannot be docked (unreadable, not embeddable, atoms Vina cannot type).

    The other ligands of the run go on."""
