"""The pocket marked in orange is the pocket the ligand task sends: on load (the default ligand), after
another ligand is picked in the task options, another cutoff, a clicked ligand, and residues marked by
hand. What is sent is read from the prompt the Generate panel builds (the engine's Task.build_prompt
on the panel's request), letter by letter, never from the GUI's own state."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)

pytestmark = pytest.mark.gui

from tests.fixtures.gui_workspace import load  # noqa: E402


def _sent(gen):
    """(residues the prompt marks as {(chain, number)}, the request) of the panel's request now."""
    from engine.structures import pocket

    panel = gen.generate
    req = panel.request()
    assert req is not None, panel.input_label.text()
    task = gen.catalog.task(req.task)
    prompt = task.build_prompt(req.engine_inputs() or {}, task.check_options(req.engine_options()))
    assert prompt.text == gen.catalog.build_prompt(req)  # what Show prompt shows and Run sends
    st = panel.current_input.object.structure
    chains = pocket.chain_residues(st)
    blocks = re.findall(r"<ProteinS>(.*?)<ProteinE>", prompt.text)
    assert len(blocks) == len(prompt.context["chains"]) > 0
    marked = set()
    for chain, block in zip(prompt.context["chains"], blocks):
        letters = re.findall(r"<PocketS>(.)<PocketE>|(.)", block)
        assert len(letters) == len(chains[chain])
        for k, (mark, _plain) in enumerate(letters):
            if mark:
                res = chains[chain][k]
                marked.add((chain, f"{res.seqid.num}{res.seqid.icode.strip()}"))
    return marked, req


def _orange(window, item) -> set:
    """Residues the 3D view draws with the pocket's colour (the view's own masks of the drawn table)."""
    from logos_desktop.render.vtk_protein import pocket_mask, residue_keys

    table = item.view_table()
    keys = residue_keys(table)
    return {keys[i] for i in pocket_mask(table, item.pocket).nonzero()[0]}


def test_1hvr_the_pocket_marked_on_load_is_the_pocket_sent(window, qtbot, test_data):
    from engine.structures import pocket

    item = load(window, qtbot, test_data / "structures" / "1hvr.pdb")[0]
    assert item.pocket_ligand == "XK2 A:263" and item.pocket_cutoff == pocket.DEFAULT_CUTOFF
    marked = set(item.pocket)
    assert ("A", "25") in marked and ("B", "25") in marked and len(marked) > 20
    assert _orange(window, item) == marked  # what the view colours
    gen = window.generation
    panel = gen.generate
    panel.task.setCurrentIndex(panel.task.findData("ligand"))  # the user picks the task
    assert panel.current_input.options == {"ligand": "XK2 A:263"}
    assert f"{len(marked)} protein residues within 4.5 Å, marked in orange" in panel.input_label.text()
    sent, req = _sent(gen)
    assert sent == marked
    assert "--ligand 'XK2 A:263'" in panel.command_line_text()
    # docking takes the same target from the same selection
    from logos_desktop.docking.targets import target_of_selection

    target = target_of_selection(window)
    assert (target.ligand, target.chain, target.resnum) == ("XK2", "A", 263)
    # the 3D view's ligand is the engine's: every atom of XK2 and nothing else
    from logos_desktop.render.vtk_protein import masks

    table = item.view_table()
    lig = masks(table)[1]
    assert {table.res_names[i] for i in lig.nonzero()[0]} == {"XK2"}
    assert int(lig.sum()) == sum(1 for r in table.res_names if r == "XK2")


