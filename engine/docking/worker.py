"""One ligand, docked in a worker process: the function every executor runs.

``dock_one(target, settings, job)`` is a plain top-level function of picklable arguments, so that a
local process pool and a Dask cluster run the very same code. Each worker process keeps the Vina
object of the last receptor and box it saw, with its maps: the maps are computed once per worker
for a run, not once per ligand (2–3 s each for a 22 Å box here).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from engine.docking.box import Box
from engine.docking.errors import LigandError


@dataclass(frozen=True)
class Settings:
    exhaustiveness: int = 8
    n_poses: int = 5
    seed: int = 0
    cpu: int = 1  # Vina threads per ligand (1: one ligand per core, the pool spreads the ligands)
    checks: bool = True  # PoseBusters on every pose
    interactions: bool = True  # ProLIF on every pose

    def check(self) -> "Settings":
        from engine.docking.errors import DockingError

        if not 1 <= int(self.exhaustiveness) <= 64:
            raise DockingError(f"exhaustiveness must be between 1 and 64, not {self.exhaustiveness}")
        if not 1 <= int(self.n_poses) <= 20:
            raise DockingError(f"poses must be between 1 and 20, not {self.n_poses}")
        if not 0 <= int(self.seed) < 2**31:
            raise DockingError(f"the seed must be between 0 and 2^31-1, not {self.seed}")
        return self

    def to_dict(self) -> dict:
        return {"exhaustiveness": int(self.exhaustiveness), "n_poses": int(self.n_poses), "seed": int(self.seed),
                "cpu_per_ligand": int(self.cpu)}


@dataclass(frozen=True)
class Target:
    """What every worker needs about the receptor: small enough to send with each ligand."""

    key: str  # Receptor.key
    pdbqt: str
    box: Box
    pocket: object = field(default=None, repr=False)  # RDKit Mol: protein atoms near the box, with H
    reference_molblock: str | None = None


@dataclass(frozen=True)
class LigandJob:
    index: int
    smiles: str
    name: str | None = None


_VINA: "OrderedDict[tuple, object]" = OrderedDict()
_FILES: list[str] = []


def _vina_for(target: Target, settings: Settings):
    """This process's Vina with the target's maps, computed on first use."""
    key = (target.key, target.box.center, target.box.size, settings.seed, settings.cpu)
    v = _VINA.get(key)
    if v is not None:
        _VINA.move_to_end(key)
        return v
    from vina import Vina

    fd, path = tempfile.mkstemp(prefix="logos-receptor-", suffix=".pdbqt")
    with os.fdopen(fd, "w") as f:
        f.write(target.pdbqt)
    _FILES.append(path)
    v = Vina(sf_name="vina", cpu=int(settings.cpu), seed=int(settings.seed), verbosity=0)
    v.set_receptor(path)
    v.compute_vina_maps(center=list(target.box.center), box_size=list(target.box.size))
    _VINA[key] = v
    while len(_VINA) > 2:
        _VINA.popitem(last=False)
    return v


def _poses_to_mols(pdbqt_out: str):
    from meeko import PDBQTMolecule, RDKitMolCreate
    from rdkit import Chem

    pm = PDBQTMolecule(pdbqt_out, is_dlg=False, skip_typing=True)
    mols = [m for m in RDKitMolCreate.from_pdbqt_mol(pm) if m is not None]
    if not mols:
        raise LigandError("Meeko could not rebuild the docked poses as molecules")
    mol = mols[0]
    out = []
    for conf in mol.GetConformers():
        one = Chem.Mol(mol)
        one.RemoveAllConformers()
        one.AddConformer(Chem.Conformer(conf), assignId=True)
        out.append(one)
    return out


def dock_one(target: Target, settings: Settings, job: LigandJob) -> dict:
    """Dock one ligand; a LigandError says why it cannot be docked. Returns the result row."""
    from rdkit import Chem

    from engine.docking import analysis
    from engine.docking.ligand import prepare_ligand

    t0 = time.perf_counter()
    with analysis.quiet():
        pdbqt, molh = prepare_ligand(job.smiles, settings.seed)
        v = _vina_for(target, settings)
        t1 = time.perf_counter()
        try:
            v.set_ligand_from_string(pdbqt)
            v.dock(exhaustiveness=int(settings.exhaustiveness), n_poses=int(settings.n_poses))
        except Exception as exc:  # noqa: BLE001 - Vina's reason, for this ligand
            raise LigandError(f"{job.smiles}: Vina could not dock it ({' '.join(str(exc).split())[:200]})") \
                from None
        energies = v.energies(n_poses=int(settings.n_poses))
        out_text = v.poses(n_poses=int(settings.n_poses))
        t2 = time.perf_counter()
        mols = _poses_to_mols(out_text)
    n = min(len(mols), len(energies))
    mols = mols[:n]
    reference = None
    if target.reference_molblock:
        reference = Chem.MolFromMolBlock(target.reference_molblock, removeHs=False)
    poses = []
    for k in range(n):
        poses.append({"rank": k + 1, "score": round(float(energies[k][0]), 3),
                      "inter": round(float(energies[k][1]), 3), "intra": round(float(energies[k][2]), 3),
                      "rmsd": analysis.rmsd(mols[k], reference),
                      "molblock": Chem.MolToMolBlock(mols[k])})
    if settings.checks and target.pocket is not None:
        for p, c in zip(poses, analysis.checks(mols, target.pocket)):
            p["checks"] = c
    if settings.interactions and target.pocket is not None:
        try:
            found = analysis.interactions(mols, target.pocket)
        except Exception as exc:  # noqa: BLE001 - say why, keep the pose
            found = [[] for _ in mols]
            for p in poses:
                p["interactions_error"] = " ".join(str(exc).split())[:200]
        for p, f in zip(poses, found):
            p["interactions"] = f
    best = poses[0] if poses else {}
    prepared = Chem.MolToSmiles(Chem.RemoveHs(molh))
    return {
        "index": job.index, "smiles": job.smiles, "name": job.name, "docked_smiles": prepared,
        "score": best.get("score"), "rmsd": best.get("rmsd"),
        "checks": best.get("checks"), "interactions": best.get("interactions"),
        "poses": poses,
        "seconds": {"prepare": round(t1 - t0, 3), "dock": round(t2 - t1, 3),
                    "analyse": round(time.perf_counter() - t2, 3)},
        "worker": os.getpid(),
    }


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that started it ends (prctl
    PR_SET_PDEATHSIG), so no worker goes on docking for a run that is over, whichever way it
    ended. The kernel watches the thread that started the worker: pools are used from the thread
    that made them (``dock_ligands`` makes its own). Elsewhere the pool's own kill on cancel is all
    there is."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)


def init_worker() -> None:
    """Worker start: Ctrl+C belongs to the parent (it cancels the run); one thread for BLAS."""
    import signal
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
