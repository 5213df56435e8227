"""The task sends the object as it is now, end to end under Xvfb with the real engine process and the
demonstration model (else the tiny real GGUF): load 1HVR, mutate Asp25 of chain A to Ala through
Edit › Mutate residue, run ligand design; the run's stored input is the edited structure (its own
hash, ALA at A25, named as edited), the provenance panel says it was edited, and undo sends the file
again."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)
require_module("llama_cpp", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def window(engine_window):  # tests/fixtures/gui_engine.py
    return engine_window


def _mutate_through_the_menu(window, qtbot, item, chain, number, new):
    """Select an atom of the residue, then Edit › Mutate residue…, answering its dialog."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QInputDialog

    table = item.view_table()
    cg = next(i for i, n in enumerate(table.atom_names)
              if n.strip() == "CG" and table.chains[i] == chain and int(table.res_nums[i]) == number)
    window.workspace.set_current(item.id)
    window.workspace.set_selection([(item.id, cg)])
    answered = []

    def answer():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, QInputDialog):
            QTimer.singleShot(50, answer)
            return
        answered.append(dlg.labelText())
        dlg.setTextValue(new)
        dlg.accept()

    QTimer.singleShot(50, answer)
    window.actions_by_name["Mutate residue"].trigger()
    assert answered and f"{chain}/{number}" in answered[0]


def _residue_name(pdb_text: str, chain: str, number: int) -> str:
    import gemmi

    st = gemmi.read_pdb_string(pdb_text)
    return next(r.name for ch in st[0] if ch.name == chain for r in ch if r.seqid.num == number)


def test_an_edited_structure_is_what_the_task_sends_and_stores(qtbot, window, tmp_path, test_data):
    from engine.store.project import Project

    gen = window.generation
    qtbot.waitUntil(lambda: gen.bridge.model is not None, timeout=120000)
    project = tmp_path / "edited.logos"
    assert gen.open_project(project, create=True)
    source = test_data / "structures" / "1hvr.pdb"
    original = source.read_bytes()
    item = window.open_paths([source])[0]
    panel = gen.generate
    panel.set_task("ligand")
    assert panel.request().engine_inputs() == {"file": str(source)}  # unedited: the file itself

    _mutate_through_the_menu(window, qtbot, item, "A", 25, "ALA")
    assert item.obj.modified and item.obj.edit_log == ["mutated A25 ASP→ALA"]
    panel.use_selection_button.click()
    assert "as edited" in panel.input_label.text()
    sent = panel.request().engine_inputs()["file"]
    assert sent != str(source) and "(edited, mutated A25 ASP→ALA)" in os.path.basename(sent)
    assert sent in panel.command_line_text()

    panel.n.setValue(2)
    panel.sampling.set_values({"max_new_tokens": 16})
    before = set(gen.queue.jobs)
    panel.run_button.click()
    (job,) = set(gen.queue.jobs) - before
    qtbot.waitUntil(lambda: not gen.queue.get(job).active, timeout=600000)
    assert gen.queue.get(job).status == "finished", gen.queue.get(job).error

    with Project.open(project) as p:
        run = p.runs()[0]
        info = p.get_input(run.input_ids[0])
        data = p.get_input(info.id).data
    assert info.sha256 == hashlib.sha256(data).hexdigest() != hashlib.sha256(original).hexdigest()
    assert info.name == "1hvr (edited, mutated A25 ASP→ALA).pdb"
    assert _residue_name(data.decode(), "A", 25) == "ALA"  # the mutation is in the stored input
    assert _residue_name(data.decode(), "B", 25) == "ASP"
    assert _residue_name(original.decode(), "A", 25) == "ASP"  # the file on disk is untouched
    assert source.read_bytes() == original

    # the provenance of a row of the run says the input was edited
    qtbot.waitUntil(lambda: gen.results.model.rowCount() == 2, timeout=10000)
    gen.results.view.selectRow(0)
    qtbot.waitUntil(lambda: gen.provenance.provenance is not None, timeout=5000)
    text = gen.provenance.text.toPlainText()
    assert "input (edited in the workspace)" in text and "mutated A25 ASP→ALA" in text
    assert info.sha256 in text

    # undo back to the file's state: the task sends the file again
    window.undo_stack.undo()
    assert not item.obj.modified
    window.workspace.set_current(item.id)
    panel.use_selection_button.click()
    assert panel.request().engine_inputs() == {"file": str(source)}
    assert "as edited" not in panel.input_label.text()
