"""The Generate panel never grows its dock: a long command line (a ligand task with many pocket
residues) is elided with the full text in its tooltip and a Copy button, and at 1400 × 900 with
every dock open the 3D view keeps at least half of the window's width."""

from __future__ import annotations

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true


def _pump(qtbot, ms=200):
    qtbot.wait(ms)


def test_the_3d_view_keeps_half_the_window_with_the_ligand_task_on_a_complex(qtbot, window, test_data):
    from PySide6.QtWidgets import QApplication, QDockWidget

    w = window
    w.resize(1400, 900)
    for dock in w.findChildren(QDockWidget):
        dock.show()
    _pump(qtbot)
    item = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])[0]
    panel = w.generation.generate
    panel.set_task("ligand")
    # the pocket as residues: every protein residue near the ligand (a long --option residues=...)
    table = item.table()
    near = [i for i, r in enumerate(table.res_names) if r not in ("XK2", "HOH")][:600]
    w.workspace.set_current(item.id)
    w.workspace.set_selection([(item.id, i) for i in near])
    panel.use_selection_button.click()
    full = panel.command_line_text()
    assert "residues=" in full and len(full) > 400
    _pump(qtbot, 400)
    assert w.width() == 1400
    # nothing in the panel is clipped: its body fits the scroll area's viewport
    from PySide6.QtWidgets import QScrollArea

    scroll = panel.findChild(QScrollArea)
    assert scroll.widget().width() <= scroll.viewport().width()
    assert w.view3d.width() >= w.width() / 2, (w.view3d.width(), w.generation.generate_dock.width())
    # the full command is in the tooltip, and Copy puts it on the clipboard
    assert panel.command.toolTip() == full
    assert panel.command.text() != full and panel.command.text().endswith("…")
    panel.copy_command_button.click()
    assert QApplication.clipboard().text() == full
    # a long SMILES as the input does not widen it either
    from rdkit import Chem

    from engine.structures.model import LoadedObject

    long_smiles = "C" * 20 + "".join("C(C)" for _ in range(60)) + "O"
    mol = Chem.MolFromSmiles(long_smiles)
    (mitem,) = w.workspace.add_objects([LoadedObject(kind="molecule", name="long", source=None, fmt="smi",
                                                     mol=mol)])
    w.workspace.set_current(mitem.id)
    panel.set_task("retro")
    smiles = Chem.MolToSmiles(mol)
    assert panel.request().engine_options()["smiles"] == smiles and smiles in panel.command_line_text()
    assert f"({len(smiles)} characters)" in panel.input_label.text()
    _pump(qtbot, 400)
    assert w.view3d.width() >= w.width() / 2, (w.view3d.width(), w.generation.generate_dock.width())
