"""Docking in the window, driven as a user would: the Vina column and PoseBusters badges, Dock
selected (a real ``logos dock`` through QProcess, and Cancel), the pose in the pocket with its
interaction lines, the run summary with the paper's metric, the histograms and the map.

The docked rows are real docking results (tests/data/docking: engine.docking on 1HVR/XK2) stored
through the project API, so only the end-to-end tests wait for Vina.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

from tests.fixtures.required import require_module

require_module("PySide6", allow_module_level=True)  # fails under CI=true
require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from engine.docking import paper_metric  # noqa: E402
from engine.store.project import Project  # noqa: E402
from engine.store.queries import ResultQuery  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
NICOTINE = "CN1CCC[C@H]1c1cccnc1"
XK2 = {"chain": "A", "name": "XK2", "number": 263}


def _events(test_data):
    return json.loads((test_data / "docking" / "1hvr_xk2_events.json").read_text())


@pytest.fixture(scope="module")
def template(tmp_path_factory, test_data):
    """A ligand-design run on 1HVR (input stored, pocket = ligand XK2) whose candidates were docked:
    four real docked results, one whose pose clashes with the protein (PoseBusters fails), two
    valid candidates not docked yet and one invalid sample."""
    from rdkit import Chem

    from engine.tasks.scoring import drug_scores

    fx = _events(test_data)
    events = fx["events"]
    receptor = events[0]
    pdb = (test_data / "structures" / "1hvr.pdb").read_bytes()
    path = tmp_path_factory.mktemp("docking") / "docked.logos"
    ids = {}
    with Project.open(path, create=True) as p:
        inp = p.add_input(pdb, "pdb", "1hvr.pdb")
        run = p.start_run("ligand", "<ProteinS>…<MoleculeS>", {"n": 8, "options": {"ligand": "XK2"}}, 1234,
                          input_ids=[inp])

        def add(smiles, valid=True):
            scores = drug_scores(Chem.MolFromSmiles(smiles)) if valid else None
            return p.add_result(run, f"<MoleculeS>{smiles}<MoleculeE>", smiles=smiles, valid=valid,
                                scores=scores, reasons=() if valid else ["SMILES does not parse"],
                                objects={"pocket": ["A:ASP25", "B:ASP25"], "ligand": XK2})

        docked = [e for e in events if e["type"] == "result" and e["index"] > 0]
        for ev in docked:
            ids[ev["index"]] = add(ev["smiles"])
        clash = fx["clashing_pose"]
        ids["clash"] = add(clash["smiles"])
        ids["aspirin"] = add(ASPIRIN)
        ids["nicotine"] = add(NICOTINE)
        ids["invalid"] = add("C1CC(", valid=False)
        dock = p.start_docking(pdb, "pdb", "1hvr.pdb", receptor["box"], {"exhaustiveness": 1, "n_poses": 3},
                               {}, {"summary": receptor["summary"]}, reference=receptor["reference"], run_id=run)
        for ev in docked:
            p.add_docked(ids[ev["index"]], dock, ev)
        pose = {"rank": 1, "score": clash["score"], "rmsd": None, "molblock": clash["molblock"],
                "checks": clash["checks"], "interactions": clash["interactions"]}
        p.add_docked(ids["clash"], dock, {"smiles": clash["smiles"], "score": clash["score"], "rmsd": None,
                                          "checks": clash["checks"], "poses": [pose]})
        p.set_docking_reference(dock, next(e for e in events if e["type"] == "result" and e["index"] == 0))
        p.finish_docking(dock, "finished")
        p.finish_run(run)
    return path, ids, run


@pytest.fixture
def docked(template, tmp_path):
    path, ids, run = template
    copy = tmp_path / "docked.logos"
    shutil.copy(path, copy)
    return copy, ids, run


@pytest.fixture
def win(qtbot, docked, tmp_path, monkeypatch):
    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    monkeypatch.setenv("LOGOS_CACHE_DIR", str(tmp_path / "cache"))  # the receptor files written for docking
    from logos_desktop.main_window import MainWindow

    path, ids, run = docked
    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.generation.open_project(path)
    yield w, ids, run, path
    w.close()


def _row_of(panel, result_id):
    r = panel.model.locate(result_id)
    assert r is not None, f"result {result_id} not in the table"
    return r


def _click_row(qtbot, panel, result_id, modifier=Qt.KeyboardModifier.NoModifier):
    from logos_desktop.generation.results_model import COL

    r = _row_of(panel, result_id)
    panel.view.scrollTo(panel.model.index(r, 0))
    rect = panel.view.visualRect(panel.model.index(r, COL["#"]))
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def _cell(panel, result_id, title, role=Qt.ItemDataRole.DisplayRole):
    from logos_desktop.generation.results_model import COL

    return panel.model.data(panel.model.index(_row_of(panel, result_id), COL[title]), role)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _group_alive(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in the process group (read from /proc)."""
    alive = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(d))
    return alive


