"""Editing in the window: every edit goes through the QUndoStack; undo/redo round trips restore
exactly what was there, refused edits change nothing and say why without blocking."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui

from tests.fixtures.gui_workspace import drawn_fraction, load  # noqa: E402


def _mol_state(item):
    from rdkit import Chem

    m = item.obj.mol
    return Chem.MolToMolBlock(m), m.GetConformer().GetPositions().round(4).tolist()


def test_molecule_edit_undo_redo_round_trip(window, qtbot, test_data):
    item = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")[0]
    original = _mol_state(item)
    states = [original]
    carbon = next(a.GetIdx() for a in item.obj.mol.GetAtoms() if a.GetSymbol() == "C" and a.GetDegree() == 2)
    window.workspace.set_selection([(item.id, carbon)])
    assert window.replace_atom("N")
    assert item.obj.mol.GetAtomWithIdx(carbon).GetSymbol() == "N"
    states.append(_mol_state(item))
    assert window._mol_edit("AddHydrogens")
    assert item.obj.mol.GetNumAtoms() > 19
    assert item.summary()["atoms"] == item.obj.mol.GetNumAtoms()
    assert window.tree.row_texts()[0][2] == str(item.obj.mol.GetNumAtoms())  # the tree follows
    states.append(_mol_state(item))
    assert window._mol_edit("CleanUp3D")
    states.append(_mol_state(item))
    window.workspace.set_selection([(item.id, 0)])
    assert window.delete_selected()
    states.append(_mol_state(item))
    assert window.undo_stack.count() == 4
    assert drawn_fraction(window.view3d.image_array()) > 0.01
    for expected in reversed(states[:-1]):
        window.undo_stack.undo()
        assert _mol_state(item) == expected
    assert _mol_state(item) == original
    for expected in states[1:]:
        window.undo_stack.redo()
        assert _mol_state(item) == expected
    assert len(item.table()) == item.obj.mol.GetNumAtoms()  # the view redraws the edited molecule


def test_refused_edit_is_not_pushed_and_says_why(window, qtbot, test_data):
    item = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")[0]
    before = _mol_state(item)
    ring_c = next(a.GetIdx() for a in item.obj.mol.GetAtoms() if a.GetSymbol() == "C" and a.GetDegree() == 3)
    window.workspace.set_selection([(item.id, ring_c)])
    assert not window.replace_atom("F")
    assert window.undo_stack.count() == 0
    assert _mol_state(item) == before
    assert "does not sanitise" in window.notices[-1]
    assert "nothing was changed" in window.notices[-1]


def test_edit_smiles_with_live_preview(window, qtbot, test_data):
    from logos_desktop.widgets.qt_smiles_dialog import QtSmilesDialog

    item = load(window, qtbot, test_data / "structures" / "1ia1_ligand.sdf")[0]
    dlg = QtSmilesDialog(item.obj.mol)
    qtbot.addWidget(dlg)
    assert dlg.is_valid() and dlg.preview.pixmap() is not None and not dlg.preview.pixmap().isNull()
    dlg.edit.setText("c1ccccc1C(=O")
    assert not dlg.is_valid() and "does not parse" in dlg.status.text()
    dlg.edit.setText("c1ccccc1C(=O)O")
    assert dlg.is_valid() and not dlg.preview.pixmap().isNull()
    assert window.edit_smiles("c1ccccc1C(=O)O")
    assert item.obj.mol.GetNumAtoms() == 9
    assert item.obj.mol.GetConformer().Is3D()
    window.undo_stack.undo()
    assert item.obj.mol.GetNumAtoms() == 19


def test_protein_mutate_and_pocket_clicks_undo(window, qtbot, test_data):
    from PySide6.QtCore import Qt

    from tests.fixtures.gui_workspace import qt_pos_of_atom

    item = load(window, qtbot, test_data / "structures" / "1hvr.pdb")[0]
    n_atoms = item.summary()["atoms"]
    table = item.view_table()
    cg = next(i for i, n in enumerate(table.atom_names)
              if n.strip() == "CG" and table.chains[i] == "A" and table.res_nums[i] == 25)
    window.workspace.set_selection([(item.id, cg)])
    assert window.mutate_residue("ALA")
    assert item.summary()["atoms"] < n_atoms
    assert "ALA" in {item.view_table().res_names[i] for i in range(len(item.view_table()))
                     if item.view_table().chains[i] == "A" and item.view_table().res_nums[i] == 25}
    window.undo_stack.undo()
    assert item.summary()["atoms"] == n_atoms
    # pocket: unmark by selection, then toggle by clicking a residue in pocket-click mode
    pocket0 = set(item.pocket)
    assert ("A", "25") in pocket0
    window.workspace.set_selection([(item.id, cg)])
    assert window.set_pocket(False)
    assert ("A", "25") not in item.pocket
    window.undo_stack.undo()
    assert item.pocket == pocket0
    window.fit_view()
    window.pocket_click_action.setChecked(True)
    layer = window.view3d.layers[item.id]
    ca = next(int(i) for i in layer.pickable if table.atom_names[i].strip() == "CA"
              and (table.chains[i], str(int(table.res_nums[i]))) not in pocket0
              and window.view3d.pick(qt_pos_of_atom(window, item, int(i))) == (item.id, int(i)))
    key = (table.chains[ca], str(int(table.res_nums[ca])))
    qtbot.mouseClick(window.view3d.vtk_widget, Qt.MouseButton.LeftButton, pos=qt_pos_of_atom(window, item, ca))
    assert item.pocket == pocket0 | {key}
    window.undo_stack.undo()
    assert item.pocket == pocket0


def test_crystal_supercell_and_substitution_undo(window, qtbot, test_data):
    item = load(window, qtbot, test_data / "reliability" / "NaCl.cif")[0]
    assert window.supercell((2, 2, 2))
    assert item.summary()["sites"] == 64
    assert window.tree.row_texts()[0][4] == "64"
    assert window.substitute_element("Na", "K")
    assert item.obj.crystal.composition.reduced_formula == "KCl"
    assert drawn_fraction(window.view3d.image_array()) > 0.02
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert item.summary()["sites"] == 8
    assert item.obj.crystal.composition.reduced_formula == "NaCl"
    window.undo_stack.redo()
    assert item.summary()["sites"] == 64
