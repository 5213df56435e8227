"""encode -> decode on real data: MOSES molecules, RDKit's NCI sample, PoseBusters complexes."""

from __future__ import annotations

import pytest
from rdkit import Chem

from engine import datasets
from engine.grammar import codec
from engine.structures import io as sio
from engine.structures import pocket
from tests.fixtures.required import missing


def _moses(n: int) -> list[str]:
    try:
        text = datasets.read_text("molsets", "moses/dataset/data/test_scaffolds.csv.gz")
    except datasets.DatasetMissing as exc:
        missing(str(exc))
    return [ln.split(",")[0] for ln in text.splitlines()[1:] if ln.strip()][:n]


def test_moses_molecules_round_trip_to_the_same_canonical_molecule():
    smiles = _moses(500)
    assert len(smiles) == 500
    for s in smiles:
        rec = codec.encode_molecule(s)
        d = codec.decode(rec)
        assert d.valid, (s, d.reasons)
        got = d.objects[0]["smiles"]
        assert got == Chem.MolToSmiles(Chem.MolFromSmiles(s))
        # the same molecule, not just the same string: InChIKeys agree
        assert Chem.MolToInchiKey(Chem.MolFromSmiles(got)) == Chem.MolToInchiKey(Chem.MolFromSmiles(s))


def test_moses_reactant_like_pairs_as_retrosynthesis_records():
    smiles = _moses(40)
    for a, b in zip(smiles[::2], smiles[1::2]):
        d = codec.decode(codec.encode_retrosynthesis(a, [b, "CCO"]))
        assert d.kind == "retrosynthesis"
        assert [m.smiles for m in d.records[0].reactants] == [codec.decode(codec.encode_molecule(b)).objects[0]["smiles"], "CCO"]


@pytest.mark.parametrize("code", ["1ia1", "1of6", "1s3v", "1uou"])
def test_posebusters_complex_pockets_round_trip(code):
    try:
        prot = datasets.read_bytes("posebusters", f"datasets/pdb/{code}/{code}_protein_one_lig_removed.pdb")
        lig = datasets.read_text("posebusters", f"datasets/pdb/{code}/{code}_ligand.sdf")
    except datasets.DatasetMissing as exc:
        missing(str(exc))
    obj = sio.read_bytes(prot, "pdb", name=f"{code}.pdb")[0]
    mol = sio.read_text(lig, "sdf", name=f"{code}_ligand.sdf")[0].mol
    pk = pocket.find_pocket(obj, ligand_mol=mol)
    assert len(pk.residues) >= 5
    for gran in ("pocket", "smiles"):
        d = codec.decode(pk.record(gran))
        assert d.valid, d.reasons
        rec = d.records[0]
        assert rec.ligand.smiles == Chem.MolToSmiles(Chem.RemoveHs(mol))
        marked = {(c, i) for c, p in zip(pk.chains, rec.proteins) for i in p.pockets}
        assert marked == {(r.chain, r.index) for r in pk.residues}
        letters = "".join(p.pocket_letters for p in rec.proteins)
        assert letters == "".join(r.letter for c in pk.chains for r in pk.residues if r.chain == c)