def test_vina_column_sorts_through_the_store_and_badges_explain_failures(qtbot, win, test_data):
    w, ids, _run, _path = win
    panel = w.generation.results
    from logos_desktop.generation.results_model import COL

    events = {e["index"]: e for e in _events(test_data)["events"] if e["type"] == "result"}
    assert _cell(panel, ids[2], "Vina") == "-9.39"
    assert _cell(panel, ids[2], "PoseBusters") == "✔ passes"
    assert _cell(panel, ids["clash"], "PoseBusters") == "✘ fails"
    assert _cell(panel, ids["aspirin"], "Vina") == "" and _cell(panel, ids["aspirin"], "PoseBusters") == ""
    tip = _cell(panel, ids["clash"], "PoseBusters", Qt.ItemDataRole.ToolTipRole)
    assert "fails 2 of 22 PoseBusters checks" in tip
    assert "clash with the protein" in tip and "overlaps the protein's volume" in tip
    assert "passes every PoseBusters check (22)" in _cell(panel, ids[1], "PoseBusters", Qt.ItemDataRole.ToolTipRole)
    # a click on the Vina header sorts through the store's score index: best (lowest) first
    header = panel.view.horizontalHeader()
    x = header.sectionViewportPosition(COL["Vina"]) + header.sectionSize(COL["Vina"]) // 2
    before = panel.model.page_queries
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    assert panel.model.sort_key == "score:vina"
    if panel.model.descending:  # Qt may start a new sort column descending: a second click turns it
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    assert not panel.model.descending
    shown = [panel.model.row(i) for i in range(panel.model.rowCount())]
    assert panel.model.page_queries > before
    scored = [r.scores["vina"] for r in shown if "vina" in r.scores]
    assert scored == sorted(scored) and scored[0] == events[2]["score"] == -9.386
    assert len(scored) == 5 and shown[len(scored)].smiles in (ASPIRIN, NICOTINE)  # undocked rows last
    assert shown[len(scored) - 1].id == ids["clash"]  # the clash scores +57.6


