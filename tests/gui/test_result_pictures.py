"""Every result kind has a picture: rows of each task, evaluated by the engine's own tasks and stored
as the engine process stores them, get a thumbnail in the Structure cell; clicking a material row
draws its linkers beside the metal node's formula in the 2D view and leaves no stale preview in
3D; a binding-site row shows its sequence with the pocket residues marked."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.required import require_module

require_module("PySide6", allow_module_level=True)  # fails under CI=true
require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from engine.store.project import Project  # noqa: E402
from engine.tasks.registry import get_task  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
BTC = "O=C(O)c1cc(C(=O)O)cc(C(=O)O)c1"  # HKUST-1's linker (benzene-1,3,5-tricarboxylic acid)
BDC = "O=C(O)c1ccc(C(=O)O)cc1"  # MOF-5's linker (terephthalic acid)
# human germline variable domains (IGHV3-23, IGKV1-39), as in tests/engine/tasks/test_tasks.py
VH = "EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDNSKNTLYLQMNSLRAEDTAVYYCAK"
VL = "DIQMTQSPSSLSASVGDRVTITCRASQSISSYLNWYQQKPGKAPKLLIYAASSLQSGVPSRFSGSGSGTDFTLTISSLQPEDFATYYCQQ"
POCKET = (24, 26, 27, 28, 29, 46, 47, 48, 49, 81, 83)  # 0-based: HIV-1 protease D25 … I84 (chain A)


def _store(p: Project, task_name: str, generated: list[str], inputs=None, **options) -> list[int]:
    """Run the engine's task on written samples and store them as engine/process/jobs.py does."""
    task = get_task(task_name)
    prompt = task.build_prompt(inputs or {}, task.check_options(options))
    run = p.start_run(task_name, prompt.text, {"n": len(generated), "options": options}, 1)
    ids = []
    for text in generated:
        cand = task.evaluate(text, prompt)
        assert cand.valid, (task_name, cand.reasons)
        ids.append(p.add_result(run, cand.record, objects=cand.objects, smiles=cand.smiles,
                                sequence=cand.sequence, valid=cand.valid, reasons=cand.reasons,
                                scores=cand.scores, ppl=2.0))
    p.finish_run(run)
    return ids


def make_project(path, test_data) -> dict[str, int]:
    """One valid row of each kind; returns kind -> result id."""
    with Project.open(path, create=True) as p:
        ids = {}
        ids["molecule"] = _store(p, "molecule", [f"{ASPIRIN}<MoleculeE>"])[0]
        ids["material"] = _store(p, "material", [
            f"<MetalS>Cu2(CO2)4<MetalE><MoleculeS>{BTC}<MoleculeE><MaterialE>"])[0]
        ids["material2"] = _store(p, "material", [
            f"<MetalS>Zn4O(CO2)6<MetalE><MoleculeS>{BDC}<MoleculeE><MoleculeS>{BTC}<MoleculeE><MaterialE>"])[0]
        ids["antibody"] = _store(p, "antibody", [f"{VH}<AntibodyE><AntibodyS>{VL}<AntibodyE>"])[0]
        task = get_task("binding-site")
        prompt = task.build_prompt({"file": str(test_data / "structures" / "1hvr.pdb")},
                                   task.check_options({"chain": "A"}))
        seq = prompt.context["sequence"]
        marked = "".join(f"<PocketS>{c}<PocketE>" if i in POCKET else c for i, c in enumerate(seq))
        ids["binding-site"] = _store(p, "binding-site", [marked + "<ProteinE>"],
                                     {"file": str(test_data / "structures" / "1hvr.pdb")}, chain="A")[0]
        ids["retro"] = _store(p, "retro", ["<MoleculeS>CC(=O)OC(C)=O<MoleculeE><MoleculeS>O=C(O)c1ccccc1O<MoleculeE>"],
                              smiles=ASPIRIN)[0]
    return ids


def _pixels(pixmap) -> np.ndarray:
    from PySide6.QtGui import QImage

    img = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * img.height())
    return arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), img.width(), 3).copy()


