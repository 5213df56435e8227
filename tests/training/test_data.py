"""Dataset builders: real data in, grammar text out, bad rows skipped and counted."""

from __future__ import annotations

import json

import pytest

from engine.grammar import codec
from training import data as D


def test_molecule_records_decode(moses_head):
    for smi in moses_head[:50]:
        rec = D.molecule_record(D.canonical(smi))
        d = codec.decode(rec)
        assert d.valid and d.kind == "molecule", (rec, d.reasons)


def test_moses_builder_keeps_test_scaffolds_out():
    report = D.BuildReport()
    split, seen = D.build_molecules(400, 50, 20, seed=3, report=report)
    assert len(split.train) + len(split.validation) + len(split.heldout) == report.kept["molecules"]
    assert len(split.validation) == 50 and len(split.heldout) == 20
    forbidden = set(D.moses_smiles(D.MOSES_TEST_SCAFFOLDS))
    assert not seen & forbidden
    assert not set(split.validation) & set(split.train)
    # the same seed gives the same split
    again, _ = D.build_molecules(400, 50, 20, seed=3, report=D.BuildReport())
    assert again.train == split.train


def test_retro_templates_give_real_sane_pairs(moses_head):
    from rdkit import Chem

    templates = D.load_templates()
    assert len(templates) > 100  # datamol ships 127 retro templates
    report = D.BuildReport()
    split = D.build_retrosynthesis(moses_head[:60], 5, 5, seed=1, report=report)
    assert "TEMPLATE-GENERATED" in report.sources["retrosynthesis"]
    assert "USPTO" in report.sources["retrosynthesis"]  # ... said to be NOT USPTO
    assert len(split.train) > 20
    for rec in split.train:
        d = codec.decode(rec)
        assert d.valid and d.kind == "retrosynthesis", (rec, d.reasons)
    for product, reactants, template in split.heldout:
        assert template
        for r in reactants:
            assert Chem.MolFromSmiles(r) is not None
            assert r != product


def test_proteins_from_uniprot_file(tmp_path):
    fasta = tmp_path / "p.fasta"
    fasta.write_text(">sp|P0CG48|UBC ubiquitin\nMQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGK\n"
                     ">odd\nMQIXBZ\n>long\n" + "A" * 400 + "\n")
    report = D.BuildReport()
    split = D.build_proteins(10, 0, 250, 0, report, fasta=fasta)
    assert split.train == ["<ProteinS>MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGK<ProteinE>"]
    assert report.skipped["proteins"] == {"longer than 250 residues": 1, "non-standard residue letters": 1}


def test_load_rows_skips_and_counts_bad_rows(tmp_path):
    good = "<MoleculeS>CCO<MoleculeE>"
    txt = tmp_path / "rows.txt"
    txt.write_text(f"{good}\n<MoleculeS>C1CC<MoleculeE>\nnot a record\n\n<ProteinS>MKV<ProteinE>\n")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"record": good}) + "\n{broken\n" + json.dumps({"other": 1}) + "\n")
    csv = tmp_path / "rows.csv"
    csv.write_text("record,score\n<MoleculeS>c1ccccc1<MoleculeE>,1\n<MaterialS><MetalS>Cu2(CO2)4<MetalE><MaterialE>,2\n")
    report = D.BuildReport()
    rows = D.load_rows([txt, jsonl, csv], report)
    assert rows == [good, "<ProteinS>MKV<ProteinE>", good, "<MoleculeS>c1ccccc1<MoleculeE>"]
    assert sum(report.skipped[str(txt)].values()) == 2
    assert sum(report.skipped[str(jsonl)].values()) == 2
    assert sum(report.skipped[str(csv)].values()) == 1
    # each skip names file and line
    assert any(e.startswith(f"{txt}:2:") for e in report.examples)
    assert any(e.startswith(f"{txt}:3:") for e in report.examples)
    assert any(e.startswith(f"{jsonl}:2: not JSON") for e in report.examples)
    assert any(e.startswith(f"{csv}:3:") and "linker" in e for e in report.examples)