def test_pose_in_the_pocket_with_interaction_lines_and_pose_stepper(qtbot, win, test_data):
    w, ids, _run, _path = win
    from logos_desktop.docking.controller import FADED
    from logos_desktop.render.vtk_docking import colour_of
    from tests.fixtures.gui_workspace import drawn_fraction

    d = w.docking
    panel = w.generation.results
    assert not w.workspace.items()
    _click_row(qtbot, panel, ids[1])  # saquinavir-like candidate: 8 interactions, one salt bridge
    # the receptor the poses belong to was loaded from the project (nothing was open), ligand faded
    receptor = next(i for i in w.workspace.items() if i.obj.structure is not None)
    assert receptor.ligand_opacity == FADED
    pose_item = w.workspace.current()
    assert pose_item.name == f"result {ids[1]} · pose 1" and pose_item.obj.mol.GetNumConformers() == 1
    stored = w.generation.project.poses(ids[1])
    want = [it for it in stored[0].interactions if it["ligand_xyz"] and it["protein_xyz"]]
    assert len(want) == 8 and {it["type"] for it in want} >= {"HBAcceptor", "HBDonor", "Cationic", "Hydrophobic"}
    assert d.drawn_interactions == want
    extras = w.view3d.extras["docking"]
    lines = extras[0].GetMapper().GetInputAlgorithm().GetInput()  # the dashes, before the tube filter
    assert lines.GetNumberOfLines() >= 3 * len(want)
    labels = extras[1:]
    assert sum(a.GetMapper().GetInput().GetNumberOfPoints() for a in labels) == len(
        {(it["residue"], colour_of(it["type"])) for it in want})
    assert "A:ARG8" in [d.panel.interactions.item(r, 1).text() for r in range(d.panel.interactions.rowCount())]
    assert d.panel.interactions.rowCount() == len(stored[0].interactions)
    assert "pose 1 of 1" in d.panel.pose_title.text() and "−9.36" in d.panel.pose_title.text()
    # the dashed H-bond line is drawn: its colour is in the 3D view around the line's middle
    w.view3d.render()
    img = w.view3d.image_array()
    assert drawn_fraction(img) > 0.3
    hb = next(it for it in want if it["type"] == "HBAcceptor")
    mid = (np.asarray(hb["ligand_xyz"]) + np.asarray(hb["protein_xyz"])) / 2
    x, y = w.view3d.project(mid[None])[0]
    h = img.shape[0]
    patch = img[max(0, int(h - y) - 6):int(h - y) + 6, max(0, int(x) - 6):int(x) + 6].reshape(-1, 3).astype(int)
    target = np.array(colour_of("HBAcceptor")) * 255
    assert np.abs(patch - target).sum(axis=1).min() < 90, "no H-bond-coloured pixel at the line"
    # a result with several poses: step through them with the buttons
    _click_row(qtbot, panel, ids[2])
    poses = w.generation.project.poses(ids[2])
    assert len(poses) == 2 and "pose 1 of 2" in d.panel.pose_title.text()
    assert d.panel.next_button.isEnabled() and not d.panel.prev_button.isEnabled()
    qtbot.mouseClick(d.panel.next_button, Qt.MouseButton.LeftButton)
    assert w.workspace.current().name == f"result {ids[2]} · pose 2"
    assert "pose 2 of 2" in d.panel.pose_title.text() and f"{poses[1].score:.2f}".replace("-", "−") in \
        d.panel.pose_title.text()
    assert not d.panel.next_button.isEnabled()
    # the clashing pose: its failures are listed beside it
    _click_row(qtbot, panel, ids["clash"])
    assert "fails 2 PoseBusters checks" in d.panel.checks.text() and "clash with the protein" in d.panel.checks.text()
    # a candidate that was not docked: the docking scene goes, the reference ligand is shown again
    _click_row(qtbot, panel, ids["aspirin"])
    assert "docking" not in w.view3d.extras and receptor.ligand_opacity == 1.0
    assert w.workspace.current().name == f"result {ids['aspirin']}"  # the undocked preview, as before
    assert len([i for i in w.workspace.items() if i.obj.structure is not None]) == 1  # receptor loaded once


