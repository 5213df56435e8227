"""The first-run welcome in the empty 3D view: the shipped examples open through the normal load
path (as File › Open), the view is fitted to them, and the welcome comes back when the workspace is
empty again; one hint per task of the catalogue."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from engine import paths

ROOT = Path(__file__).resolve().parents[2]


def test_examples_are_shipped_with_their_sources_and_installed_by_the_package(test_data):
    examples = paths.examples()
    assert sorted(e["kind"] for e in examples) == ["complex", "material", "molecule"]
    sources = (paths.examples_dir() / "SOURCES.md").read_text()
    listed = json.loads((paths.examples_dir() / "examples.json").read_text())
    assert len(listed) == len(examples)  # every listed file is present
    for e in examples:
        assert e["file"] in sources, f"{e['file']} has no source in resources/examples/SOURCES.md"
        # the same bytes as the test fixture whose source tests/data/SOURCES.md names
        assert e["path"].read_bytes() == (test_data / "structures" / e["file"]).read_bytes()
    # a wheel installs resources/examples where examples_dir() looks for them
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    assert data_files[str(paths.INSTALLED_EXAMPLES)] == ["resources/examples/*"]
    assert all(p.parent == ROOT / "resources" / "examples" for p in (e["path"] for e in examples))


def test_installed_examples_are_found_under_the_prefix(tmp_path, monkeypatch):
    """Without a checkout's resources folder, the examples come from <prefix>/share/logos-desktop."""
    import shutil
    import sys

    shutil.copytree(ROOT / "resources" / "examples", tmp_path / paths.INSTALLED_EXAMPLES)
    monkeypatch.setenv("LOGOS_RESOURCES_DIR", str(tmp_path / "no-checkout"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert paths.examples_dir() == tmp_path / paths.INSTALLED_EXAMPLES
    assert [e["path"].parent for e in paths.examples()] == [tmp_path / paths.INSTALLED_EXAMPLES] * 3


from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true


def _fitted(window, item) -> tuple[float, float]:
    """(share of the atoms on screen, the larger of their width/height spans as a share of the view)."""
    view = window.view3d
    w, h = view.render_window.GetSize()
    xy = view.project(item.view_table().xyz)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w) & (xy[:, 1] >= 0) & (xy[:, 1] <= h)
    span = max((xy[:, 0].max() - xy[:, 0].min()) / w, (xy[:, 1].max() - xy[:, 1].min()) / h)
    return float(inside.mean()), float(span)


def test_welcome_opens_each_example_and_comes_back_when_empty(window, qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    from engine.tasks.registry import TASKS, get_task
    from logos_desktop.generation.task_catalog import WHAT_TO_SELECT, TaskCatalog
    from tests.fixtures.gui_workspace import drawn_fraction

    welcome, view = window.welcome, window.view3d
    assert not window.workspace.items()
    assert welcome.isVisible() and not view.vtk_widget.isVisible()
    window.window_image().save(str(tmp_path / "welcome.png"))
    # one hint per task of the engine's registry, saying what the catalogue says it needs
    assert list(welcome.hints) == list(TASKS)
    catalog = TaskCatalog()
    for name, need in welcome.hints.items():
        kind = catalog.input_kind(name)
        if kind is None:
            assert need.startswith("No input needed") and get_task(name).description[1:].rstrip(".") in need
        else:
            assert need[1:] == WHAT_TO_SELECT[kind][1:]
        assert welcome.findChild(QLabel, f"hint-{name}").isVisible()

    expected = {"complex": ("complex", "1hvr"), "molecule": ("molecule", "TQ3"), "material": ("crystal", "FUDQIF")}
    for kind, (obj_kind, name_part) in expected.items():
        button = welcome.buttons[kind]
        assert button.isVisible()
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(window.workspace.items()) == 1, timeout=20000)
        item = window.workspace.items()[0]
        assert item.kind == obj_kind and name_part.lower() in item.name.lower(), (item.kind, item.name)
        assert Path(item.obj.source) == welcome.example_path(kind)
        assert str(Path(item.obj.source).resolve()) in window.recent_files()  # the File › Open path
        qtbot.waitUntil(lambda: not welcome.isVisible() and view.vtk_widget.isVisible(), timeout=5000)
        # fitted to the view: every atom on screen, and the object fills a good part of it
        window.workspace.wait_for_tables(timeout=20)
        qtbot.wait(50)
        on_screen, span = _fitted(window, item)
        assert on_screen == 1.0 and span > 0.5, (kind, on_screen, span)
        assert drawn_fraction(view.image_array()) > 0.01, kind
        window.window_image().save(str(tmp_path / f"opened-{kind}.png"))
        window.remove_item(item.id)
        qtbot.waitUntil(lambda: welcome.isVisible() and not view.vtk_widget.isVisible(), timeout=5000)
        assert not window.workspace.items()
