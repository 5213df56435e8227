"""Docking: judge candidates against the target with AutoDock Vina, in worker processes.

    receptor = prepare_receptor("complex.pdb", ligand="MK1")        # Meeko; removed residues listed
    box = receptor.box_from_reference()                              # ligand extent + 5 Å a side
    target = make_target(receptor, box)
    for event in dock_ligands(target, Settings(exhaustiveness=8, seed=1), jobs, cpus=2): ...

Each result carries the Vina score of every pose (kcal/mol), the pose as a molblock in the
receptor's frame, the RMSD to the reference ligand (symmetry-aware, RDKit), PoseBusters' checks and
ProLIF's interactions. Nothing here is a scoring function or a PDBQT writer of our own: Vina scores,
Meeko prepares and writes, PoseBusters checks, ProLIF finds interactions.
"""

from __future__ import annotations

from engine.docking.box import DEFAULT_PADDING, MAX_SIDE, Box, box_around, check_box
from engine.docking.errors import DockingError, LigandError
from engine.docking.pool import dock_ligands, local_executor, usable_cpus
from engine.docking.receptor import Receptor, ReferenceLigand, prepare_receptor
from engine.docking.worker import LigandJob, Settings, Target, dock_one

LIBRARIES = ("vina", "meeko", "molscrub", "posebusters", "prolif", "rdkit", "gemmi")


def library_versions() -> dict:
    """Versions of the libraries that made a docking result (for provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def make_target(receptor: Receptor, box: Box, *, analyse: bool = True) -> Target:
    """What the workers need: the receptor's PDBQT, the box, the pocket's atoms for the checks
    and interactions, the reference pose for RMSDs."""
    check_box(box)
    pocket = receptor.pocket_mol(box) if analyse else None
    ref = receptor.reference.molblock if receptor.reference is not None else None
    return Target(receptor.key, receptor.pdbqt, box, pocket, ref)


def paper_metric(scores) -> float | None:
    """The LOGOS paper's ligand-design figure: mean −Vina over the docked samples (higher is better)."""
    vals = [float(s) for s in scores if s is not None]
    return round(-sum(vals) / len(vals), 3) if vals else None


__all__ = [
    "Box", "DEFAULT_PADDING", "DockingError", "LigandError", "LigandJob", "MAX_SIDE", "Receptor",
    "ReferenceLigand", "Settings", "Target", "box_around", "check_box", "dock_ligands", "dock_one",
    "library_versions", "local_executor", "make_target", "paper_metric", "prepare_receptor", "usable_cpus",
]