def test_picking_another_ligand_cutoff_click_and_hand_marks_keep_shown_and_sent_equal(window, qtbot, test_data):
    from engine.structures import pocket

    item = load(window, qtbot, test_data / "structures" / "1ia1_protein_one_lig_removed.pdb")[0]
    refs = pocket.ligands(item.obj)
    assert [r.resname for r in refs] == ["NDP", "NDP", "TQ3"]
    assert item.pocket_ligand == refs[0].spec
    gen = window.generation
    panel = gen.generate
    panel.task.setCurrentIndex(panel.task.findData("ligand"))
    kind, combo = panel.options.editors["ligand"]
    assert kind == "choice" and [combo.itemData(i) for i in range(combo.count())] == [r.spec for r in refs]
    assert combo.currentData() == refs[0].spec
    assert _sent(gen)[0] == set(item.pocket)

    # the user picks TQ3 in the task options: the marking follows, and it is what is sent
    tq3 = refs[2]
    combo.setCurrentIndex(combo.findData(tq3.spec))
    assert item.pocket_ligand == tq3.spec
    assert set(item.pocket) == pocket.ligand_site(item.obj, tq3.spec).keys
    assert _orange(window, item) == set(item.pocket)
    assert panel.current_input.options == {"ligand": tq3.spec}
    assert "TQ3" in panel.input_label.text()
    assert _sent(gen)[0] == set(item.pocket)

    # another cutoff: the marking follows it
    small = set(item.pocket)
    cutoff = panel.options.editors["cutoff"][1]
    cutoff.setValue(6.0)
    assert item.pocket_cutoff == 6.0 and set(item.pocket) > small
    sent, req = _sent(gen)
    assert req.engine_options()["cutoff"] == 6.0 and sent == set(item.pocket)
    cutoff.setValue(4.5)
    assert set(item.pocket) == small

    # a click on the other copy of NDP: that ligand's pocket is marked and sent, the choice shows it
    second = refs[1]
    table = item.table()
    atoms = [(item.id, i) for i in range(len(table)) if table.chains[i] == second.chain
             and int(table.res_nums[i]) == second.resnum and table.res_names[i] == "NDP"]
    window.workspace.set_selection(atoms)
    assert panel.current_input.options == {"ligand": second.spec}
    assert combo.currentData() == second.spec and item.pocket_ligand == second.spec
    assert _sent(gen)[0] == set(item.pocket) == pocket.ligand_site(item.obj, second.spec).keys
    window.workspace.set_selection([])
    assert _sent(gen)[0] == set(item.pocket)

    # a residue unmarked by hand: the pocket is the user's now, sent as those residues
    drop = sorted(item.pocket)[0]
    idx = next(i for i in range(len(table)) if (table.chains[i], str(int(table.res_nums[i]))) == drop)
    window.workspace.set_selection([(item.id, idx)])
    assert window.set_pocket(False)
    window.workspace.set_selection([])
    assert drop not in item.pocket and not item.pocket_follows_ligand()
    sent, req = _sent(gen)
    assert "ligand" not in req.engine_options()
    assert sent == set(item.pocket)
    assert sorted(req.engine_options()["residues"]) == sorted(f"{c}:{s}" for c, s in item.pocket)
    window.undo_stack.undo()  # back to the ligand's pocket: the ligand is sent again
    assert item.pocket_follows_ligand()
    window.workspace.set_selection([])
    panel.use_selection_button.click()
    assert panel.current_input.options == {"ligand": second.spec}


def test_an_edit_keeps_the_marking_the_pocket_of_the_structure_sent(window, qtbot, test_data):
    """Mutating pocket residues to glycine takes their side chains out of the contact distance: the
    marking is recomputed on the edited structure, and the edited structure (written from memory)
    is what the prompt is built from."""
    from engine.structures import pocket

    item = load(window, qtbot, test_data / "structures" / "1hvr.pdb")[0]
    before = set(item.pocket)
    gen = window.generation
    gen.generate.set_task("ligand")
    table = item.view_table()
    for chain, num in (("A", 84), ("B", 84), ("A", 50), ("B", 50)):  # Ile84 and Ile50: side chains in the pocket
        cb = next(i for i, n in enumerate(table.atom_names)
                  if n.strip() == "CB" and table.chains[i] == chain and int(table.res_nums[i]) == num)
        window.workspace.set_selection([(item.id, cb)])
        assert window.mutate_residue("GLY")
        table = item.view_table()
    window.workspace.set_selection([])
    assert item.obj.modified and item.pocket_follows_ligand()
    assert set(item.pocket) == pocket.ligand_site(item.obj, "XK2 A:263").keys != before
    sent, req = _sent(gen)
    assert "(edited, " in req.engine_inputs()["file"]
    assert sent == set(item.pocket)
    for _ in range(4):
        window.undo_stack.undo()
    assert not item.obj.modified and set(item.pocket) == before
    assert _sent(gen)[0] == before
