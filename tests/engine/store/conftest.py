"""Fixtures of the project-store tests: a project filled with real molecules and a real protein."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

# Real, public molecules (canonical RDKit SMILES) and the human ubiquitin sequence (UniProt P0CG48,
# residues 1-76).
MOLECULES = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "caffeine": "Cn1c(=O)c2c(ncn2C)n(C)c1=O",
    "ibuprofen": "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "benzene": "c1ccccc1",
}
UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
SAMPLING = {"temperature": 1.2, "top_p": 0.85, "top_k": 50, "repeat_penalty": 1.05, "min_p": 0.0,
            "max_tokens": 1000}


def aspirin_sdf() -> bytes:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(MOLECULES["aspirin"]))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    mol.SetProp("_Name", "aspirin")
    return (Chem.MolToMolBlock(mol) + "$$$$\n").encode()


def fill(p) -> dict:
    """Write a small realistic project through the public API; returns the ids it made."""
    model_sha = hashlib.sha256(b"LOGOS-pretrain-1B Q4_K_M test stand-in").hexdigest()
    mid = p.add_model("/models/LOGOS-pretrain-1B-Q4_K_M.gguf", model_sha, quant="Q4_K_M",
                      base="LOGOS-Hub/LOGOS-pretrain-1B")
    iid = p.add_input(aspirin_sdf(), "sdf", "aspirin.sdf")
    run = p.start_run("molecule", "<MoleculeS>", SAMPLING, 1234, model_id=mid, input_ids=[iid],
                      versions={"llama-cpp-python": "0.3.36"})
    ids = []
    for i, (name, smi) in enumerate(MOLECULES.items()):
        ids.append(p.add_result(run, f"<MoleculeS>{smi}<MoleculeE>", objects=[{"kind": "molecule", "smiles": smi}],
                                smiles=smi, valid=True, scores={"qed": round(0.3 + 0.1 * i, 3), "name": name},
                                ppl=1.5 + i))
    bad = p.add_result(run, "<MoleculeS>C1CC(<MoleculeE>", objects=None, smiles=None, valid=False,
                       reasons=["RDKit: SMILES parse error: unclosed ring"], ppl=9.5)
    ids.append(bad)
    p.finish_run(run, "finished")
    run2 = p.start_run("binding_site", f"<ProteinS>{UBIQUITIN}<ProteinE><Search><ProteinS>", SAMPLING, 99,
                       model_id=mid)
    seq_id = p.add_result(run2, f"<ProteinS>{UBIQUITIN}<ProteinE>", sequence=UBIQUITIN, valid=True,
                          scores={"pocket_residues": 0}, ppl=2.25)
    p.finish_run(run2, "failed", error="cancelled by the test after one sample")
    p.update_result(ids[0], notes="reference compound", rating=5, tags=["reference", "hit"])
    p.update_result(ids[1], tags=["hit"])
    child = p.add_result(run, "<MoleculeS>CC(=O)Oc1ccccc1C(=O)OC<MoleculeE>", smiles="COC(=O)c1ccccc1OC(C)=O",
                         valid=True, scores={"qed": 0.55}, ppl=2.0, parent_id=ids[0])
    tid = p.start_training(mid, {"lora_r": 8, "epochs": 1}, [ids[0], ids[1]])
    p.finish_training(tid, "finished", metrics={"loss": 0.42})
    return {"model": mid, "input": iid, "run": run, "run2": run2, "results": ids, "bad": bad,
            "sequence": seq_id, "child": child, "training": tid}


@pytest.fixture
def store_fill():
    return fill


@pytest.fixture
def filled_project(tmp_path: Path):
    from engine.store import Project

    path = tmp_path / "screen.logos"
    with Project.open(path, create=True) as p:
        ids = fill(p)
    return path, ids


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dump_sql(path: Path) -> list[str]:
    """The whole database as SQL statements (sqlite3's iterdump), read-only."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()
