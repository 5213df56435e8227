"""Each task: prompt from real inputs, parse/validate/score of written samples, clear input errors."""

from __future__ import annotations

import pytest

from engine.tasks.base import TaskInputError
from engine.tasks.registry import TASKS, get_task, schemas

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def build(name, inputs=None, **options):
    task = get_task(name)
    return task, task.build_prompt(inputs or {}, task.check_options(options))


def test_registry_lists_the_cli_task_names():
    assert TASKS == ("molecule", "ligand", "binding-site", "retro", "forward", "material", "antibody")
    assert get_task("retrosynthesis") is get_task("retro")
    with pytest.raises(TaskInputError, match="unknown task 'docking'"):
        get_task("docking")
    for s in schemas():
        assert s["name"] in TASKS and isinstance(s["options"], list)


def test_unknown_option_is_named():
    with pytest.raises(TaskInputError, match="unknown option.*colour"):
        get_task("molecule").check_options({"colour": "red"})


def test_molecule_valid_invalid_with_reasons_and_scores():
    task, prompt = build("molecule")
    assert prompt.text == "<MoleculeS>" and prompt.stop_tags == ["<MoleculeE>"]
    ok = task.evaluate(ASPIRIN + "<MoleculeE>", prompt)
    assert ok.valid and ok.record == "<MoleculeS>" + ASPIRIN + "<MoleculeE>"
    assert 0 < ok.scores["qed"] < 1 and 1 <= ok.scores["sa"] <= 10
    assert ok.scores["lipinski"] and ok.scores["veber"] and ok.key == ASPIRIN
    bad = task.evaluate("CC(C)(C)(C)C<MoleculeE>", prompt)
    assert not bad.valid and "valence" in bad.reasons[0]
    unclosed = task.evaluate("CCO", prompt)
    assert not unclosed.valid and "not closed" in unclosed.reasons[0]
    frag = task.evaluate("CCO.O<MoleculeE>", prompt)
    assert not frag.valid and "2 fragments" in frag.reasons[0]


def test_ligand_prompt_from_a_real_complex(test_data):
    task, prompt = build("ligand", {"file": str(test_data / "structures" / "1hvr.pdb")})
    assert prompt.context["ligand"]["name"] == "XK2"
    labels = [r["label"] for r in prompt.context["pocket"]]
    assert "A:ASP25" in labels and "B:ASP25" in labels  # the catalytic aspartates of HIV protease
    assert prompt.text.count("<ProteinS>") == 2 and prompt.text.endswith("<ProteinE><MoleculeS>")
    assert prompt.text.count("<PocketS>") == len(labels)
    res = task.evaluate("c1ccccc1O<MoleculeE>", prompt)
    assert res.valid and res.objects["smiles"] == "Oc1ccccc1" and "A:ASP25" in res.objects["pocket"]


def test_ligand_bad_inputs_name_the_file(test_data):
    pdb = str(test_data / "structures" / "1hvr.pdb")
    with pytest.raises(TaskInputError, match="1hvr.pdb: no residue ZZZ in the structure; hetero groups present: XK2"):
        build("ligand", {"file": pdb}, ligand="ZZZ")
    with pytest.raises(TaskInputError, match="no protein chain 'Q'"):
        build("ligand", {"file": pdb}, chain="Q")
    with pytest.raises(TaskInputError, match="no ligand found"):
        build("ligand", {"file": str(test_data / "structures" / "4E43.pdb")})
    with pytest.raises(TaskInputError, match="x.pdb: no such file"):
        build("ligand", {"file": "/nonexistent/x.pdb"})
    _, prompt = build("ligand", {"file": pdb}, residues="A:25,A:27,B:50")
    assert prompt.text.count("<PocketS>") == 3


