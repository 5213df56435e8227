"""Framework decomposition, the hard cases on real CoRE MOF 2019 CIFs (tests/data/SOURCES.md):
hydrogens completed from the geometry, rods and multi-metal nodes, structures that are not
frameworks, bound solvent, disorder, betaines; and the bond-order rules on RDKit-embedded molecules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from engine.grammar import codec
from engine.structures import bondorders as B
from engine.structures import framework as F

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"
SLOW_OK = 120.0  # correctness tests: a loaded machine must not turn them into timing tests


def _carbons(path: Path) -> int:
    return sum(1 for ln in path.read_text().splitlines() if ln.split()[-1:] == ["C"])


def _assert_sane(fw: F.Framework):
    assert fw.ok, fw.reasons
    assert codec.decode(fw.record).valid
    for smi in fw.linkers:
        mol = Chem.MolFromSmiles(smi)
        assert mol is not None, smi
        assert not any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()), smi
        assert Chem.GetFormalCharge(mol) == 0, smi
        assert len(Chem.GetMolFrags(mol)) == 1, smi


def test_hydrogens_added_from_the_geometry_on_a_rod_mof():
    """An Al–F rod terephthalate (MIL-53 type) whose CIF has no hydrogen at all: the ring C–H and the
    acid O–H are added from the geometry, and the record says so."""
    path = DATA / "cm503311x_alf200K_clean.cif"
    assert " H\n" not in path.read_text() and _carbons(path) == 32
    fw = F.decompose(path, timeout=SLOW_OK)
    _assert_sane(fw)
    assert fw.linkers == ["O=C(O)c1ccc(C(=O)O)cc1"]
    assert fw.metal == "rod[AlF(CO2)2]" and fw.nodes[0].dimension == 1
    assert fw.h_missing and fw.h_added_carbon == 16  # 4 terephthalates x 4 ring C–H
    assert any("no hydrogen atoms in the CIF" in w for w in fw.warnings)


def test_multi_metal_node_and_aliphatic_hydrogens():
    """Cu3Gd2 oxydiacetate net, no hydrogens in the CIF: two metals in one node, and CH2 carbons
    (tetrahedral, long C–O/C–C bonds) get two hydrogens each, not a C=C."""
    fw = F.decompose(DATA / "RONCIG_clean.cif", timeout=SLOW_OK)
    _assert_sane(fw)
    assert fw.linkers == ["O=C(O)COCC(=O)O"]
    assert fw.nodes[0].metals == {"Cu": 3, "Gd": 2} and fw.metal.startswith("net[Cu3Gd2")
    assert fw.h_added_carbon == 48  # 12 linkers x 2 CH2 x 2 H


@pytest.mark.parametrize("name, why", [
    ("BOCTOE03_clean", "not a framework: no carbon in the structure"),
    ("MEYLIN_clean", "not a framework: no organic component (carbon only in carbonate, cyanide"),  # CuCN
])
def test_not_a_framework_is_refused_with_its_reason(name, why):
    fw = F.decompose(DATA / f"{name}.cif", timeout=SLOW_OK)
    assert not fw.ok and fw.not_framework and not fw.decomposed
    assert fw.reasons[0].startswith(why)
    assert F.failure_class(fw) == "not a framework"
    summ = F.summarise([fw.to_dict(), F.decompose(DATA / "FUDQIF_clean.cif", timeout=SLOW_OK).to_dict()])
    assert summ["frameworks"] == 1 and summ["not_a_framework"] == 1 and summ["fraction_complete_sane"] == 1.0


@pytest.mark.parametrize("name, solvent, linker", [
    ("PAMHES_clean", "C2H6O x2", "O=C(O)c1c(F)c(F)c(C(=O)O)c(F)c1F"),  # ethanol on a Zn rod
    ("QEKLID01_freeONLY", "C3H7NO x2", "O=C(O)c1ccc(-c2cc(C(=O)O)cc(C(=O)O)c2)cc1"),  # DMF
    ("WANJIF_freeONLY", "C5H5N x4", "O=C(O)c1cncc(C(=O)O)c1"),  # pyridine with its one donor
])
def test_bound_solvent_is_a_terminal_ligand_not_a_linker(name, solvent, linker):
    fw = F.decompose(DATA / f"{name}.cif", timeout=SLOW_OK)
    _assert_sane(fw)
    assert fw.linkers == [linker]
    assert not set(fw.linkers) & F.SOLVENTS
    assert any(w.startswith("dropped terminal ligands") and solvent in w for w in fw.warnings), fw.warnings


def test_solvent_list_holds_neutral_solvents_not_carboxylates():
    for smi in ("CN(C)C=O", "O", "CO", "c1ccncc1", "CS(C)=O"):
        assert Chem.CanonSmiles(smi) in F.SOLVENTS
    assert "O=CO" not in F.SOLVENTS and "CC(=O)O" not in F.SOLVENTS  # bridging formate/acetate are linkers


def test_disorder_component_dropped_and_mixed_sites_refused():
    fw = F.decompose(DATA / "KIFDIM_clean.cif", timeout=SLOW_OK)
    _assert_sane(fw)
    assert fw.linkers == ["c1cc(-c2ccncc2)ccn1"] and fw.merged_overlaps > 0
    assert any(w.startswith("disorder:") for w in fw.warnings)

    text = (DATA / "FUDQIF_clean.cif").read_text()
    carbon = next(ln for ln in text.splitlines() if ln.split()[:2] == ["C1", "C"])
    parts = carbon.split()  # label, symbol, x, y, z, Uiso...
    # the same carbon written twice 0.01 in x apart: one atom, the record unchanged
    twin = " ".join(["C99", "C", f"{float(parts[2]) + 0.01:.5f}"] + parts[3:])
    fw2 = F.decompose(text.replace(carbon, carbon + "\n" + twin), "twin", timeout=SLOW_OK)
    assert fw2.ok and fw2.linkers == ["c1cnccn1"] and fw2.merged_overlaps == 1
    # a nitrogen on the carbon's site: no honest choice, refused as disorder
    mixed = " ".join(["N99", "N"] + parts[2:])
    fw3 = F.decompose(text.replace(carbon, carbon + "\n" + mixed), "mixed", timeout=SLOW_OK)
    assert not fw3.ok and "two elements on one site" in fw3.reasons[0]
    assert F.failure_class(fw3) == "overlapping/disordered atoms"


def test_betaine_linker_keeps_balanced_charges():
    """Pyridinium-carboxylate betaines: the neutral parent is the zwitterion (N+ balanced by CO2-),
    not a dihydropyridine with an enol acid."""
    fw = F.decompose(DATA / "VUGXAY_clean.cif", timeout=SLOW_OK)
    _assert_sane(fw)
    mol = Chem.MolFromSmiles(fw.linkers[0])
    charges = sorted(a.GetFormalCharge() for a in mol.GetAtoms() if a.GetFormalCharge())
    assert charges == [-1, -1, -1, 1, 1, 1]
    assert not B.enediols(mol)


# --------------------------------------------------------------------------------------------
# bond orders from geometry on RDKit-embedded molecules: the linker as it sits in a framework
# (every hydrogen gone, or only the acidic ones) must come back as its neutral parent


def _embedded(smiles: str, seed: int = 7):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    AllChem.MMFFOptimizeMolecule(mol)
    return mol


def _strip(mol, which: str):
    """Elements, bonds and coordinates without the hydrogens ``which`` says: 'all' or 'acidic'."""
    conf = mol.GetConformer()
    keep = []
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 1:
            host = a.GetNeighbors()[0]
            if which == "all" or host.GetSymbol() in ("O", "S") or (
                    host.GetSymbol() == "N" and host.GetIsAromatic()):
                continue
        keep.append(a.GetIdx())
    new = {old: k for k, old in enumerate(keep)}
    els = [mol.GetAtomWithIdx(i).GetSymbol() for i in keep]
    bonds = [(new[b.GetBeginAtomIdx()], new[b.GetEndAtomIdx()]) for b in mol.GetBonds()
             if b.GetBeginAtomIdx() in new and b.GetEndAtomIdx() in new]
    xyz = np.array([list(conf.GetAtomPosition(i)) for i in keep])
    return els, bonds, xyz


@pytest.mark.parametrize("smiles", [
    "O=C(O)c1ccc(C(=O)O)cc1",  # terephthalic acid
    "O=C(O)c1cc(O)c(C(=O)O)cc1O",  # 2,5-dihydroxyterephthalic acid (MOF-74): not the quinone
    "c1cc(-c2cn[nH]c2)ccc1-c1cn[nH]c1",  # 1,4-bis(pyrazol-4-yl)benzene: not the quinoid form
    "c1cc(-c2nn[nH]n2)ccc1-c1nn[nH]n1",  # bis-tetrazole
    "Cc1ncc[nH]1",  # 2-methylimidazole (ZIF-8)
    "O=C(O)c1cc(C(=O)O)cc([N+](=O)[O-])c1",  # 5-nitroisophthalic acid
    "O=C(O)c1ccc(C(=O)O)c(S(=O)(=O)O)c1",  # 2-sulfoterephthalic acid
    "O=P(O)(O)CCP(=O)(O)O",  # ethylenediphosphonic acid
    "O=C(O)C1CC(C(=O)O)CC(C(=O)O)C1",  # cyclohexane-1,3,5-tricarboxylic acid: sp3 CH carbons
    "C(#Cc1ccncc1)c1ccncc1",  # 1,2-bis(4-pyridyl)acetylene: a triple bond
    "O=C(O)C=CC(=O)O",  # fumaric acid
    "c1cc(N=Nc2ccncc2)ccn1",  # 4,4'-azopyridine
])
@pytest.mark.parametrize("which", ["all", "acidic"])
def test_neutral_parent_from_geometry(smiles, which):
    mol = _embedded(smiles)
    els, bonds, xyz = _strip(mol, which)
    got = B.perceive(els, bonds, xyz)
    assert Chem.MolToSmiles(Chem.RemoveHs(got.mol)) == Chem.CanonSmiles(smiles)
    n_ch = sum(1 for a in mol.GetAtoms() if a.GetSymbol() == "C" for n in a.GetNeighbors() if n.GetAtomicNum() == 1)
    assert got.h_added_carbon == (n_ch if which == "all" else 0)


def test_bond_order_errors_say_why():
    mol = _embedded("CC(C)(C)C")  # neopentane with one methyl squeezed onto the centre: 5 bonds
    els, bonds, xyz = _strip(mol, "all")
    with pytest.raises(B.BondOrderError, match="bond angle|5 bonds"):
        B.perceive(els + ["C"], bonds + [(1, len(els))], np.vstack([xyz, xyz[1] + [0.3, 0.9, 0.9]]))
    with pytest.raises(B.BondOrderError, match="quaternary N"):
        m = _embedded("C[N+](C)(C)C")
        e, b, x = _strip(m, "all")
        B.perceive(e, b, x)
