"""Actions on result rows in the main window: provenance, export with properties, tags, the
fine-tune data file, and a run left "running" by a dead engine marked failed with its rows kept."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from engine.store.project import Project  # noqa: E402
from engine.store.queries import ResultQuery  # noqa: E402

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "CC(=O)Nc1ccc(O)cc1"]


@pytest.fixture
def window(qtbot, tmp_path, test_data):
    from logos_desktop.main_window import MainWindow

    path = tmp_path / "rows.logos"
    with Project.open(path, create=True) as p:
        inp = p.add_input((test_data / "structures" / "1hvr.pdb").read_bytes(), "pdb", "1hvr.pdb")
        mid = p.add_model("/models/demo.gguf", "ab" * 32, quant="Q8_0")
        run = p.start_run("ligand", "<ProteinS>PQ<PocketS>D<PocketE>T<ProteinE><MoleculeS>",
                          {"sampling": {"temperature": 1.2, "top_p": 0.85}, "n": 3,
                           "options": {"ligand": "XK2", "cutoff": 4.5},
                           "command": "logos generate --task ligand --input 1hvr.pdb --ligand XK2 -n 3"},
                          42, model_id=mid, input_ids=[inp])
        for s in SMILES:
            p.add_result(run, f"<MoleculeS>{s}<MoleculeE>", smiles=s, valid=True, scores={"qed": 0.5},
                         objects={"smiles": s, "pocket": ["A:ASP25", "B:ASP25"]}, ppl=2.0)
        p.finish_run(run)
    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    gen = w.generation
    assert gen.open_project(path)
    yield w, gen, path
    w.close()


def test_provenance_and_preview_in_the_pocket(qtbot, window, test_data):
    w, gen, _path = window
    complex_item = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])[0]
    table = complex_item.table()
    w.workspace.set_current(complex_item.id)
    w.workspace.set_selection([(complex_item.id, i) for i, r in enumerate(table.res_names) if r == "XK2"])
    gen.generate.set_task("ligand")
    assert gen.generate.request().engine_options()["ligand"] == "XK2 A:263"  # the engine's spec
    gen.results.view.selectRow(1)
    prov = gen.provenance.provenance
    assert prov.seed == 42 and prov.model_quant == "Q8_0" and prov.inputs[0][0] == "1hvr.pdb"
    text = gen.provenance.text.toPlainText()
    assert "<ProteinS>PQ<PocketS>D<PocketE>T<ProteinE><MoleculeS>" in text
    assert "ab" * 32 in text and "--ligand XK2" in text
    assert gen.provenance.rerun_button.isEnabled()
    # the candidate is in the workspace, placed at the centre of the Asp25 pair of the protease
    preview = w.workspace.current()
    assert preview.name == "result 2" and preview.obj.mol.GetNumConformers() == 1
    import numpy as np

    xyz = preview.obj.mol.GetConformer().GetPositions().mean(axis=0)
    st = complex_item.obj.structure
    asp = np.array([[a.pos.x, a.pos.y, a.pos.z] for ch in st[0] for r in ch if r.seqid.num == 25
                    and r.name == "ASP" for a in r])
    assert np.linalg.norm(xyz - asp.mean(axis=0)) < 0.5
    # the Generate panel still takes its input from the complex, not from the preview
    gen.generate.refresh_inputs()
    req = gen.generate.request()
    assert req is not None, gen.generate.input_label.text()
    assert req.engine_options()["ligand"] == "XK2 A:263" and "XK2" in gen.generate.input_label.text()


def test_a_clicked_result_is_the_input_of_retrosynthesis_and_forward(qtbot, window, test_data):
    from PySide6.QtCore import Qt
    from rdkit import Chem

    w, gen, _path = window
    complex_item = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])[0]
    table = complex_item.table()
    w.workspace.set_current(complex_item.id)
    w.workspace.set_selection([(complex_item.id, i) for i, r in enumerate(table.res_names) if r == "XK2"])
    panel = gen.generate
    panel.set_task("retro")
    assert "needs a product molecule" in panel.input_label.text()  # a complex is not a product
    # click result 3 (paracetamol) in the table, as a user does
    view = gen.results.view
    rect = view.visualRect(gen.results.model.index(2, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.workspace.current().name == "result 3"
    want = Chem.MolToSmiles(Chem.MolFromSmiles(SMILES[2]))
    assert "result 3" in panel.input_label.text() and want in panel.input_label.text()
    assert panel.request().engine_options()["smiles"] == want
    assert f"smiles={want}" in panel.command_line_text()
    # "Use current selection" keeps reflecting it
    panel.use_selection_button.click()
    assert panel.request().engine_options()["smiles"] == want
    panel.set_task("forward")
    assert panel.request().engine_options()["smiles"] == want
    # ligand design cannot take a molecule: its pocket stays the complex's selected ligand
    panel.set_task("ligand")
    assert panel.request().engine_options()["ligand"] == "XK2 A:263"
    # another result clicked: the product follows
    rect = view.visualRect(gen.results.model.index(0, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    panel.set_task("retro")
    assert panel.request().engine_options()["smiles"] == Chem.MolToSmiles(Chem.MolFromSmiles(SMILES[0]))


def test_keep_a_result_in_the_workspace(qtbot, window):
    from PySide6.QtCore import Qt
    from rdkit import Chem

    w, gen, _path = window
    view = gen.results.view

    def click(row):
        rect = view.visualRect(gen.results.model.index(row, 1))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    click(2)
    gen.results.keep_button.click()
    kept = w.workspace.current()
    assert kept.name == "result 3" and not getattr(kept.obj, "_logos_preview", False)
    click(0)  # the next result does not replace the kept one
    names = sorted(i.name for i in w.workspace.items())
    assert names == ["result 1", "result 3"]
    xyz1, xyz3 = w.workspace.current().view_table().xyz, kept.view_table().xyz
    assert (((xyz1[:, None, :] - xyz3[None, :, :]) ** 2).sum(-1) ** 0.5).min() > 3.0  # side by side
    click(1)
    assert sorted(i.name for i in w.workspace.items()) == ["result 2", "result 3"]
    # the kept result is an ordinary object: selected, it is the product of a retrosynthesis
    w.workspace.set_current(kept.id)
    gen.generate.set_task("retro")
    assert gen.generate.request().engine_options()["smiles"] == Chem.MolToSmiles(Chem.MolFromSmiles(SMILES[2]))
    assert "result 3" in gen.generate.input_label.text()


def test_export_tag_and_finetune_file(qtbot, window, tmp_path, monkeypatch):
    _w, gen, _path = window
    from PySide6.QtCore import QItemSelectionModel

    sm = gen.results.view.selectionModel()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    sm.select(gen.results.model.index(0, 0), flags)
    sm.select(gen.results.model.index(2, 0), flags)
    ids = gen.results.selected_ids()
    assert ids == [1, 3]

    out = tmp_path / "picked.sdf"
    monkeypatch.setattr("logos_desktop.generation.controller.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(out), "SDF (*.sdf)"))
    gen.results.export_button.click()
    text = out.read_text()
    assert text.count("$$$$") == 2
    assert "<model_sha256>" in text and "ab" * 32 in text and "<seed>" in text

    gen.tag_rows(ids, "hit")
    assert gen.results.model.row(0).tags == ["hit"] and gen.results.model.row(1).tags == []
    with Project.open(gen.project_path) as p:
        assert p.count_results(ResultQuery(tags=["hit"])) == 2

    gen.results.finetune_button.click()
    dlg = gen.training_dialog
    assert "2 selected rows" in dlg.data_label.text()
    (rows_file,) = dlg.data_files()
    lines = [json.loads(x) for x in open(rows_file)]
    assert [x["record"] for x in lines] == [f"<MoleculeS>{SMILES[0]}<MoleculeE>", f"<MoleculeS>{SMILES[2]}<MoleculeE>"]
    assert rows_file.startswith(dlg.out_dir.text())
    dlg.close()


def test_run_left_running_by_a_dead_engine_is_marked_failed(qtbot, window):
    _w, gen, path = window
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)
    with Project.open(path) as p:  # what a killed engine leaves behind: a running run with one row
        run = p.start_run("molecule", "<MoleculeS>", {"n": 8}, 1)
        p.add_result(run, "<MoleculeS>CCO<MoleculeE>", smiles="CCO", valid=True)
    gen.job_submitted["gui-9"] = since
    from logos_desktop.generation.job_queue import Job

    gen.queue.add(Job("gui-9", "molecule", 8))
    gen._job_finished({"type": "finished", "job": "gui-9", "status": "failed",
                       "error": "the engine process exited (code -9)"})
    assert "exited (code -9)" in gen.jobs.rows["gui-9"].detail.text()
    with Project.open(path) as p:
        r = p.get_run(run)
        assert r.status == "failed" and "code -9" in r.error
        assert p.count_results(ResultQuery(run_id=run)) == 1
    assert gen.results.model.rowCount() == 4


def test_multi_select_compares_rows(qtbot, window):
    _w, gen, _path = window
    gen.results.view.selectAll()
    assert "Comparing 3 results" in gen.provenance.title.text()
    html = gen.provenance.text.toHtml()
    assert html.count("data:image/png;base64") == 3 and "qed" in html
    assert not gen.provenance.rerun_button.isEnabled()


def test_dropping_a_project_opens_it_and_structures_go_to_the_workspace(qtbot, window, test_data):
    from tests.fixtures.gui_workspace import drop_files

    w, gen, path = window
    gen.close_project()
    drop_files(w, qtbot, [path, test_data / "structures" / "1ia1_ligand.sdf"])
    qtbot.waitUntil(lambda: gen.project is not None and len(w.workspace.items()) == 1, timeout=10000)
    assert gen.results.model.rowCount() == 3 and not w.error_log


def test_a_file_that_is_not_a_project_is_refused_and_the_open_one_stays(qtbot, window, tmp_path, test_data):
    _w, gen, path = window
    assert gen.open_project(test_data / "structures" / "1hvr.pdb") is False
    assert "not an SQLite database" in gen.notices[-1] and "1hvr.pdb" in gen.notices[-1]
    assert gen.project_path == path and gen.results.model.rowCount() == 3
    assert gen.open_project(tmp_path / "missing.logos") is False
    assert "no such project file" in gen.notices[-1]
