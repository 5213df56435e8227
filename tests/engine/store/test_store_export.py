"""Export (SDF, CSV, CIF, FASTA) with provenance, read back by RDKit, csv, gemmi and Biopython;
import of SDF and CSV keeping every record."""

from __future__ import annotations

import csv
import io
import json

import pytest

from engine.store import Project, ResultQuery
from engine.store.export import ImportFileError, export_file, export_to_string, import_file
from tests.engine.store.conftest import MOLECULES, SAMPLING, UBIQUITIN
from tests.fixtures.required import missing


@pytest.fixture
def exported(filled_project):
    path, ids = filled_project
    p = Project.open(path)
    yield p, ids
    p.close()


def test_sdf_carries_every_property_and_the_provenance(exported):
    from rdkit import Chem

    p, ids = exported
    text, report = export_to_string(p, "sdf", ResultQuery(task="molecule", limit=None))
    mols = [m for m in Chem.ForwardSDMolSupplier(io.BytesIO(text.encode()))]
    assert all(m is not None for m in mols)
    # 5 molecules + the child; the unparsable row and nothing else is skipped, and said so
    assert report.written == len(mols) == 6
    assert report.skipped == [(ids["bad"], "no SMILES")]
    assert "skipped 1 (no SMILES)" in report.summary()
    by_id = {int(m.GetProp("result_id")): m for m in mols}
    aspirin = by_id[ids["results"][0]]
    assert Chem.MolToSmiles(aspirin) == MOLECULES["aspirin"]
    props = aspirin.GetPropsAsDict()
    run = p.get_run(ids["run"])
    assert props["model_sha256"] == run.model.sha256 and props["model_quant"] == "Q4_K_M"
    assert props["prompt"] == "<MoleculeS>" and props["seed"] == 1234 and props["run_id"] == ids["run"]
    assert json.loads(props["sampling"]) == SAMPLING
    assert props["valid"] == 1 and props["ppl"] == 1.5 and props["score_qed"] == 0.3
    assert props["score_name"] == "aspirin" and props["rating"] == 5
    assert props["tags"] == "hit,reference" and props["notes"] == "reference compound"
    assert props["record"] == f"<MoleculeS>{MOLECULES['aspirin']}<MoleculeE>"
    assert json.loads(props["versions"])["llama-cpp-python"] == "0.3.36"
    assert props["input_sha256"] == p.inputs()[0].sha256
    assert by_id[ids["child"]].GetPropsAsDict()["parent_id"] == ids["results"][0]


def test_csv_has_one_row_per_result_with_scores_and_provenance(exported, tmp_path):
    p, ids = exported
    out = tmp_path / "all.csv"
    report = export_file(p, out, "csv")
    rows = list(csv.DictReader(out.open(newline="")))
    assert report.written == len(rows) == len(ids["results"]) + 2 and report.skipped == []
    by_id = {int(r["result_id"]): r for r in rows}
    bad = by_id[ids["bad"]]
    assert bad["valid"] == "0" and bad["reasons"] == "RDKit: SMILES parse error: unclosed ring"
    assert bad["smiles"] == "" and bad["record"] == "<MoleculeS>C1CC(<MoleculeE>"
    seq = by_id[ids["sequence"]]
    assert seq["sequence"] == UBIQUITIN and seq["task"] == "binding_site" and seq["seed"] == "99"
    assert seq["prompt"].endswith("<Search><ProteinS>") and seq["run_status"] == "failed"
    assert {"score_qed", "score_name", "score_pocket_residues", "model_sha256", "sampling"} <= set(rows[0])
    assert not list(tmp_path.glob(".*.part"))


def test_fasta_holds_the_sequences(exported):
    from Bio import SeqIO

    p, ids = exported
    text, report = export_to_string(p, "fasta")
    recs = list(SeqIO.parse(io.StringIO(text), "fasta"))
    assert [str(r.seq) for r in recs] == [UBIQUITIN]
    assert recs[0].id == f"logos_result_{ids['sequence']}"
    assert "seed=99" in recs[0].description and "model_sha256=" in recs[0].description
    assert report.written == 1 and len(report.skipped) == len(ids["results"]) + 1


