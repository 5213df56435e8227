"""Projects where users look for documents: File › New project, Open project, Recent projects; the
last project reopens on start with its rows; the window title names it; a ``--screenshot`` run
leaves the recent lists alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from engine.store.project import Project  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _add_rows(path, smiles):
    with Project.open(path) as p:  # as the engine process writes them
        run = p.start_run("molecule", "<MoleculeS>", {"n": len(smiles)}, 3)
        for s in smiles:
            p.add_result(run, f"<MoleculeS>{s}<MoleculeE>", smiles=s, valid=True, objects={"smiles": s})
        p.finish_run(run)


def _window(qtbot):
    from logos_desktop.main_window import MainWindow

    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _file_menu_titles(w):
    return [a.text().replace("&", "") for a in w.menus["File"].actions()]


def test_new_open_recent_and_the_last_project_reopens(qtbot, tmp_path, monkeypatch):
    from engine import paths

    first, second = tmp_path / "screening.logos", tmp_path / "retro-ideas.logos"
    w = _window(qtbot)
    gen = w.generation
    assert w.windowTitle() == "LOGOS Desktop" and gen.project is None  # a fresh data directory
    titles = _file_menu_titles(w)
    assert titles[:3] == ["New project…", "Open project…", "Recent projects"]
    assert not gen.recent_projects_menu.isEnabled()

    # File › New project: the file dialog answers with a name without the suffix
    monkeypatch.setattr("logos_desktop.generation.controller.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(first.with_suffix("")), "LOGOS projects (*.logos)"))
    gen.new_project_action.trigger()
    assert first.is_file() and gen.project_path == first
    assert w.windowTitle() == "screening.logos — LOGOS Desktop"
    _add_rows(first, ["CCO", "c1ccccc1O", "CC(=O)O"])
    gen.results.model.refresh()
    assert gen.results.model.rowCount() == 3

    # File › Open project
    Project.open(second, create=True).close()
    _add_rows(second, ["CCN"])
    monkeypatch.setattr("logos_desktop.generation.controller.QFileDialog.getOpenFileName",
                        lambda *a, **k: (str(second), "LOGOS projects (*.logos)"))
    gen.open_project_action.trigger()
    assert gen.project_path == second and w.windowTitle() == "retro-ideas.logos — LOGOS Desktop"
    assert gen.results.model.rowCount() == 1
    recent = gen.recent_projects_menu.actions()
    assert [a.data() for a in recent] == [str(second.resolve()), str(first.resolve())]
    assert recent[1].text().startswith("screening.logos")

    # File › Recent projects › screening.logos
    recent[1].trigger()
    assert gen.project_path.resolve() == first.resolve() and gen.results.model.rowCount() == 3
    w.close()

    # a restart: the last project is open again, with its rows, and named in the title
    w2 = _window(qtbot)
    gen2 = w2.generation
    assert gen2.project_path is not None and gen2.project_path.resolve() == first.resolve()
    assert gen2.results.model.rowCount() == 3
    assert "screening.logos" in gen2.project_label.text()
    assert w2.windowTitle() == "screening.logos — LOGOS Desktop"
    w2.close()

    # a moved project is skipped; with none left, the default project (earlier results) opens
    first.unlink()
    second.unlink()
    default = paths.data_dir() / "projects" / "untitled.logos"
    default.parent.mkdir(parents=True, exist_ok=True)
    Project.open(default, create=True).close()
    _add_rows(default, ["CCCl", "CCBr"])
    w3 = _window(qtbot)
    assert w3.generation.project_path == default and w3.generation.results.model.rowCount() == 2
    w3.close()


def test_a_screenshot_run_leaves_the_recent_lists_alone(qtbot, tmp_path, test_data):
    from engine import paths

    data = paths.data_dir()
    old = tmp_path / "old.logos"
    Project.open(old, create=True).close()
    # the user's state: one recent project and one recent structure file
    w = _window(qtbot)
    w.generation.open_project(old)
    w.open_paths([str(test_data / "structures" / "1ia1_ligand.sdf")])
    w.close()
    lists = {name: (data / name).read_text() for name in ("recent_projects.json", "recent_files.json")}
    assert json.loads(lists["recent_projects.json"]) == [str(old.resolve())]

    shot_project = tmp_path / "shot.logos"
    Project.open(shot_project, create=True).close()
    _add_rows(shot_project, ["CCO"])
    out = tmp_path / "shot.png"
    env = dict(os.environ, LOGOS_DATA_DIR=str(data), LIBGL_ALWAYS_SOFTWARE="1")
    proc = subprocess.run([sys.executable, "-m", "logos_desktop", "--no-engine", "--screenshot", str(out),
                           str(shot_project), str(test_data / "structures" / "1hvr.pdb")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file() and out.stat().st_size > 10000
    assert {name: (data / name).read_text() for name in lists} == lists
    # and the window of that run showed the project it was given, not the user's last one
    w2 = _window(qtbot)
    assert w2.generation.project_path.resolve() == old.resolve()
    w2.close()
