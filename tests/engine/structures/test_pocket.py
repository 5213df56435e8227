"""Pockets of real complexes, checked against an independent brute-force distance computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from Bio.PDB import NeighborSearch, PDBParser

from engine.grammar import codec
from engine.structures import io as sio
from engine.structures import pocket

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"


def brute_force_pocket(pdb_path: Path, lig_xyz: np.ndarray, cutoff: float) -> set[tuple[str, int]]:
    """Contact residues by Biopython's own parser and a full numpy distance matrix (no KD-tree)."""
    structure = PDBParser(QUIET=True).get_structure("x", str(pdb_path))
    model = next(iter(structure))
    hits = set()
    for chain in model:
        for res in chain:
            hetflag, num, _ = res.id
            if hetflag.strip() and hetflag != "H_CSO":  # amino acids only (CSO: a modified cysteine)
                continue
            xyz = np.array([a.coord for a in res if a.element != "H"], float)
            if not len(xyz):
                continue
            d = np.sqrt(((xyz[:, None, :] - lig_xyz[None, :, :]) ** 2).sum(-1))
            if d.min() <= cutoff:
                hits.add((chain.id, num))
    return hits


def biopython_ligand_xyz(pdb_path: Path, resname: str) -> np.ndarray:
    structure = PDBParser(QUIET=True).get_structure("x", str(pdb_path))
    return np.array([a.coord for a in structure.get_atoms()
                     if a.get_parent().get_resname() == resname and a.element != "H"], float)


@pytest.mark.parametrize("cutoff", [4.5, 3.5, 6.0])
def test_1hvr_pocket_matches_brute_force(cutoff):
    path = DATA / "1hvr.pdb"
    obj = sio.read_file(path)[0]
    pk = pocket.find_pocket(obj, cutoff=cutoff)
    assert pk.ligand.resname == "XK2" and pk.ligand.chain == "A" and pk.ligand.resnum == 263
    ours = {(r.chain, r.resnum) for r in pk.residues}
    theirs = brute_force_pocket(path, biopython_ligand_xyz(path, "XK2"), cutoff)
    assert ours == theirs
    assert len(ours) > 10


def test_1hvr_pocket_matches_neighborsearch():
    path = DATA / "1hvr.pdb"
    structure = PDBParser(QUIET=True).get_structure("x", str(path))
    atoms = [a for a in structure.get_atoms() if a.element != "H"]
    ns = NeighborSearch(atoms)
    ligand = [a for a in atoms if a.get_parent().get_resname() == "XK2"]
    theirs = set()
    for a in ligand:
        for b in ns.search(a.coord, 4.5):
            res = b.get_parent()
            if res.get_resname() != "XK2" and res.id[0] in (" ", "H_CSO"):
                theirs.add((res.get_parent().id, res.id[1]))
    pk = pocket.find_pocket(sio.read_file(path)[0], ligand="XK2")
    assert {(r.chain, r.resnum) for r in pk.residues} == theirs


def test_1hvr_ligand_smiles_has_ccd_bond_orders_and_3d_stereo():
    pk = pocket.find_pocket(sio.read_file(DATA / "1hvr.pdb")[0])
    # XK2 (DMP323-like cyclic urea): the urea C=O from the dictionary, four stereocentres from 3D
    assert pk.ligand.smiles == ("O=C1N(Cc2ccc3ccccc3c2)[C@H](Cc2ccccc2)[C@H](O)[C@@H](O)[C@@H](Cc2ccccc2)"
                                "N1Cc1ccc2ccccc2c1")
    assert pk.warnings == []


def test_record_round_trips_to_the_same_pocket_set():
    obj = sio.read_file(DATA / "1hvr.pdb")[0]
    pk = pocket.find_pocket(obj)
    for gran in ("pocket", "smiles"):
        d = codec.decode(pk.record(gran))
        assert d.kind == "complex" and d.valid, d.reasons
        rec = d.records[0]
        assert [p.sequence for p in rec.proteins] == [pk.sequences[c] for c in pk.chains]
        got = {(c, i) for c, p in zip(pk.chains, rec.proteins) for i in p.pockets}
        want = {(r.chain, r.index) for r in pk.residues}
        assert got == want
        assert rec.ligand.smiles == pk.ligand.smiles
    plain = codec.decode(pk.record("plain")).records[0]
    assert all(not p.pockets for p in plain.proteins)


def test_posebusters_ligand_from_sdf_and_from_structure_agree():
    prot = sio.read_file(DATA / "1ia1_protein_one_lig_removed.pdb")[0]
    lig = sio.read_file(DATA / "1ia1_ligand.sdf")[0]
    from_sdf = pocket.find_pocket(prot, ligand_mol=lig.mol)
    # the PDB keeps a second copy of TQ3 (chain A), the SDF pose sits in chain B
    from_pdb = pocket.find_pocket(prot, ligand="TQ3")
    assert from_sdf.ligand.smiles == from_pdb.ligand.smiles == "Nc1nc(N)c2c(Sc3ccccc3)cccc2n1"
    assert from_sdf.chains == ["B"] and from_pdb.chains == ["A"]
    lig_xyz = lig.mol.GetConformer().GetPositions()
    heavy = [a.GetIdx() for a in lig.mol.GetAtoms() if a.GetAtomicNum() > 1]
    theirs = brute_force_pocket(DATA / "1ia1_protein_one_lig_removed.pdb", lig_xyz[heavy], 4.5)
    assert {(r.chain, r.resnum) for r in from_sdf.residues} == theirs


def test_automatic_ligand_skips_cofactor_ties_and_names_alternatives():
    prot = sio.read_file(DATA / "1ia1_protein_one_lig_removed.pdb")[0]
    pk = pocket.find_pocket(prot)
    assert pk.ligand.resname == "NDP"  # the largest hetero group (NADPH)
    assert "other candidates: NDP, TQ3" in pk.warnings[0]
    assert pk.ligand.smiles.count("P") == 3 and "[N" not in pk.ligand.smiles  # no radicals or charges


def test_select_by_chain_and_number_and_errors():
    prot = sio.read_file(DATA / "1ia1_protein_one_lig_removed.pdb")[0]
    chain_b = [(ch.name, r.seqid.num) for ch in prot.structure[0] for r in ch if r.name == "NDP"][-1]
    pk = pocket.find_pocket(prot, ligand="NDP", chain=chain_b[0], resnum=chain_b[1])
    assert (pk.ligand.chain, pk.ligand.resnum) == chain_b
    with pytest.raises(pocket.PocketError, match="no residue ATP.*hetero groups present: NDP, TQ3"):
        pocket.find_pocket(prot, ligand="ATP")
    with pytest.raises(pocket.PocketError, match="cutoff"):
        pocket.find_pocket(prot, cutoff=-1)
    only_additives = sio.read_file(DATA / "4E43.pdb")[0]
    with pytest.raises(pocket.PocketError, match="no ligand found"):
        pocket.find_pocket(only_additives)
    # named, an additive is a ligand
    gol = pocket.find_pocket(only_additives, ligand="GOL")
    assert gol.ligand.smiles == "OCC(O)CO"
