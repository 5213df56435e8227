"""The workspace window: drop real files, see them listed and drawn, select, measure, bad files.

Run under Xvfb with software OpenGL:
    LIBGL_ALWAYS_SOFTWARE=1 xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest tests/gui
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

from tests.fixtures.gui_workspace import (  # noqa: E402
    drawn_fraction, drop_files, load, qt_pos_of_atom,
)


def test_drawn_fraction_fails_on_black_and_background_images():
    from logos_desktop.widgets.qt_view3d import BACKGROUND

    black = np.zeros((100, 100, 3), np.uint8)
    bg = np.tile(np.array(BACKGROUND) * 255, (100, 100, 1)).astype(np.uint8)
    assert drawn_fraction(black) == 0.0
    assert drawn_fraction(bg) == 0.0
    bg[10:30, 10:30] = (200, 200, 200)
    assert drawn_fraction(bg) == pytest.approx(0.04)


def test_drop_several_files_lists_and_draws_them(window, qtbot, test_data):
    files = [test_data / "structures" / "1ia1_ligand.sdf", test_data / "structures" / "1hvr.pdb",
             test_data / "reliability" / "NaCl.cif"]
    drop_files(window, qtbot, files)
    qtbot.waitUntil(lambda: len(window.workspace.items()) == 3, timeout=30000)
    rows = {r[0]: r for r in window.tree.row_texts()}
    assert rows["TQ3"][1:3] == ["molecule", "19"]
    assert rows["1hvr"][1:4] == ["complex", "1,890", "199"]
    assert rows["1000041"][1] == "crystal" and rows["1000041"][4] == "8"
    assert window.error_log == []
    # the 3D view shows them: a good share of its pixels are neither background nor black
    assert drawn_fraction(window.view3d.image_array()) > 0.02
    # the protein came with its ligand's pocket marked, and the 2D panel lists it
    prot = next(i for i in window.workspace.items() if i.name == "1hvr")
    assert ("A", "25") in prot.pocket and ("B", "25") in prot.pocket  # the catalytic aspartates
    window.workspace.set_current(prot.id)
    assert window.view2d.stack.currentWidget() is window.view2d.sequence
    text = window.view2d.sequence.toPlainText()
    assert "Pocket residues" in text and "A:ASP25" in text and "B:ASP25" in text


def test_each_view_style_draws(window, qtbot, test_data):
    from logos_desktop.render.vtk_protein import secondary_structure

    mol = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")[0]
    prot = load(window, qtbot, test_data / "structures" / "1hvr.pdb")[0]
    sse = secondary_structure(prot.obj.structure)  # from the file's HELIX/SHEET records
    assert sse[("A", 87)] == "H" and sse[("A", 45)] == "E" and ("A", 27) not in sse  # Gly27: active-site loop
    for item, styles in ((mol, ("ball-and-stick", "sticks", "spacefill")), (prot, ("tube", "trace", "sticks", "spacefill"))):
        window.workspace.set_visible(mol.id, item is mol)
        window.workspace.set_visible(prot.id, item is prot)
        for style in styles:
            window.workspace.set_style(item.id, style)
            window.fit_view()
            assert drawn_fraction(window.view3d.image_array()) > 0.01, (item.name, style)


def test_bad_files_each_reported_and_nothing_lost(window, qtbot, test_data, tmp_path):
    good = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")
    assert len(good) == 1
    bad_sdf = tmp_path / "broken.sdf"
    bad_sdf.write_text("this is not\na molecule\n$$$$\n")
    empty = tmp_path / "empty.pdb"
    empty.write_text("")
    binary = tmp_path / "noise.cif"
    binary.write_bytes(bytes(range(256)) * 8)
    missing = tmp_path / "gone.xyz"
    drop_files(window, qtbot, [bad_sdf, test_data / "reliability" / "NaCl.cif", empty, binary, missing])
    qtbot.waitUntil(lambda: len(window.error_log) == 4, timeout=30000)
    assert [i.name for i in window.workspace.items()] == ["TQ3", "1000041"]
    for path, msg in zip((bad_sdf, empty, binary, missing), window.error_log):
        assert str(path) in msg  # each message names its file and says why
        assert len(msg) > len(str(path)) + 5
    assert "empty" in window.error_log[1]
    qtbot.waitUntil(lambda: window._error_box is not None and window._error_box.isVisible())
    assert not window._error_box.isModal()
    assert "broken.sdf" in window._error_box.informativeText()
    assert window.workspace.items()[0].obj.mol.GetNumAtoms() == 19


def test_paste_smiles_and_recent_files(window, qtbot, test_data):
    items = window.workspace.open_text("CC(=O)Oc1ccccc1C(=O)O")
    assert len(items) == 1 and items[0].kind == "molecule"
    assert items[0].summary()["atoms"] == 13
    assert window.workspace.open_text("definitely ((( not smiles") == []
    assert window.error_log and "pasted" in window.error_log[-1].lower()
    path = test_data / "structures" / "1hvr.pdb"
    load(window, qtbot, path)
    assert window.recent_files()[0] == str(path.resolve())
    assert window.recent_menu.actions()[0].text() == str(path.resolve())


def test_click_selects_atom_and_measures_distance_angle(window, qtbot, test_data):
    from PySide6.QtCore import QPoint, Qt

    item = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")[0]
    window.workspace.set_style(item.id, "ball-and-stick")
    window.fit_view()
    table = item.table()
    a, b = (int(x) for x in table.bonds[0])
    c = next(int(j) for i, j in table.bonds if int(i) == b and int(j) != a) if any(
        int(i) == b and int(j) != a for i, j in table.bonds) else next(
        int(i) for i, j in table.bonds if int(j) == b and int(i) != a)
    widget = window.view3d.vtk_widget
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=qt_pos_of_atom(window, item, a))
    assert window.workspace.selection == [(item.id, a)]
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     pos=qt_pos_of_atom(window, item, b))
    assert window.workspace.selection == [(item.id, a), (item.id, b)]
    expected = float(np.linalg.norm(table.xyz[a] - table.xyz[b]))
    assert window.measurements[-1].startswith("distance")
    assert f"{expected:.3f} Å" in window.measurements[-1]
    assert 1.0 < expected < 2.0  # a real bond
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     pos=qt_pos_of_atom(window, item, c))
    assert window.measurements[-1].startswith("angle")
    value = float(window.measurements[-1].rsplit(":", 1)[1].split()[0])
    assert 100.0 < value < 130.0  # a bond angle at an sp2/sp3 atom
    # clicking empty background clears the selection
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(3, 3))  # (0, 0) would mean "centre"
    assert window.workspace.selection == []


def test_rubber_band_selects_every_atom_inside(window, qtbot, test_data):
    from PySide6.QtCore import QPoint, Qt

    item = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")[0]
    window.fit_view()
    widget = window.view3d.vtk_widget
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(3, 3))
    qtbot.mouseMove(widget, QPoint(widget.width() - 3, widget.height() - 3))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                       QPoint(widget.width() - 3, widget.height() - 3))
    assert sorted(a for _, a in window.workspace.selection) == list(range(19))
    # a band over the left half only takes fewer atoms
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(3, 3))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                       QPoint(widget.width() // 2, widget.height() - 3))
    assert 0 < len(window.workspace.selection) < 19
    assert item.id == window.workspace.selection[0][0]


def test_residue_selection_mode_and_labels(window, qtbot, test_data):
    from PySide6.QtCore import Qt

    item = load(window, qtbot, test_data / "structures" / "1hvr.pdb")[0]
    window.fit_view()
    table = item.view_table()
    # the trace atom standing most apart on screen (nothing else drawn in front of it)
    pickable = window.view3d.layers[item.id].pickable
    xy = window.view3d.project(table.xyz[pickable])
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    cas = [k for k, i in enumerate(pickable) if table.atom_names[i].strip() == "CA"]
    ca = int(pickable[max(cas, key=lambda k: gaps[k].min())])
    window.select_mode.setCurrentText("residue")
    qtbot.mouseClick(window.view3d.vtk_widget, Qt.MouseButton.LeftButton, pos=qt_pos_of_atom(window, item, ca))
    picked = {(table.chains[a], int(table.res_nums[a])) for _, a in window.workspace.selection}
    assert picked == {(table.chains[ca], int(table.res_nums[ca]))}  # the whole residue, nothing else
    assert len(window.workspace.selection) > 3
    before = drawn_fraction(window.view3d.image_array())
    window.view3d.set_labels(residues=True)
    assert window.view3d._labels
    assert drawn_fraction(window.view3d.image_array()) > before


def test_big_structure_first_frame_is_a_trace_then_full_detail(window, qtbot, test_data, monkeypatch):
    from logos_desktop import workspace

    monkeypatch.setattr(workspace, "BIG_STRUCTURE", 1000)
    item = load(window, qtbot, test_data / "structures" / "1hvr.pdb")[0]
    assert item.is_big()
    assert item._quick is not None and len(item._quick) < 1890  # the first frame: CA atoms and the ligand
    assert drawn_fraction(window.view3d.image_array()) > 0.005
    qtbot.waitUntil(item.has_table, timeout=60000)
    assert len(item.view_table()) == 1890
    # dragging swaps in the cheap stand-in, releasing restores full detail
    window.workspace.set_style(item.id, "spacefill")
    layer = window.view3d.layers[item.id]
    assert layer.standin is None or all(not a.GetVisibility() for a in layer.standin)
    window.view3d._drag_started()
    if layer.standin:
        assert all(a.GetVisibility() for a in layer.standin)
        assert not any(a.GetVisibility() for a in layer.actors)
    window.view3d._drag_ended()
    assert all(a.GetVisibility() for a in layer.actors)
    # closing the window leaves no worker thread behind
    import threading

    window.close()
    assert window.workspace._pool is None
    assert not [t for t in threading.enumerate() if t.name.startswith("atom-table")]


def test_export_structure_image_and_save_session(window, qtbot, test_data, tmp_path):
    from engine.structures import io

    load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")
    out = tmp_path / "out.sdf"
    assert window.export_structure(str(out))
    again = io.read_file(out)
    assert again[0].mol.GetNumAtoms() == 19
    png = tmp_path / "view.png"
    assert window.export_image(str(png))
    from PySide6.QtGui import QImage

    img = QImage(str(png))
    assert img.width() > 100 and img.height() > 100
    load(window, qtbot, test_data / "structures" / "1hvr.pdb")
    project = tmp_path / "session.logos"
    assert window.save_to_project(str(project)) == 2
    # the session comes back from the project file, in a fresh workspace
    window.workspace.clear()
    items = window.open_paths([project])
    assert [(i.name, i.kind, i.summary()["atoms"]) for i in items] == [
        ("TQ3", "molecule", 19), ("1hvr", "complex", 1890)]


def test_window_image_composites_the_3d_view(window, qtbot, test_data):
    from PySide6.QtCore import QPoint

    load(window, qtbot, test_data / "structures" / "1hvr.pdb")
    image = window.window_image()
    assert (image.width(), image.height()) == (window.width(), window.height())
    w = window.view3d.vtk_widget
    top_left = w.mapTo(window, QPoint(0, 0))
    region = image.copy(top_left.x(), top_left.y(), w.width(), w.height())
    from PySide6.QtGui import QImage

    region = region.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(region.constBits(), np.uint8, region.bytesPerLine() * region.height())
    arr = arr.reshape(region.height(), region.bytesPerLine())[:, : region.width() * 3].reshape(region.height(), region.width(), 3)
    assert drawn_fraction(arr) > 0.02  # the protein, read from the render window, is in the picture


def test_screenshot_command_line(qtbot, test_data, tmp_path):
    from PySide6.QtGui import QImage

    from logos_desktop import app

    out = tmp_path / "shot.png"
    assert app.main(["--no-engine", "--screenshot", str(out), str(test_data / "structures" / "1ia1_ligand.sdf")]) == 0
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1400, 900)


@pytest.mark.slow
def test_every_fixture_format_opens_and_draws_or_says_why(window, qtbot, test_data):
    """Every real fixture file of the structures and reliability areas, dropped together: each is
    listed and drawn (sequences have no atoms to draw), or reported with its file name."""
    files = sorted(p for folder in ("structures", "reliability") for p in (test_data / folder).iterdir()
                   if p.is_file() and p.suffix != ".md")
    assert len(files) >= 15
    drop_files(window, qtbot, files)
    qtbot.waitUntil(lambda: len({str(i.obj.source) for i in window.workspace.items()}) + len(window.error_log)
                    >= len(files), timeout=120000)
    opened = {str(i.obj.source) for i in window.workspace.items()}
    for f in files:
        assert str(f) in opened or any(str(f) in m for m in window.error_log), f
    kinds = {i.kind for i in window.workspace.items()}
    assert {"molecule", "complex", "crystal", "sequence"} <= kinds
    drawn = 0
    for item in window.workspace.items():
        for other in window.workspace.items():
            window.workspace.set_visible(other.id, other is item)
        if item.kind == "sequence":
            continue
        window.fit_view()
        assert drawn_fraction(window.view3d.image_array()) > 0.003, (item.name, item.obj.source)
        drawn += 1
    assert drawn >= 15
