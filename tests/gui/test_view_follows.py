"""The view follows what is loaded: molecules pasted as SMILES are laid side by side (not drawn on
top of each other at the origin), a complex opened after them is fitted, and result previews
replace each other in one place beside what is shown."""

from __future__ import annotations

import numpy as np

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true


def _paste(w, qtbot, text):
    from PySide6.QtWidgets import QApplication

    QApplication.clipboard().setText(text)
    before = len(w.workspace.items())
    w.actions_by_name["Paste SMILES or FASTA"].trigger()
    qtbot.waitUntil(lambda: len(w.workspace.items()) > before, timeout=5000)
    return w.workspace.items()[-1]


def _min_distance(a, b) -> float:
    xa, xb = a.view_table().xyz.astype(float), b.view_table().xyz.astype(float)
    return float(np.sqrt(((xa[:, None, :] - xb[None, :, :]) ** 2).sum(-1)).min())


def _on_screen_fraction(w, item) -> tuple[float, float]:
    """Share of the item's atoms drawn inside the 3D view, and the share of the view's width or
    height (the larger) its atoms span."""
    view = w.view3d
    view.render()
    xy = view.project(item.view_table().xyz)
    ww, hh = view.render_window.GetSize()
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= ww) & (xy[:, 1] >= 0) & (xy[:, 1] <= hh)
    span = max((xy[:, 0].max() - xy[:, 0].min()) / ww, (xy[:, 1].max() - xy[:, 1].min()) / hh)
    return float(inside.mean()), float(span)


def test_smiles_side_by_side_then_a_complex_is_fitted(qtbot, window, test_data):
    w = window
    aspirin = _paste(w, qtbot, "CC(=O)Oc1ccccc1C(=O)O aspirin")
    caffeine = _paste(w, qtbot, "Cn1c(=O)c2c(ncn2C)n(C)c1=O caffeine")
    assert _min_distance(aspirin, caffeine) > 3.0
    xa, xc = aspirin.view_table().xyz, caffeine.view_table().xyz
    assert xc[:, 0].min() > xa[:, 0].max()  # beside it, along x
    # the object itself keeps its own coordinates (export is unchanged); only the drawing moves
    assert caffeine.obj.mol.GetNumConformers() == 0
    # both are in view
    assert _on_screen_fraction(w, aspirin)[0] == 1.0 and _on_screen_fraction(w, caffeine)[0] == 1.0
    # a file with two SMILES: also side by side
    paracetamol, phenol = w.workspace.open_text("CC(=O)Nc1ccc(O)cc1 paracetamol\nOc1ccccc1 phenol\n")
    assert _min_distance(paracetamol, phenol) > 3.0 and _min_distance(paracetamol, caffeine) > 3.0

    # a complex opened now (it has its own frame): the view is fitted to it
    from tests.fixtures.gui_workspace import drop_files

    drop_files(w, qtbot, [test_data / "structures" / "1hvr.pdb"])
    qtbot.waitUntil(lambda: w.workspace.items()[-1].name.startswith("1hvr"), timeout=30000)
    complex_item = w.workspace.items()[-1]
    inside, span = _on_screen_fraction(w, complex_item)
    assert inside == 1.0 and span > 0.5, (inside, span)


def test_previews_replace_each_other_in_one_place(qtbot, tmp_path):
    import os

    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    from PySide6.QtCore import Qt

    from engine.store.project import Project
    from logos_desktop.main_window import MainWindow

    path = tmp_path / "previews.logos"
    with Project.open(path, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {"n": 2}, 1)
        for s in ("CC(=O)Oc1ccccc1C(=O)O", "Cn1c(=O)c2c(ncn2C)n(C)c1=O"):
            p.add_result(run, f"<MoleculeS>{s}<MoleculeE>", smiles=s, valid=True, objects={"smiles": s})
        p.finish_run(run)
    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    try:
        gen = w.generation
        assert gen.open_project(path)
        loaded = _paste(w, qtbot, "CC(=O)Nc1ccc(O)cc1 paracetamol")
        view = gen.results.view

        def click(row):
            rect = view.visualRect(gen.results.model.index(row, 1))
            qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            return w.workspace.current()

        first = click(0)
        assert first.name == "result 1" and _min_distance(first, loaded) > 3.0
        x_first = float(first.view_table().xyz[:, 0].min())
        second = click(1)
        assert second.name == "result 2"
        previews = [i for i in w.workspace.items() if i.name.startswith("result ")]
        assert previews == [second]  # the first preview was replaced
        assert abs(float(second.view_table().xyz[:, 0].min()) - x_first) < 0.01  # in the same place
        assert _min_distance(second, loaded) > 3.0
        assert _on_screen_fraction(w, second)[0] == 1.0 and _on_screen_fraction(w, loaded)[0] == 1.0
    finally:
        w.close()