def test_binding_site_maps_marks_back_to_residue_numbers(test_data):
    task, prompt = build("binding-site", {"file": str(test_data / "structures" / "1hvr.pdb")}, chain="B")
    seq = prompt.context["sequence"]
    assert prompt.text == f"<ProteinS>{seq}<ProteinE><Search><ProteinS>"
    marked = seq[:24] + f"<PocketS>{seq[24]}<PocketE>" + seq[25:]
    res = task.evaluate(marked + "<ProteinE>", prompt)
    assert res.valid, res.reasons
    assert res.objects["residues"] == ["B:ASP25"] and res.objects["positions"] == [24]
    wrong = task.evaluate(seq[:-1] + "<ProteinE>", prompt)
    assert not wrong.valid and any("length" in r for r in wrong.reasons)


def test_retro_balance_and_reactant_validity():
    task, prompt = build("retro", smiles=ASPIRIN)
    assert prompt.text == f"<MoleculeS>{ASPIRIN}<MoleculeE><ReverseReact>" and prompt.stop_tags == []
    good = task.evaluate("<MoleculeS>CC(=O)Cl<MoleculeE><MoleculeS>O=C(O)c1ccccc1O<MoleculeE>", prompt)
    assert good.valid and good.scores["balanced"] and good.scores["n_reactants"] == 2
    short = task.evaluate("<MoleculeS>CC(=O)Cl<MoleculeE><MoleculeS>Oc1ccccc1<MoleculeE>", prompt)
    assert not short.valid and short.reasons[0].startswith("product atoms supplied by no reactant: C11, O12, O13")
    broken = task.evaluate("<MoleculeS>C1CC<MoleculeE>", prompt)
    assert not broken.valid and broken.reasons[0].startswith("reactant 1:")
    with pytest.raises(TaskInputError, match="not valid"):
        build("retro", smiles="C1CC")


def test_forward_reaction():
    task, prompt = build("forward", smiles="CC(=O)Cl.Oc1ccccc1C(=O)O")
    assert prompt.text.endswith("<React><MoleculeS>") and prompt.text.count("<MoleculeS>") == 3
    assert task.evaluate(ASPIRIN + "<MoleculeE>", prompt).valid
    assert not task.evaluate("CCCCCCCCCCCCCCCCCCCCC<MoleculeE>", prompt).valid


def test_material_metal_and_linkers():
    task, prompt = build("material")
    good = task.evaluate("<MetalS>Zn4O(CO2)6<MetalE><MoleculeS>O=C(O)c1ccc(C(=O)O)cc1<MoleculeE><MaterialE>", prompt)
    assert good.valid and good.scores["metals"] == ["Zn"]
    bad = task.evaluate("<MetalS>C4O<MetalE><MoleculeS>O=C([O-])c1ccccc1<MoleculeE><MaterialE>", prompt)
    assert "names no metal element" in bad.reasons[0] and "net charge -1" in bad.reasons[1]
    _, fixed = build("material", metal="Cu2(CO2)4")
    assert fixed.text == "<MaterialS><MetalS>Cu2(CO2)4<MetalE>"
    assert task.evaluate("<MoleculeS>O=C(O)c1ccccc1<MoleculeE><MaterialE>", fixed).valid


def test_antibody_pairs_and_checks_chains():
    task, prompt = build("antibody")
    assert prompt.stop_count == 2
    vh = "EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDNSKNTLYLQMNSLRAEDTAVYYCAK"
    vl = "DIQMTQSPSSLSASVGDRVTITCRASQSISSYLNWYQQKPGKAPKLLIYAASSLQSGVPSRFSGSGSGTDFTLTISSLQPEDFATYYCQQ"
    res = task.evaluate(f"{vh}<AntibodyE><AntibodyS>{vl}<AntibodyE>", prompt)
    assert res.valid and res.objects["light"] == vl
    short = task.evaluate(f"{vh[:30]}<AntibodyE>", prompt)
    assert not short.valid and any("expected 2" in r for r in short.reasons)


def test_grammars_exist_for_constrained_decoding():
    for name in ("molecule", "retro", "forward", "material", "antibody"):
        task, prompt = build(name, **({"smiles": ASPIRIN} if name in ("retro", "forward") else {}))
        g = task.grammar(prompt)
        assert g.startswith("root ::=")
