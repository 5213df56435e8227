"""What a pose carries besides its score: RMSD to the reference ligand (RDKit, symmetry-aware),
PoseBusters' plausibility checks against the protein, and ProLIF's protein–ligand interactions."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

# ProLIF interaction classes reported, and the words a chemist reads for them
INTERACTIONS = {
    "HBDonor": "hydrogen bond (ligand donor)",
    "HBAcceptor": "hydrogen bond (ligand acceptor)",
    "Cationic": "salt bridge (ligand cation)",
    "Anionic": "salt bridge (ligand anion)",
    "PiStacking": "π-stacking",
    "CationPi": "cation–π (ligand cation)",
    "PiCation": "cation–π (ligand ring)",
    "Hydrophobic": "hydrophobic contact",
    "XBDonor": "halogen bond",
    "MetalDonor": "metal coordination",
}

# PoseBusters' checks (config "dock") and what a failure means, for the badge
CHECK_WORDS = {
    "mol_pred_loaded": "the pose could not be loaded",
    "mol_cond_loaded": "the protein could not be loaded",
    "sanitization": "the pose fails RDKit sanitisation",
    "inchi_convertible": "no InChI for the pose",
    "all_atoms_connected": "the pose is in pieces",
    "no_radicals": "the pose has radicals",
    "bond_lengths": "bond lengths out of range",
    "bond_angles": "bond angles out of range",
    "internal_steric_clash": "atoms of the ligand clash with each other",
    "aromatic_ring_flatness": "an aromatic ring is not flat",
    "non-aromatic_ring_non-flatness": "a saturated ring is flat",
    "double_bond_flatness": "a double bond is not planar",
    "internal_energy": "internal energy too high (strained pose)",
    "protein-ligand_maximum_distance": "the ligand is far from the protein",
    "minimum_distance_to_protein": "clash with the protein",
    "minimum_distance_to_organic_cofactors": "clash with a cofactor",
    "minimum_distance_to_inorganic_cofactors": "clash with an ion",
    "minimum_distance_to_waters": "clash with a water",
    "volume_overlap_with_protein": "overlaps the protein's volume",
    "volume_overlap_with_organic_cofactors": "overlaps a cofactor",
    "volume_overlap_with_inorganic_cofactors": "overlaps an ion",
    "volume_overlap_with_waters": "overlaps a water",
}


@contextmanager
def quiet():
    from rdkit import RDLogger

    prev = logging.root.manager.disable
    logging.disable(logging.WARNING)
    RDLogger.DisableLog("rdApp.*")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(prev)
        RDLogger.EnableLog("rdApp.*")


def _import_quietly():
    """MDAnalysis (under ProLIF and PoseBusters) puts its own "once" filter for its deprecation
    warnings in front of ours when it is imported: import it, then silence it again."""
    import MDAnalysis  # noqa: F401

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import posebusters  # noqa: F401
    import prolif  # noqa: F401


def _graph_only(mol):
    """The heavy-atom graph with every bond single and no charges: the same molecule before and
    after protonation compares equal."""
    from rdkit import Chem

    rw = Chem.RWMol(Chem.RemoveHs(mol, sanitize=False))
    for a in rw.GetAtoms():
        a.SetFormalCharge(0)
        a.SetIsAromatic(False)
        a.SetNoImplicit(True)
        a.SetNumExplicitHs(0)
    for b in rw.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
        b.SetIsAromatic(False)
    m = rw.GetMol()
    m.UpdatePropertyCache(strict=False)
    return m


def rmsd(pose, reference) -> float | None:
    """Symmetry-aware heavy-atom RMSD in place (no alignment), or None when the pose is another
    molecule than the reference."""
    from rdkit import Chem
    from rdkit.Chem import rdMolAlign

    if reference is None:
        return None
    with quiet():
        try:
            p = Chem.RemoveHs(pose)
            r = Chem.RemoveHs(reference)
        except Exception:  # noqa: BLE001
            return None
        if p.GetNumAtoms() != r.GetNumAtoms():
            return None
        for a, b in ((p, r), (_graph_only(p), _graph_only(r))):
            try:
                return round(float(rdMolAlign.CalcRMS(a, b)), 3)
            except Exception:  # noqa: BLE001 - no match: try the bare graph, then give up
                continue
    return None


_BUSTER = None


NEAR = 8.0  # Å: protein residues this close to a pose are what its checks look at


def near_residues(pocket, pose, cutoff: float = NEAR):
    """The pocket cut to the residues with an atom within ``cutoff`` Å of the pose (whole residues,
    bonds and hydrogens kept). PoseBusters' distance and volume checks only see atoms this close,
    and its own atom filtering costs time in proportion to the protein's size."""
    import numpy as np
    from rdkit import Chem

    ppos = pocket.GetConformer().GetPositions()
    lpos = pose.GetConformer().GetPositions()
    lo, hi = lpos.min(0) - cutoff, lpos.max(0) + cutoff
    cand = np.nonzero(np.all((ppos >= lo) & (ppos <= hi), axis=1))[0]
    if len(cand):
        d2 = ((ppos[cand, None, :] - lpos[None, :, :]) ** 2).sum(-1).min(1)
        cand = cand[d2 <= cutoff * cutoff]

    def res_key(atom):
        info = atom.GetPDBResidueInfo()
        return (info.GetChainId(), info.GetResidueNumber(), info.GetInsertionCode()) if info else None

    keep_res = {res_key(pocket.GetAtomWithIdx(int(i))) for i in cand}
    drop = [a.GetIdx() for a in pocket.GetAtoms() if res_key(a) not in keep_res]
    rw = Chem.RWMol(pocket)
    rw.BeginBatchEdit()
    for i in drop:
        rw.RemoveAtom(i)
    rw.CommitBatchEdit()
    return rw.GetMol()