def _inked(pixmap) -> float:
    """Share of pixels that are not (near) white."""
    px = _pixels(pixmap).astype(int)
    return float((px.min(axis=2) < 200).mean())


def _marked_letters(doc) -> str:
    """The letters drawn on the pocket's orange ground, in order (read from the text document)."""
    from logos_desktop.widgets.sequence_view import POCKET as ORANGE

    out = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.charFormat().background().color() == ORANGE:
                out.append(frag.text())
            it += 1
        block = block.next()
    return "".join(out)


@pytest.fixture
def window(qtbot, tmp_path, test_data):
    from logos_desktop.main_window import MainWindow

    path = tmp_path / "pictures.logos"
    ids = make_project(path, test_data)
    w = MainWindow(start_engine=False, remember=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.generation.open_project(path)
    yield w, ids
    w.close()


def _row_of(gen, result_id: int) -> int:
    r = gen.results.model.locate(result_id)
    assert r is not None, result_id
    return r


def test_every_kind_has_a_thumbnail(window):
    from PySide6.QtCore import Qt

    from logos_desktop.generation.results_model import COL

    w, ids = window
    model = w.generation.results.model
    assert model.total == len(ids)
    for kind, rid in ids.items():
        index = model.index(_row_of(w.generation, rid), COL["Structure"])
        pix = model.data(index, Qt.ItemDataRole.DecorationRole)
        assert pix is not None and not pix.isNull(), kind
        assert _inked(pix) > 0.02, (kind, _inked(pix))
    # the pictures are the engine's reading of the records: two materials, two different pictures
    a = model.data(model.index(_row_of(w.generation, ids["material"]), COL["Structure"]), Qt.ItemDataRole.DecorationRole)
    b = model.data(model.index(_row_of(w.generation, ids["material2"]), COL["Structure"]), Qt.ItemDataRole.DecorationRole)
    assert not np.array_equal(_pixels(a), _pixels(b))
    # the text column names the parts too, not the raw record
    text = model.data(model.index(_row_of(w.generation, ids["material"]), COL["SMILES / sequence"]))
    linker = model.row(_row_of(w.generation, ids["material"])).objects["linkers"][0]
    assert text == f"Cu2(CO2)4 + {linker}"
    text = model.data(model.index(_row_of(w.generation, ids["retro"]), COL["SMILES / sequence"]))
    assert text.endswith(">>" + model.row(_row_of(w.generation, ids["retro"])).objects["product"])


def test_clicking_a_material_row_draws_its_building_blocks(window, qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from engine.grammar.pictures import result_picture
    from logos_desktop.generation.results_model import COL

    w, ids = window
    gen, view2d = w.generation, w.view2d
    table = gen.results.view

    def click(rid):
        r = _row_of(gen, rid)
        table.scrollTo(gen.results.model.index(r, COL["#"]))
        rect = table.visualRect(gen.results.model.index(r, COL["#"]))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.wait(50)

    # first a molecule: its preview is the current object, drawn in 2D and 3D
    click(ids["molecule"])
    preview = w.workspace.current()
    assert preview is not None and preview.name == f"result {ids['molecule']}"
    assert view2d.stack.currentWidget() is view2d.image
    before = _pixels(view2d.image.pixmap()).copy()

    # then the material: the molecule's preview goes, the 2D view shows the linkers beside the node
    click(ids["material"])
    assert gen.results.selected_ids() == [ids["material"]]
    assert not w.workspace.items(), "the previous result's preview stayed in the 3D view"
    assert w.view3d.note.isVisible() and f"Result {ids['material']}" in w.view3d.note.text()
    picture, title = view2d.result
    row = gen.results.model.row(_row_of(gen, ids["material"]))
    assert picture == result_picture(row.objects, row.record) and picture["metal"] == "Cu2(CO2)4"
    assert picture["linkers"] == [get_task("material").evaluate(
        f"<MetalS>Cu2(CO2)4<MetalE><MoleculeS>{BTC}<MoleculeE><MaterialE>",
        get_task("material").build_prompt({}, {"metal": None})).objects["linkers"][0]]
    assert view2d.stack.currentWidget() is view2d.image and view2d.result_title.isVisible()
    after = _pixels(view2d.image.pixmap())
    assert after.shape != before.shape or not np.array_equal(after, before)
    assert _inked(view2d.image.pixmap()) > 0.03
    # the formula's box is on the left, the linker drawing (RDKit, dark bonds) on the right
    right = after[:, after.shape[1] // 2:]
    assert (right.min(axis=2) < 100).mean() > 0.002
    w.window_image().save(str(tmp_path / "material.png"))
    view2d.grab().save(str(tmp_path / "material-2d.png"))

    # a binding-site row: the sequence view, the pocket residues marked and listed
    click(ids["binding-site"])
    assert view2d.stack.currentWidget() is view2d.sequence
    marked = _marked_letters(view2d.sequence.document())
    seq = gen.results.model.row(_row_of(gen, ids["binding-site"])).sequence
    assert marked == "".join(seq[i] for i in POCKET)
    assert "A:ASP25" in view2d.sequence.toPlainText()
    view2d.grab().save(str(tmp_path / "binding-site-2d.png"))

    # an antibody: both chains; then loading an object hands the 2D view back to the workspace
    click(ids["antibody"])
    text = view2d.sequence.toPlainText()
    assert "Heavy chain" in text and "Light chain" in text and VH[:10] in text
    click(ids["molecule"])
    assert view2d.result is None and view2d.stack.currentWidget() is view2d.image
    assert not w.view3d.note.isVisible()


def test_a_material_with_coordinates_is_shown_in_3d(qtbot, tmp_path, test_data):
    """A material row that carries its CIF (here CoRE MOF FUDQIF, decomposed by the engine into its
    record) shows the crystal in 3D and its building blocks in 2D."""
    from PySide6.QtCore import Qt

    from engine.structures import framework
    from logos_desktop.generation.results_model import COL
    from logos_desktop.main_window import MainWindow
    from tests.fixtures.gui_workspace import drawn_fraction

    cif = (test_data / "structures" / "FUDQIF_clean.cif").read_text()
    fw = framework.decompose(test_data / "structures" / "FUDQIF_clean.cif")
    assert fw.ok, fw.reasons
    task = get_task("material")
    prompt = task.build_prompt({}, task.check_options({}))
    cand = task.evaluate(fw.record[len(prompt.text):], prompt)
    assert cand.valid, cand.reasons
    path = tmp_path / "mof.logos"
    with Project.open(path, create=True) as p:
        run = p.start_run("material", prompt.text, {"n": 1}, 1)
        rid = p.add_result(run, cand.record, objects=cand.objects, cif=cif, valid=True, scores=cand.scores)
        p.finish_run(run)
    w = MainWindow(start_engine=False, remember=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    try:
        assert w.generation.open_project(path)
        table = w.generation.results.view
        rect = table.visualRect(w.generation.results.model.index(0, COL["#"]))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.waitUntil(lambda: len(w.workspace.items()) == 1, timeout=10000)
        item = w.workspace.items()[0]
        assert item.name == f"result {rid}"
        assert item.kind == "crystal" and item.obj.crystal.composition.reduced_formula == "ZnSiH8C8(N2F3)2"
        assert not w.welcome.isVisible() and not w.view3d.note.isVisible()
        assert drawn_fraction(w.view3d.image_array()) > 0.01
        picture, _title = w.view2d.result
        assert picture["metal"] == fw.metal and picture["linkers"] == cand.objects["linkers"] == ["c1cnccn1"]
        assert w.view2d.stack.currentWidget() is w.view2d.image
        w.window_image().save(str(tmp_path / "mof.png"))
        # the next molecule row would replace it: the crystal is the result's preview, not the user's object
        assert w.generation.preview_item_id == item.id and rid == w.generation.results.selected_ids()[0]
    finally:
        w.close()