def test_cif_export_of_materials(tmp_path, test_data):
    import gemmi

    cifs = [test_data / "structures" / n for n in ("CaCO3-Calcite.cif", "FUDQIF_clean.cif")]
    if not all(c.exists() for c in cifs):
        missing("crystal fixtures not present")
    with Project.open(tmp_path / "mat.logos", create=True) as p:
        run = p.start_run("material", "<MaterialS>", SAMPLING, 3)
        ids = [p.add_result(run, "<MaterialS>...<MaterialE>", cif=c.read_text(), scores={"vnu": 1}) for c in cifs]
        p.add_result(run, "<MaterialS><MetalS>Cu2(CO2)4<MetalE><MaterialE>", valid=False, reasons=["no linker"])
        text, report = export_to_string(p, "cif")
    assert report.written == 2 and len(report.skipped) == 1
    doc = gemmi.cif.read_string(text)
    assert [b.name for b in doc] == [f"logos_result_{i}" for i in ids]
    for block, source in zip(doc, cifs):
        original = gemmi.cif.read_file(str(source)).sole_block()
        assert block.find_value("_cell_length_a") == original.find_value("_cell_length_a")
        assert gemmi.cif.as_string(block.find_value("_logos.prompt")) == "<MaterialS>"
        assert block.find_value("_logos.seed") == "3"
        assert json.loads(gemmi.cif.as_string(block.find_value("_logos.sampling"))) == SAMPLING
    # the exported blocks read as crystals again
    st = gemmi.make_small_structure_from_block(doc[0])
    assert st.cell.a == pytest.approx(gemmi.read_small_structure(str(cifs[0])).cell.a)


def test_sdf_export_then_import_round_trip(exported, tmp_path):
    p, ids = exported
    sdf = tmp_path / "out.sdf"
    export_file(p, sdf, "sdf", ResultQuery(task="molecule", limit=None))
    with Project.open(tmp_path / "other.logos", create=True) as q:
        rep = import_file(q, sdf)
        assert rep.added == 6 and rep.invalid == 0
        rows = {r.smiles: r for r in q.query_results(ResultQuery(run_id=rep.run_id, limit=None)).rows}
        asp = rows[MOLECULES["aspirin"]]
        assert asp.task == "import" and asp.valid
        assert asp.scores == {"qed": 0.3, "name": "aspirin"} and asp.ppl == 1.5
        assert asp.tags == ["hit", "reference"] and asp.notes == "reference compound" and asp.rating == 5
        assert asp.objects["provenance"]["model_sha256"] == p.get_run(ids["run"]).model.sha256
        assert asp.objects["provenance"]["prompt"] == "<MoleculeS>"
        run = q.get_run(rep.run_id)
        assert run.params == {"source": "out.sdf", "format": "sdf"} and run.status == "finished"
        assert q.get_input(run.input_ids[0]).data == sdf.read_bytes()


def test_import_of_a_real_sdf_keeps_coordinates(tmp_path, test_data):
    from rdkit import Chem

    src = test_data / "structures" / "1ia1_ligand.sdf"
    if not src.exists():
        missing("structures fixture not present")
    with Project.open(tmp_path / "i.logos", create=True) as p:
        rep = import_file(p, src)
        assert rep.added >= 1 and rep.invalid == 0
        row = p.get_result(rep.result_ids[0])
        ref = next(Chem.SDMolSupplier(str(src)))
        assert row.smiles == Chem.MolToSmiles(ref)
        text, _ = export_to_string(p, "sdf")
        back = next(Chem.ForwardSDMolSupplier(io.BytesIO(text.encode()), removeHs=False))
        assert back.GetConformer().Is3D()
        assert back.GetConformer().GetAtomPosition(0).x == pytest.approx(
            Chem.MolFromMolBlock(row.objects["molblock"], removeHs=False).GetConformer().GetAtomPosition(0).x)