def test_load_rows_missing_file_and_csv_without_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        D.load_rows([tmp_path / "nope.txt"], D.BuildReport())
    bad = tmp_path / "x.csv"
    bad.write_text("smiles\nCCO\n")
    with pytest.raises(ValueError, match="record"):
        D.load_rows([bad], D.BuildReport())


def test_project_rows(tmp_path):
    from engine.store.project import Project

    path = tmp_path / "p.logos"
    with Project.open(path, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, 1)
        p.add_result(run, "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
        p.add_result(run, "<MoleculeS>C1CC<MoleculeE>", valid=False, reasons=["unclosed ring"])
        p.add_result(run, "<MoleculeS>c1ccccc1O<MoleculeE>", smiles="Oc1ccccc1")
        p.finish_run(run)
    report = D.BuildReport()
    rows = D.project_rows(path, report)
    assert sorted(rows) == ["<MoleculeS>CCO<MoleculeE>", "<MoleculeS>c1ccccc1O<MoleculeE>"]
    assert sum(report.skipped[str(path)].values()) == 1


def test_pockets_hold_out_the_named_complex_and_draw_the_rest(monkeypatch):
    """The tour's complex (1HVR) is never in the training rows; the rest of the held-out quarter
    is drawn under the seed, and with no complex named the split is the seed's alone."""
    from types import SimpleNamespace

    from training import data_structures as DS

    names = ["posebusters:1ia1", "posebusters:1of6", "mdanalysistests:1hvr.pdb", "mdanalysistests:1a28.pdb.gz",
             "mdanalysistests:4E43.pdb", "mdanalysistests:3KPR.cif.gz", "mdanalysistests:5a7u.pdb",
             "mdanalysistests:19hc.pdb.gz"]
    seqs = {n: "".join("ACDEFGHIKLMNPQRSTVWY"[(i * 7 + j) % 20] for j in range(30)) for i, n in enumerate(names)}

    def fake_items(report):
        return [{"name": n, "chains": [(seqs[n], [3, 4, 9])], "ligand": "CC(=O)Nc1ccc(O)cc1"} for n in names]

    monkeypatch.setattr(DS, "pocket_items", fake_items)
    assert DS.complex_code("mdanalysistests:1hvr.pdb") == "1hvr" and DS.complex_code("posebusters:1IA1") == "1ia1"
    # the card's ligand figure (XK2 of 1HVR) says "held out" only when its complex was named
    from training.evaluate import ligand_pocket_heldout

    assert ligand_pocket_heldout(["1IA1", "1HVR"]) is True
    assert ligand_pocket_heldout(["1ia1"]) is None and ligand_pocket_heldout(None) is None
    for seed in (1, 2, 3):
        split = DS.build_pockets(SimpleNamespace(seed=seed, pocket_repeats=2, pocket_heldout=["1HVR"]),
                                 D.BuildReport())
        held = {seq for seq, _ in split.heldout}
        assert seqs["mdanalysistests:1hvr.pdb"] in held and len(held) == len(names) // 4
        assert not any(seqs["mdanalysistests:1hvr.pdb"] in r for r in split.train)
        assert not any(seq in r for seq in held for r in split.train)
        assert len(split.train) == 2 * 2 * (len(names) - len(held))  # search + complex record, twice each
    # a code that is not among the readable complexes is an error, never a silent training on it
    with pytest.raises(ValueError, match="not among the 8 readable ones: 9xyz"):
        DS.build_pockets(SimpleNamespace(seed=1, pocket_repeats=1, pocket_heldout=["1hvr", "9XYZ"]), D.BuildReport())
    # nothing named: a quarter drawn under the seed, as before the option existed
    one = DS.build_pockets(SimpleNamespace(seed=5, pocket_repeats=1, pocket_heldout=[]), D.BuildReport())
    two = DS.build_pockets(SimpleNamespace(seed=5, pocket_repeats=1), D.BuildReport())
    assert one.heldout == two.heldout and one.train == two.train and len(one.heldout) == 2
