"""Ligands for docking: SMILES (or a molecule) → protonated at pH 7.4 → 3D → Meeko PDBQT.

Protonation is molscrub's acid/base rules at pH 7.4 (the Forli lab's companion of Meeko; tautomers
are left as written, stereochemistry is kept); 3D coordinates are RDKit's ETKDG with the run's seed;
the PDBQT is Meeko's writer's. Every failure is a LigandError naming the ligand and the reason.
"""

from __future__ import annotations

from engine.docking.errors import LigandError

# AutoDock Vina's atom types cover these elements (its XS types); anything else cannot be scored.
VINA_ELEMENTS = frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I", "Si"})
PH = 7.4


def _name(smiles: str) -> str:
    return smiles if len(smiles) <= 80 else smiles[:77] + "…"


def read_smiles(smiles: str):
    from rdkit import Chem, RDLogger

    if not isinstance(smiles, str) or not smiles.strip():
        raise LigandError("empty SMILES")
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles.strip())
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise LigandError(f"{_name(smiles)}: RDKit cannot read this SMILES")
    return mol


def check_elements(mol, label: str) -> None:
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetSymbol() not in VINA_ELEMENTS})
    if bad:
        raise LigandError(f"{label}: atoms Vina cannot type: {', '.join(bad)} "
                          f"(Vina scores {', '.join(sorted(VINA_ELEMENTS - {'H'}))})")


def protonate(mol, seed: int, label: str):
    """The molecule at pH 7.4 with hydrogens and one seeded 3D conformer (largest fragment)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    frags = Chem.GetMolFrags(mol, asMols=True)
    if len(frags) > 1:
        mol = max(frags, key=lambda m: m.GetNumHeavyAtoms())
    if mol.GetNumHeavyAtoms() == 0:
        raise LigandError(f"{label}: no heavy atoms")
    if mol.GetNumHeavyAtoms() > 150:
        raise LigandError(f"{label}: {mol.GetNumHeavyAtoms()} heavy atoms; too large to dock (at most 150)")
    check_elements(mol, label)
    RDLogger.DisableLog("rdApp.*")
    try:
        try:
            from molscrub import Scrub

            scrub = Scrub(ph_low=PH, skip_tautomers=True, skip_gen3d=True)
            states = scrub(Chem.Mol(mol))
            prot = states[0] if states else mol
        except Exception:  # noqa: BLE001 - keep the molecule as written; the pose is still meaningful
            prot = mol
        molh = Chem.AddHs(prot)
        params = AllChem.ETKDGv3()
        params.randomSeed = int(seed) & 0x7FFFFFFF
        if AllChem.EmbedMolecule(molh, params) != 0:
            params.useRandomCoords = True
            if AllChem.EmbedMolecule(molh, params) != 0:
                raise LigandError(f"{label}: RDKit could not embed this molecule in 3D")
        try:
            AllChem.MMFFOptimizeMolecule(molh, maxIters=400)
        except Exception:  # noqa: BLE001 - no MMFF parameters: ETKDG geometry is fine for Vina
            pass
    finally:
        RDLogger.EnableLog("rdApp.*")
    return molh


def to_pdbqt(molh, label: str) -> str:
    from meeko import MoleculePreparation, PDBQTWriterLegacy

    try:
        setups = MoleculePreparation().prepare(molh)
        text, ok, err = PDBQTWriterLegacy.write_string(setups[0])
    except Exception as exc:  # noqa: BLE001
        raise LigandError(f"{label}: Meeko could not prepare it ({' '.join(str(exc).split())[:200]})") from None
    if not ok:
        raise LigandError(f"{label}: Meeko could not write it ({' '.join(str(err).split())[:200]})")
    return text


def prepare_ligand(smiles: str, seed: int = 0):
    """(PDBQT text, the protonated RDKit molecule with hydrogens) for one SMILES."""
    label = _name(smiles)
    mol = read_smiles(smiles)
    molh = protonate(mol, seed, label)
    return to_pdbqt(molh, label), molh