def test_summary_histograms_and_map_click_selects_the_row(qtbot, win, test_data):
    w, ids, run, _path = win
    d = w.docking
    rows = w.generation.project.query_results(ResultQuery(run_id=run, limit=None)).rows
    vina = [r.scores["vina"] for r in rows if r.valid and "vina" in r.scores]
    ref = next(e for e in _events(test_data)["events"] if e["type"] == "result" and e["index"] == 0)
    assert d.panel.run_id == run and "5 docked" in d.panel.run_box.currentText()
    assert d.panel.metric_tile.value.text() == f"{paper_metric(vina):.2f}".replace("-", "−")  # the clash: +57.6
    assert d.panel.reference_tile.value.text() == "10.09" and "XK2" in d.panel.reference_tile.detail.text()
    assert f"RMSD {ref['rmsd']:.2f}" in d.panel.reference_tile.detail.text()
    assert d.panel.checks_tile.value.text() == "4/5"
    assert "CSO67" in d.panel.receptor.text() and d.panel.receptor.isVisible()
    qtbot.mouseClick(d.panel.pictures_button, Qt.MouseButton.LeftButton)
    pictures = d.panel.pictures
    qtbot.waitExposed(pictures)
    hist = d.panel.histograms
    assert sum(hist.bars["vina"].opts["height"]) == len(vina) == 5
    assert sum(hist.bars["qed"].opts["height"]) == sum(hist.bars["mw"].opts["height"]) == 7  # valid rows
    assert hist.reference_lines["vina"].value() == pytest.approx(-10.091)
    assert hist.reference_lines["mw"].value() == pytest.approx(606.77, abs=0.01)  # XK2
    assert d.wait_for_map(60)
    qtbot.wait(50)
    m = d.panel.map
    assert sorted(m.ids.tolist()) == sorted(r.id for r in rows if r.valid)
    assert len(m.reference.data) == 1  # the reference ligand's star
    undocked = [k for k, rid in enumerate(m.ids) if rid in (ids["aspirin"], ids["nicotine"])]
    assert len(undocked) == 2 and np.isnan(m.vina[undocked]).all()
    for target in (ids[4], ids["aspirin"]):
        pos = m.point_position(target)
        qtbot.mouseClick(m.viewport(), Qt.MouseButton.LeftButton, pos=pos.toPoint())
        qtbot.waitUntil(lambda target=target: w.generation.results.selected_ids() == [target], timeout=3000)
    ring = m.highlight.data
    assert len(ring) == 1 and (ring[0]["x"], ring[0]["y"]) == pytest.approx(
        tuple(m.xy[list(m.ids).index(ids["aspirin"])]))


def test_dock_selected_end_to_end_then_refused_input(qtbot, win, test_data):
    """A real `logos dock` through QProcess: two undocked rows selected, Dock selected in the
    context menu, progress in the Jobs dock, the receptor summary shown, the rows get their
    Vina score and PoseBusters badge as the results arrive."""
    w, ids, run, path = win
    d = w.docking
    panel = w.generation.results
    d.show_settings()
    d.panel.exhaustiveness.setValue(1)
    d.panel.poses.setValue(2)
    d.panel.cpus.setValue(1)
    d.panel.redock.setChecked(False)  # XK2 takes a minute to dock: the stored reference is kept
    _click_row(qtbot, panel, ids["aspirin"])
    _click_row(qtbot, panel, ids["nicotine"], Qt.KeyboardModifier.ControlModifier)
    assert sorted(panel.selected_ids()) == sorted([ids["aspirin"], ids["nicotine"]])
    rect = panel.view.visualRect(panel.model.index(_row_of(panel, ids["nicotine"]), 2))
    panel._context_menu(rect.center())  # what a right click on the row opens
    menu = panel.context_menu
    qtbot.waitExposed(menu)
    act = next(a for a in menu.actions() if a.objectName() == "context-dock")
    assert act.text() == "Dock selected (2)" and act.isEnabled()
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(act).center())
    job = next(iter(d.requests))
    j = w.generation.queue.get(job)
    assert j.kind == "dock" and j.total == 2
    assert "--results" in j.command and "--exhaustiveness 1" in j.command and "--ligand XK2" in j.command
    assert "--chain A --resnum 263" in j.command and "--redock" not in j.command and "--cpus 1" in j.command
    row = w.generation.jobs.rows[job]
    qtbot.waitUntil(lambda: "CSO67" in row.detail.text(), timeout=60000)  # the receptor summary, shown
    assert "removed the reference ligand XK2" in row.detail.text()
    qtbot.waitUntil(lambda: j.status in ("finished", "failed", "cancelled"), timeout=150000)
    assert j.status == "finished", (j.error, d.processes, d.messages)
    assert j.done == 2 and "2 of 2 ligands" in row.bar.format()
    for rid in (ids["aspirin"], ids["nicotine"]):
        qtbot.waitUntil(lambda rid=rid: _cell(panel, rid, "Vina") not in ("", None), timeout=5000)
        assert float(_cell(panel, rid, "Vina")) < 0
        assert _cell(panel, rid, "PoseBusters") in ("✔ passes", "✘ fails")
    with Project.open(path) as p:
        docking = p.dockings()[0]
        assert docking.status == "finished" and docking.run_id == run and docking.settings["exhaustiveness"] == 1
        assert len(p.poses(ids["aspirin"])) >= 1
    assert "7 docked" in d.panel.run_box.currentText()  # the summary followed
    # refused input, never blocking: nothing selected; rows with no receptor to dock into
    panel.view.clearSelection()
    qtbot.mouseClick(d.panel.dock_button, Qt.MouseButton.LeftButton)
    assert d.messages[-1] == "Select the results to dock in the Results table first."
    assert d.panel.message.isVisible() and len(d.requests) == 1
    with Project.open(path) as p:
        other = p.start_run("molecule", "<MoleculeS>", {"n": 1}, 1)
        lone = p.add_result(other, "<MoleculeS>CCO<MoleculeE>", smiles="CCO", valid=True)
    panel.model.refresh()
    _click_row(qtbot, panel, lone)
    qtbot.mouseClick(panel.dock_button, Qt.MouseButton.LeftButton)
    assert "has no protein structure stored" in d.messages[-1] and "select its ligand" in d.messages[-1]
    assert len(d.requests) == 1 and w.generation.project is not None and panel.model.rowCount() == 9


