"""The Generate panel in the main window: tasks, inputs from the selection, what to select when an
input is missing, the exact prompt (shown and editable), and the options built from the schema."""

from __future__ import annotations

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from PySide6.QtWidgets import QDialog  # noqa: E402

from logos_desktop.generation import install_generation  # noqa: E402


@pytest.fixture
def window(qtbot):
    from logos_desktop.main_window import MainWindow

    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    gen = getattr(w, "generation", None) or install_generation(w, start_engine=False)
    yield w, gen
    gen.shutdown()
    w.workspace.shutdown() if hasattr(w.workspace, "shutdown") else None


def _select_residue(ws, item, resname):
    table = item.table()
    atoms = [(item.id, i) for i, r in enumerate(table.res_names) if r == resname]
    assert atoms, resname
    ws.set_current(item.id)
    ws.set_selection(atoms)


def test_tasks_and_missing_inputs_explain_what_to_select(qtbot, window):
    w, gen = window
    panel = gen.generate
    names = [panel.task.itemData(i) for i in range(panel.task.count())]
    assert names == ["molecule", "ligand", "binding-site", "retro", "forward", "material", "antibody"]
    panel.set_task("molecule")
    assert "No input needed" in panel.input_label.text()
    assert panel.n.value() == 10
    assert panel.sampling.values()["temperature"] == pytest.approx(1.2)
    assert panel.sampling.values()["top_p"] == pytest.approx(0.85)

    panel.set_task("ligand")
    assert "select a ligand" in panel.input_label.text()
    ran = []
    panel.runRequested.connect(ran.append)
    assert panel.run() is None and ran == []
    assert "Cannot run Ligand design" in panel.message.text()

    panel.set_task("retro")
    assert panel.n.value() == 32
    assert "needs a product molecule" in panel.input_label.text()
    panel.set_task("binding-site")
    assert panel.n.value() == 40
    assert "needs a protein" in panel.input_label.text()


def test_ligand_from_selected_ligand_prompt_shown_and_edited(qtbot, window, test_data, monkeypatch):
    w, gen = window
    items = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])
    assert items, w.error_log
    item = items[0]
    panel = gen.generate
    panel.set_task("ligand")
    _select_residue(w.workspace, item, "XK2")
    text = panel.input_label.text()
    assert "XK2" in text and "1hvr" in text
    req = panel.request()
    assert req.engine_inputs() == {"file": str(test_data / "structures" / "1hvr.pdb")}
    assert req.engine_options()["ligand"] == "XK2 A:263"  # the engine's spec: this copy of XK2
    assert "--ligand 'XK2 A:263'" in panel.command_line_text()

    # Show prompt: the exact text the engine will send; edit it, and the edit is what runs
    shown = {}

    def fake_exec(dlg):
        shown["text"] = dlg.prompt()
        shown["stop"] = dlg.stop
        dlg.editor.setPlainText(dlg.prompt().replace("<MoleculeS>", "<MoleculeS>c1ccccc1"))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr("logos_desktop.generation.generate_panel.PromptDialog.exec", fake_exec)
    panel.show_prompt()
    prompt = shown["text"]
    assert prompt.startswith("<ProteinS>") and prompt.endswith("<MoleculeS>")
    assert prompt.count("<ProteinS>") == 2  # 1HVR: two protease chains, both touch XK2
    assert "<PocketS>D<PocketE>" in prompt  # the catalytic Asp25 is in the pocket
    assert shown["stop"] == "<MoleculeE>"
    ran = []
    panel.runRequested.connect(ran.append)
    panel.run()
    assert ran and ran[0].prompt.endswith("<MoleculeS>c1ccccc1")
    assert "--prompt" in ran[0].command_line()


def test_ligand_from_selected_pocket_residues(qtbot, window, test_data):
    w, gen = window
    item = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])[0]
    table = item.table()
    atoms = [(item.id, i) for i in range(len(table.res_names))
             if table.chains[i] == "A" and int(table.res_nums[i]) in (25, 27, 48, 50) and not table.hetero[i]]
    w.workspace.set_current(item.id)
    w.workspace.set_selection(atoms)
    panel = gen.generate
    panel.set_task("ligand")
    assert "Pocket of 4 selected residues" in panel.input_label.text()
    req = panel.request()
    assert req.engine_options()["residues"] == ["A:25", "A:27", "A:48", "A:50"]
    prompt = gen.catalog.build_prompt(req)
    assert prompt.count("<PocketS>") == 4 and prompt.count("<ProteinS>") == 1


def test_retro_from_selected_molecule(qtbot, window, test_data):
    w, gen = window
    item = w.open_paths([str(test_data / "structures" / "1ia1_ligand.sdf")])[0]
    w.workspace.set_current(item.id)
    panel = gen.generate
    panel.set_task("retro")
    req = panel.request()
    assert req is not None, panel.input_label.text()
    smiles = req.engine_options()["smiles"]
    assert "." not in smiles
    prompt = gen.catalog.build_prompt(req)
    assert prompt == f"<MoleculeS>{smiles}<MoleculeE><ReverseReact>"


def test_options_form_from_schema(qtbot, window):
    _w, gen = window
    panel = gen.generate
    panel.set_task("antibody")
    kind, combo = panel.options.editors["chains"]
    assert kind == "choice" and [combo.itemData(i) for i in range(combo.count())] == ["paired", "heavy"]
    panel.set_task("ligand")
    assert set(panel.options.editors) == {"chain", "cutoff"}  # ligand/residues come from the selection
    assert panel.options.values()["cutoff"] == pytest.approx(4.5)


def test_edited_prompt_is_dropped_when_the_input_changes(qtbot, window, test_data):
    w, gen = window
    item = w.open_paths([str(test_data / "structures" / "1hvr.pdb")])[0]
    panel = gen.generate
    panel.set_task("ligand")
    _select_residue(w.workspace, item, "XK2")
    panel.set_prompt_override("<ProteinS>PQ<PocketS>D<PocketE><ProteinE><MoleculeS>", original="x")
    w.workspace.set_selection(list(w.workspace.selection))  # same selection again: kept
    assert panel.request().prompt.startswith("<ProteinS>PQ<PocketS>")
    table = item.table()
    w.workspace.set_selection([(item.id, i) for i in range(len(table.res_names))
                               if table.chains[i] == "A" and int(table.res_nums[i]) == 25])
    assert panel.request().prompt is None
    assert "edited prompt was dropped" in panel.message.text()
