"""New results are selected and scrolled into view when their run ends; the Run header sorts the
newest run first on its first click; the run filter shows one run."""

from __future__ import annotations

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from engine.store.project import Project  # noqa: E402

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "CC(=O)Nc1ccc(O)cc1", "c1ccccc1O", "CCO"]


def _add_run(path, task, n, smiles_offset=0):
    with Project.open(path) as p:
        run = p.start_run(task, "<MoleculeS>", {"n": n}, 7)
        ids = [p.add_result(run, f"<MoleculeS>{s}<MoleculeE>", smiles=s, valid=True, objects={"smiles": s})
               for s in (SMILES[(i + smiles_offset) % len(SMILES)] for i in range(n))]
        p.finish_run(run)
    return run, ids


@pytest.fixture
def window(qtbot, tmp_path):
    from logos_desktop.main_window import MainWindow

    path = tmp_path / "newest.logos"
    Project.open(path, create=True).close()
    _add_run(path, "molecule", 40)
    w = MainWindow(start_engine=False)
    w.resize(1400, 900)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.generation.open_project(path)
    yield w, w.generation, path
    w.close()


def _visible_rows(view):
    vp = view.viewport().rect()
    return [r for r in range(view.model().rowCount()) if vp.intersects(view.visualRect(view.model().index(r, 1)))]


def test_a_finished_run_is_selected_and_scrolled_into_view(qtbot, window):
    from PySide6.QtCore import QPoint, Qt

    from logos_desktop.generation.job_queue import Job

    w, gen, path = window
    table = gen.results
    assert table.model.rowCount() == 40 and 39 not in _visible_rows(table.view)
    # the engine stores a second run (another connection, as the engine process does) and ends it
    run, ids = _add_run(path, "retro", 5, smiles_offset=2)
    gen.queue.add(Job("j2", "retro", 5))
    gen.job_runs["j2"] = run
    # while the run goes on, its first stored row is scrolled into view (the selection is left alone)
    table.view.selectRow(0)
    for i, rid in enumerate(ids[:2]):
        gen.bridge.result.emit({"type": "result", "job": "j2", "index": i, "result_id": rid, "valid": True})
    qtbot.waitUntil(lambda: table.model.rowCount() == 45, timeout=5000)
    qtbot.waitUntil(lambda: table.model.locate(ids[0]) in _visible_rows(table.view), timeout=5000)
    assert table.selected_ids() == [1]
    gen.bridge.finished.emit({"type": "finished", "job": "j2", "status": "finished"})
    qtbot.waitUntil(lambda: table.model.rowCount() == 45, timeout=5000)
    assert table.selected_ids() == [ids[0]]
    assert table.model.locate(ids[0]) in _visible_rows(table.view)
    assert w.workspace.current().name == f"result {ids[0]}"  # shown in the views
    assert gen.provenance.provenance.run_id == run

    # the run filter lists both runs, newest first, and shows one run
    labels = [table.run_filter.itemText(i) for i in range(table.run_filter.count())]
    assert labels == ["All runs", f"run {run} · retro · 5 rows", "run 1 · molecule · 40 rows"]
    table.run_filter.setCurrentIndex(2)
    assert table.model.rowCount() == 40 and {table.model.row(i).run_id for i in range(40)} == {1}
    table.run_filter.setCurrentIndex(1)
    assert table.model.rowCount() == 5 and {table.model.row(i).run_id for i in range(5)} == {run}
    table.run_filter.setCurrentIndex(0)
    assert table.model.rowCount() == 45

    # a click on the Run header: the newest run first
    header = table.view.horizontalHeader()
    from logos_desktop.generation.results_model import COL

    table.view.scrollTo(table.model.index(0, COL["Run"]))
    at = QPoint(header.sectionViewportPosition(COL["Run"]) + header.sectionSize(COL["Run"]) // 2, 5)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder, timeout=2000)
    assert header.sortIndicatorSection() == COL["Run"]
    runs = [table.model.row(i).run_id for i in range(45)]
    assert runs[:5] == [run] * 5 and runs == sorted(runs, reverse=True)
    # a second click: oldest first
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert [table.model.row(i).run_id for i in range(45)][0] == 1