def test_bad_sdf_records_are_kept_with_reasons(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    good = Chem.AddHs(Chem.MolFromSmiles(MOLECULES["caffeine"]))
    AllChem.EmbedMolecule(good, randomSeed=1)
    good_block = Chem.MolToMolBlock(good)
    # ethane's block with its bond made triple: ethyne, a good molecule written by hand
    ethyne = Chem.MolToMolBlock(Chem.MolFromSmiles("CC")).replace("  1  2  1  0", "  1  2  3  0")
    # a carbon with five bonds: RDKit must object
    five = Chem.RWMol(Chem.MolFromSmiles("C(C)(C)(C)C", sanitize=False))
    five.AddAtom(Chem.Atom(6))
    five.AddBond(0, 5, Chem.BondType.SINGLE)
    five_block = Chem.MolToMolBlock(five, kekulize=False)
    broken = good_block.split("\n")
    broken[3] = broken[3][:3] + "99" + broken[3][5:]  # counts line says 99 bonds that are not there
    path = tmp_path / "mixed.sdf"
    path.write_text(good_block + "$$$$\n" + five_block + "$$$$\n" + "\n".join(broken) + "$$$$\n"
                    + ethyne + "$$$$\n")
    with Project.open(tmp_path / "m.logos", create=True) as p:
        rep = import_file(p, path)
        rows = p.query_results(ResultQuery(run_id=rep.run_id, limit=None)).rows
    assert rep.added == 4 and len(rows) == 4
    assert rows[0].valid and rows[0].smiles == MOLECULES["caffeine"]
    assert not rows[1].valid and "valence" in rows[1].reasons[0].lower()
    assert rows[1].reasons[0].startswith("mixed.sdf:") and "record 2" in rows[1].reasons[0]
    assert not rows[2].valid and "record 3" in rows[2].reasons[0] and "cannot read" in rows[2].reasons[0]
    assert rows[2].record.count("\n") > 5  # the unreadable block itself is kept
    assert rows[3].valid and rows[3].smiles == "C#C"
    assert rep.invalid == 2


def test_csv_import_keeps_bad_lines_with_their_line_numbers(tmp_path):
    path = tmp_path / "hits.csv"
    path.write_text("Name,SMILES,pIC50,vendor\n"
                    f"aspirin,{MOLECULES['aspirin']},5.1,Sigma\n"
                    "broken,C1CC(,6.0,none\n"
                    "pentavalent,C(C)(C)(C)(C)C,4.2,none\n"
                    "empty,,1,none\n")
    with Project.open(tmp_path / "c.logos", create=True) as p:
        rep = import_file(p, path)
        rows = p.query_results(ResultQuery(run_id=rep.run_id, limit=None)).rows
    assert rep.added == 4 and rep.invalid == 3
    assert rows[0].valid and rows[0].smiles == MOLECULES["aspirin"] and rows[0].scores == {"pIC50": 5.1}
    assert rows[0].objects["properties"] == {"Name": "aspirin", "vendor": "Sigma"}
    assert rows[1].reasons == ["hits.csv:3: RDKit cannot parse the SMILES 'C1CC('"]
    assert rows[2].reasons[0].startswith("hits.csv:4: Explicit valence")
    assert rows[3].reasons == ["hits.csv:5: empty SMILES and sequence"]


def test_csv_without_a_structure_column_is_refused(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("a,b\n1,2\n")
    with Project.open(tmp_path / "x.logos", create=True) as p:
        with pytest.raises(ImportFileError, match=r"plain.csv: line 1: no 'smiles' or 'sequence' column \(columns: a, b\)"):
            import_file(p, path)
        assert p.query_results().total == 0 and p.runs() == []


def test_unknown_export_format_is_refused(exported):
    p, _ = exported
    with pytest.raises(ValueError, match="cannot export as 'xyz'"):
        export_to_string(p, "xyz")