def checks(poses: list, pocket) -> list[dict]:
    """PoseBusters (config "dock") for each pose against the protein residues near it:
    ``{"passed": bool, "failures": [{"check", "reason"}], "n_checks": int}``."""
    global _BUSTER
    import numpy as np
    import pandas as pd

    if not poses:
        return []
    with quiet():
        try:
            if _BUSTER is None:
                _import_quietly()
                from posebusters import PoseBusters

                _BUSTER = PoseBusters(config="dock")
            frames = [_BUSTER.bust(mol_pred=[p], mol_cond=near_residues(pocket, p), full_report=False)
                      for p in poses]
            df = pd.concat(frames)
        except Exception as exc:  # noqa: BLE001 - the checks could not run: say so, per pose
            why = " ".join(str(exc).split())[:200]
            return [{"passed": None, "failures": [{"check": "posebusters", "reason": f"could not run: {why}"}],
                     "n_checks": 0} for _ in poses]
    out = []
    for _, row in df.iterrows():
        values = {k: v for k, v in row.items() if isinstance(v, (bool, np.bool_))}
        fails = [{"check": k, "reason": CHECK_WORDS.get(k, k.replace("_", " "))}
                 for k, v in values.items() if not bool(v)]
        out.append({"passed": not fails, "failures": fails, "n_checks": len(values)})
    return out


def interactions(poses: list, pocket) -> list[list[dict]]:
    """ProLIF's interactions for each pose: ``{"type", "label", "residue", "distance",
    "ligand_xyz", "protein_xyz"}`` (the points a dashed line joins: centroids of the atoms involved)."""
    if not poses:
        return []
    with quiet():
        _import_quietly()
        import prolif as plf

        prot = plf.Molecule(pocket)
        fp = plf.Fingerprint(list(INTERACTIONS))
        ligs = [plf.Molecule.from_rdkit(p) for p in poses]
        fp.run_from_iterable(ligs, prot, progress=False, n_jobs=1)
    ppos = pocket.GetConformer().GetPositions()
    out = []
    for frame, pose in enumerate(poses):
        lpos = pose.GetConformer().GetPositions()
        found = []
        for (_lres, pres), kinds in fp.ifp.get(frame, {}).items():
            residue = f"{pres.chain}:{pres.name}{pres.number}" if pres.chain else f"{pres.name}{pres.number}"
            for kind, metas in kinds.items():
                for meta in metas:
                    idx = meta.get("parent_indices", {})
                    li, pi = list(idx.get("ligand", ())), list(idx.get("protein", ()))
                    found.append({
                        "type": kind, "label": INTERACTIONS.get(kind, kind), "residue": residue,
                        "distance": round(float(meta.get("distance", float("nan"))), 2),
                        "ligand_xyz": [round(float(x), 3) for x in lpos[li].mean(0)] if li else None,
                        "protein_xyz": [round(float(x), 3) for x in ppos[pi].mean(0)] if pi else None,
                    })
        found.sort(key=lambda d: (d["type"] == "Hydrophobic", d["residue"], d["distance"]))
        out.append(found)
    return out
