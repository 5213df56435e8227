"""A result can be taken further, end to end under Xvfb with the real engine process and the bundled
demonstration model: generate molecules, click a valid result in the table, Retrosynthesis takes it
as its product (and "Use current selection" keeps it), run it, and the retrosynthesis run stored in
the project was asked for exactly that molecule."""

from __future__ import annotations

import pytest
from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)
require_module("llama_cpp", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def window(engine_window):  # tests/fixtures/gui_engine.py
    return engine_window


def _run(qtbot, gen, panel):
    before = set(gen.queue.jobs)
    panel.run_button.click()
    (job,) = set(gen.queue.jobs) - before
    qtbot.waitUntil(lambda: not gen.queue.get(job).active, timeout=600000)
    done = gen.queue.get(job)
    assert done.status == "finished", done.error
    return job


def test_generate_click_a_result_and_retrosynthesise_it(qtbot, window, tmp_path):
    from PySide6.QtCore import Qt
    from rdkit import Chem

    from engine.store.project import Project
    from engine.store.queries import ResultQuery

    gen = window.generation
    qtbot.waitUntil(lambda: gen.bridge.model is not None, timeout=120000)
    project = tmp_path / "chain.logos"
    assert gen.open_project(project, create=True)
    panel = gen.generate

    panel.set_task("molecule")
    panel.n.setValue(6)
    panel.sampling.set_values({"max_new_tokens": 64})
    _run(qtbot, gen, panel)
    qtbot.waitUntil(lambda: gen.results.model.rowCount() == 6, timeout=10000)
    model = gen.results.model
    valid = [i for i in range(6) if model.row(i).valid and model.row(i).smiles]
    assert valid, "the demonstration model gave no valid molecule in 6 samples"
    i = valid[0]
    row = model.row(i)

    # the user clicks the row: it is shown, and it is the product of a retrosynthesis
    view = gen.results.view
    view.scrollTo(model.index(i, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(i, 1)).center())
    qtbot.waitUntil(lambda: window.workspace.current() is not None
                    and window.workspace.current().name == f"result {row.id}", timeout=10000)
    product = Chem.MolToSmiles(Chem.MolFromSmiles(row.smiles))
    panel.set_task("retro")
    assert f"result {row.id}" in panel.input_label.text() and product in panel.input_label.text()
    panel.use_selection_button.click()
    assert panel.request().engine_options()["smiles"] == product
    # Forward reaction takes it as a reactant too
    panel.set_task("forward")
    assert panel.request().engine_options()["smiles"] == product

    panel.set_task("retro")
    panel.n.setValue(2)
    panel.sampling.set_values({"max_new_tokens": 64})
    _run(qtbot, gen, panel)
    with Project.open(project) as p:
        retro = [r for r in p.runs() if r.task == "retro"]
        assert len(retro) == 1
        first = p.query_results(ResultQuery(run_id=retro[0].id, sort="id", limit=1)).rows[0].id
    # the new run's first row is selected and in view
    assert gen.results.selected_ids() == [first]
    with Project.open(project) as p:
        assert product in retro[0].prompt
        assert p.count_results(ResultQuery(task="retro")) == 2
