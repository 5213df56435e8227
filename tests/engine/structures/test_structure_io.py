"""Reading and writing real structure files; the AtomTable the 3D view draws."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem, RDConfig

from engine.grammar.chem import canonical_smiles
from engine.structures import io as sio
from engine.structures.atoms import AtomTable, atom_table, chain_sequences
from engine.structures.model import LoadedObject, StructureReadError

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"
NCI = Path(RDConfig.RDDataDir) / "NCI"


def test_smiles_file_many_records_with_bad_lines_listed():
    objs = sio.read_file(NCI / "first_5K.smi")
    assert len(objs) == 4991  # 4,999 lines, 8 that RDKit rejects
    assert objs[0].kind == "molecule" and objs[0].fmt == "smi" and objs[0].name == "1"
    w = objs[0].warnings[0]
    assert w.startswith("dropped 8 unreadable SMILES record(s): line 2098: Explicit valence for atom # 9 N, 5")


def test_sdf_many_records_keep_names_and_properties():
    objs = sio.read_file(NCI / "first_200.props.sdf")
    assert len(objs) == 200
    m = objs[0].mol
    assert m.GetNumConformers() == 1
    assert m.GetPropsAsDict()  # SD properties survive
    assert objs[0].summary()["atoms"] == m.GetNumAtoms()


def test_mol2_and_broken_mol2():
    objs = sio.read_file(DATA / "zinc_856218.mol2")
    assert objs[0].kind == "molecule" and objs[0].mol.GetNumAtoms() > 20
    with pytest.raises(StructureReadError) as exc:
        sio.read_file(DATA / "BrokenMolecule.mol2")
    assert "BrokenMolecule.mol2" in str(exc.value)


def test_pdb_complex_and_mmcif_protein():
    obj = sio.read_file(DATA / "1hvr.pdb")[0]
    assert obj.kind == "complex" and obj.fmt == "pdb"
    seqs = chain_sequences(obj.structure)
    assert list(seqs) == ["A", "B"] and len(seqs["A"]) == 99 and seqs["A"].startswith("PQVTLWQR")
    cif = sio.read_file(DATA / "1YJP.cif")[0]
    assert cif.kind == "protein" and cif.fmt == "mmcif" and cif.sequence == "GNNQQNY"


def test_gzipped_mmcif_and_mislabelled_extension(tmp_path):
    gz = tmp_path / "1yjp.cif.gz"
    gz.write_bytes(gzip.compress((DATA / "1YJP.cif").read_bytes()))
    assert sio.read_file(gz)[0].sequence == "GNNQQNY"
    wrong = tmp_path / "really_a_pdb.sdf"
    wrong.write_bytes((DATA / "1hvr.pdb").read_bytes())
    obj = sio.read_file(wrong)[0]
    assert obj.fmt == "pdb"
    assert obj.warnings[0] == "the name says SDF but the content is PDB; read as PDB"


def test_crystal_cif_poscar_round_trip(tmp_path):
    calcite = sio.read_file(DATA / "CaCO3-Calcite.cif")[0]
    assert calcite.kind == "crystal"
    comp = calcite.crystal.composition.reduced_formula
    assert comp == "CaCO3"
    out = sio.write_file(calcite, tmp_path / "POSCAR")
    back = sio.read_file(out)[0]
    assert back.fmt == "poscar" and back.crystal.composition.reduced_formula == "CaCO3"
    assert abs(back.crystal.volume - calcite.crystal.volume) < 1e-3
    cif2 = sio.read_file(sio.write_file(calcite, tmp_path / "calcite_out.cif"))[0]
    assert len(cif2.crystal) == len(calcite.crystal)


def test_partial_occupancy_is_reported():
    obj = sio.read_file(DATA / "NiFePt-Ferronickelplatinum.cif")[0]
    assert not obj.crystal.is_ordered
    assert any(w.startswith("partial occupancy on 1 of 2 sites") for w in obj.warnings), obj.warnings


def test_fasta_gaps_removed_with_warning():
    objs = sio.read_file(DATA / "test.fasta")
    assert objs[0].kind == "sequence" and objs[0].sequence.startswith("MKRVVVDPVTRIEGHLRIEIMVDEETGQ")
    assert "." not in objs[0].sequence
    assert "alignment gap" in objs[0].warnings[0]


def test_molecule_writers_round_trip(tmp_path):
    lig = sio.read_file(DATA / "1ia1_ligand.sdf")[0]
    smi = canonical_smiles(lig.mol)
    for name in ("lig.sdf", "lig.mol", "lig.smi", "lig.sdf.gz", "lig.pdb"):
        back = sio.read_file(sio.write_file(lig, tmp_path / name))[0]
        assert canonical_smiles(back.mol) == smi, name
    bare = sio.read_file(sio.write_file(lig, tmp_path / "bare.xyz"))[0]
    assert "no hydrogen atoms" in bare.warnings[0]
    lig.mol = Chem.AddHs(lig.mol, addCoords=True)
    xyz = sio.read_file(sio.write_file(lig, tmp_path / "lig.xyz"))[0]
    assert canonical_smiles(xyz.mol) == smi  # bonds and orders perceived from coordinates
    with pytest.raises(StructureReadError, match="MOL2"):
        sio.write_file(lig, tmp_path / "lig.mol2")


def test_protein_writers_round_trip(tmp_path):
    obj = sio.read_file(DATA / "1hvr.pdb")[0]
    for name in ("out.pdb", "out.cif", "out.fasta"):
        back = sio.read_file(sio.write_file(obj, tmp_path / name))
        if name.endswith("fasta"):
            assert [b.sequence for b in back] == list(chain_sequences(obj.structure).values())
        else:
            assert chain_sequences(back[0].structure) == chain_sequences(obj.structure)


def test_read_text_pasted_smiles_and_pdb():
    objs = sio.read_text("CCO ethanol\nc1ccccc1 benzene\n")
    assert [o.name for o in objs] == ["ethanol", "benzene"] and objs[0].source is None
    pdb = (DATA / "1hvr.pdb").read_text()
    assert sio.read_text(pdb)[0].kind == "complex"


def test_atom_table_molecule_protein_crystal():
    lig = sio.read_file(DATA / "1ia1_ligand.sdf")[0]
    t = atom_table(lig)
    assert isinstance(t, AtomTable) and t.xyz.dtype == np.float32 and t.xyz.shape == (lig.mol.GetNumAtoms(), 3)
    assert t.bonds.shape == (lig.mol.GetNumBonds(), 2)
    assert 1.5 in set(t.bond_orders.tolist())  # aromatic rings
    assert np.allclose(t.xyz, lig.mol.GetConformer().GetPositions(), atol=1e-4)

    obj = sio.read_file(DATA / "1hvr.pdb")[0]
    t = atom_table(obj)
    assert len(t) == obj.summary()["atoms"] == 1890
    assert set(t.chains) == {"A", "B"}
    lig_atoms = [i for i, r in enumerate(t.res_names) if r == "XK2"]
    assert lig_atoms and t.hetero[lig_atoms].all() and not t.hetero[t.res_names.index("PRO")]
    assert 2.0 in set(t.bond_orders.tolist())  # C=O from the dictionary
    d = np.linalg.norm(t.xyz[t.bonds[:, 0]] - t.xyz[t.bonds[:, 1]], axis=1)
    assert d.max() < 2.2 and d.min() > 0.9  # every bond is a real bond

    crystal = sio.read_file(DATA / "CaCO3-Calcite.cif")[0]
    t = atom_table(crystal)
    assert t.cell.shape == (3, 3) and len(t) == len(crystal.crystal)
    co = [(i, j) for i, j in t.bonds if {t.elements[i], t.elements[j]} == {"C", "O"}]
    assert len(co) >= 3


def test_atom_table_for_smiles_without_coordinates_and_sequence():
    obj = sio.read_text("CC(=O)Oc1ccccc1C(=O)O aspirin")[0]
    t = atom_table(obj)
    assert t.xyz.shape == (13, 3) and np.ptp(t.xyz[:, 2]) > 0.1  # embedded in 3D
    seq = LoadedObject("sequence", "s", None, "fasta", sequence="MKT")
    assert len(atom_table(seq)) == 0
    assert Chem.MolToSmiles(obj.mol) == "CC(=O)Oc1ccccc1C(=O)O"