def test_cancel_stops_the_docking_and_its_workers_within_a_second(qtbot, win):
    w, ids, _run, _path = win
    d = w.docking
    panel = w.generation.results
    d.panel.exhaustiveness.setValue(32)
    d.panel.cpus.setValue(2)
    panel.view.selectAll()
    qtbot.mouseClick(panel.dock_button, Qt.MouseButton.LeftButton)
    job = next(iter(d.requests))
    proc = d.processes[job]
    pgid = proc.pid
    assert pgid and os.getpgid(pgid) == pgid  # its own process group: the workers go with it
    # wait until a worker process is docking (the command spawns its workers in its own group)
    qtbot.waitUntil(lambda: any("spawn_main" in _cmdline(q) for q in _group_alive(pgid)), timeout=60000)
    qtbot.waitUntil(lambda: w.generation.queue.get(job).status == "running", timeout=10000)
    row = w.generation.jobs.rows[job]
    t0 = time.monotonic()
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not _group_alive(pgid), timeout=1000)
    assert time.monotonic() - t0 < 1.0
    qtbot.waitUntil(lambda: w.generation.queue.get(job).status == "cancelled", timeout=3000)
    assert not row.cancel_button.isVisible()


def test_dock_after_the_run_and_settings_reach_the_command(qtbot, win, test_data):
    """The ligand task's "dock the valid results" box: when its run ends, `logos dock --run` is
    started with the scheduler and CPUs of the settings; an unreachable scheduler fails with the
    command's own reason, shown in the job and never blocking."""
    w, _ids, run, _path = win
    gen = w.generation
    d = w.docking
    complex_item = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])[0]
    w.workspace.set_current(complex_item.id)
    gen.generate.set_task("ligand")
    box = gen.generate.dock_after
    assert box.isVisibleTo(gen.generate)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    req = gen.generate.request()
    assert req.dock_after
    gen.generate.set_task("molecule")
    assert not box.isVisibleTo(gen.generate) and not gen.generate.request().dock_after
    d.show_settings()
    d.panel.scheduler.setText("tcp://127.0.0.1:9")  # nothing listens there
    d.panel.cpus.setValue(3)
    d.panel.redock.setChecked(False)
    # the generation job ends (the engine's finished event for the run it started)
    from logos_desktop.generation.job_queue import Job

    gen.queue.add(Job("gui-1", "ligand", 8))
    gen.dock_after["gui-1"] = req
    gen.job_runs["gui-1"] = run
    gen.bridge.finished.emit({"job": "gui-1", "status": "finished"})
    job = next(iter(d.requests))
    j = gen.queue.get(job)
    assert f"--run {run}" in j.command and "--scheduler tcp://127.0.0.1:9" in j.command and "--cpus 3" in j.command
    qtbot.waitUntil(lambda: j.status == "failed", timeout=60000)
    assert "Dask scheduler at tcp://127.0.0.1:9" in j.error
    assert "Dask scheduler" in gen.jobs.rows[job].detail.text() and "Docking failed" in d.messages[-1]
    assert gen.project is not None and gen.results.model.rowCount() == 8  # nothing lost
