"""The results table over a real project file: lazy paging, sort, filter, search, badges, thumbnails."""

from __future__ import annotations

import pytest

from tests.fixtures.required import require_module

require_module("PySide6", allow_module_level=True)  # fails under CI=true
require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from PySide6.QtCore import Qt  # noqa: E402

from engine.store.project import Project  # noqa: E402
from logos_desktop.generation.results_model import COL, PAGE, ResultsTableModel  # noqa: E402
from logos_desktop.generation.results_panel import QtResultsPanel  # noqa: E402
from logos_desktop.generation.results_source import StoreResultSource  # noqa: E402

# real drugs (canonical SMILES from RDKit) and real failure reasons as the validator words them
DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "caffeine": "Cn1c(=O)c2c(ncn2C)n(C)c1=O",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "ibuprofen": "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "nicotine": "CN1CCC[C@H]1c1cccnc1",
}
N_ROWS = 3 * PAGE + 37


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Built once per module (creating a project runs the migrations); each test gets a copy."""
    from rdkit import Chem
    from rdkit.Chem import QED

    path = tmp_path_factory.mktemp("template") / "results.logos"
    with Project.open(path, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {"sampling": {"temperature": 1.2}, "n": N_ROWS}, 7)
        rows = []
        names = list(DRUGS)
        for i in range(N_ROWS):
            smi = DRUGS[names[i % len(names)]]
            if i % 7 == 3:
                # as the engine stores a failed sample: its raw text, of which RDKit parses a prefix
                rows.append(dict(record="<MoleculeS>OB bin EDK<MoleculeE>", smiles="OB bin EDK", valid=False,
                                 reasons=["SMILES does not parse: unclosed ring 1",
                                          "fragments: 2 (expected 1)"], ppl=9.0 + i / 1000))
            else:
                qed = QED.qed(Chem.MolFromSmiles(smi))
                rows.append(dict(record=f"<MoleculeS>{smi}<MoleculeE>", smiles=smi, valid=True,
                                 scores={"qed": qed, "sa": 1.0 + (i % 9)}, ppl=2.0 + (i % 13) / 10))
        p.add_results(run, rows)
        p.finish_run(run)
    return path


@pytest.fixture
def project(template, tmp_path):
    import shutil

    path = tmp_path / "results.logos"
    shutil.copy(template, path)
    p = Project.open(path)
    yield p
    p.close()


def test_counts_and_pages_lazily(qtbot, project):
    panel = QtResultsPanel()
    qtbot.addWidget(panel)
    panel.model.set_source(StoreResultSource(project))
    panel.resize(1200, 500)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.model.rowCount() == N_ROWS
    assert panel.count_label.text() == f"{N_ROWS:,} rows"
    # painting the first screen reads one page, not the whole project
    qtbot.waitUntil(lambda: panel.model.page_queries >= 1, timeout=3000)
    qtbot.wait(100)
    assert panel.model.page_queries == 1
    panel.view.scrollToBottom()
    qtbot.waitUntil(lambda: panel.model.page_queries >= 2, timeout=3000)
    qtbot.wait(100)
    assert panel.model.page_queries == 2  # the last page only, not the ones in between
    last = panel.model.row(N_ROWS - 1)
    assert last.id == N_ROWS


def test_validity_badge_tooltip_and_thumbnail(qtbot, project):
    model = ResultsTableModel(StoreResultSource(project))
    bad = model.index(3, COL["Valid"])
    assert model.data(bad).startswith("✘ SMILES does not parse")
    assert "(+1)" in model.data(bad)
    tip = model.data(bad, Qt.ItemDataRole.ToolTipRole)
    assert "unclosed ring 1" in tip and "fragments: 2" in tip
    good = model.index(0, COL["Valid"])
    assert model.data(good) == "✔ valid"
    pix = model.data(model.index(0, COL["Structure"]), Qt.ItemDataRole.DecorationRole)
    assert pix is not None and not pix.isNull()
    img = pix.toImage()
    # a depiction has dark bond pixels, not just a blank square
    dark = sum(1 for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)
               if img.pixelColor(x, y).alpha() > 0 and img.pixelColor(x, y).lightness() < 100)
    assert dark > 20
    assert model.data(model.index(3, COL["Structure"]), Qt.ItemDataRole.DecorationRole) is None


def test_sort_filter_search(qtbot, project):
    model = ResultsTableModel(StoreResultSource(project))
    model.sort(COL["QED"], Qt.SortOrder.DescendingOrder)
    top = [model.row(i).scores["qed"] for i in range(5)]
    assert top == sorted(top, reverse=True)
    from rdkit import Chem
    from rdkit.Chem import QED

    best = max(QED.qed(Chem.MolFromSmiles(s)) for s in DRUGS.values())
    assert top[0] == pytest.approx(best)
    # invalid rows (no QED) sort last
    assert model.row(model.rowCount() - 1).valid is False

    model.set_filter(valid=False)
    n_invalid = sum(1 for i in range(N_ROWS) if i % 7 == 3)
    assert model.rowCount() == n_invalid
    assert all(not model.row(i).valid for i in range(model.rowCount()))

    model.set_filter(valid=None, text="c1ccc(O)cc1")  # paracetamol's ring
    assert model.rowCount() == sum(1 for i in range(N_ROWS) if i % 7 != 3 and i % 5 == 2)
    assert all("c1ccc(O)cc1" in model.row(i).smiles for i in range(model.rowCount()))

    model.set_filter(text="", task="retro")
    assert model.rowCount() == 0


def test_search_box_filters_after_typing(qtbot, project):
    panel = QtResultsPanel()
    qtbot.addWidget(panel)
    panel.model.set_source(StoreResultSource(project))
    qtbot.keyClicks(panel.search, "CN1CCC")
    qtbot.waitUntil(lambda: panel.model.rowCount() < N_ROWS, timeout=3000)
    assert panel.model.rowCount() == sum(1 for i in range(N_ROWS) if i % 7 != 3 and i % 5 == 4)
    panel.validity.setCurrentIndex(2)
    assert panel.model.rowCount() == 0


def test_new_rows_written_by_another_connection_are_appended(qtbot, tmp_path, project):
    model = ResultsTableModel(StoreResultSource(project))
    inserted = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    with Project.open(project.path) as writer:  # a second connection, as the engine process has
        run = writer.start_run("molecule", "<MoleculeS>", {}, 1)
        writer.add_result(run, "<MoleculeS>CCO<MoleculeE>", smiles="CCO", valid=True)
        writer.add_result(run, "<MoleculeS>CCN<MoleculeE>", smiles="CCN", valid=True)
    model.refresh()
    assert inserted == [(N_ROWS, N_ROWS + 1)]
    assert model.row(N_ROWS + 1).smiles == "CCN"


def test_multi_select_emits_rows(qtbot, project):
    panel = QtResultsPanel()
    qtbot.addWidget(panel)
    panel.model.set_source(StoreResultSource(project))
    got = []
    panel.selectionChanged.connect(got.append)
    sm = panel.view.selectionModel()
    from PySide6.QtCore import QItemSelectionModel

    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    sm.select(panel.model.index(0, 0), flags)
    sm.select(panel.model.index(2, 0), flags)
    assert [r.id for r in got[-1]] == [1, 3]
    assert panel.finetune_button.isEnabled()
    assert panel.export_button.text() == "Export 2 selected…"
    ids = []
    panel.fineTuneRequested.connect(ids.append)
    panel.finetune_button.click()
    assert ids == [[1, 3]]
