"""training.retro_failures sorts the retrosynthesis task's own rejections into classes."""

import json

import pytest

from engine.tasks.registry import get_task
from tests.training.conftest import AnswerRuntime
from training import retro_failures as RF

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
SALICYLIC_ACID, ACETIC_ANHYDRIDE = "O=C(O)c1ccccc1O", "CC(=O)OC(C)=O"


def _reasons(product: str, *reactants: str) -> list[str]:
    """The reasons the retrosynthesis task gives for a generated answer, as a job reports them."""
    task = get_task("retro")
    prompt = task.build_prompt({}, task.check_options({"smiles": product}))
    res = task.evaluate("".join(f"<MoleculeS>{r}<MoleculeE>" for r in reactants), prompt)
    return [] if res.valid else list(res.reasons)


@pytest.mark.parametrize("reactants, expected", [
    ((), "no reactant block"),
    (("C1CC",), "a reactant is not a valid molecule"),
    (("c1ccn(c1",), "a reactant is not a valid molecule"),
    (("[CH2]C(=O)Oc1ccccc1C(=O)O",), "a reactant is not a valid molecule"),  # a radical
    (("O=C(O)C1=CC=CC=C1OC(=O)C",), "the product itself among the reactants"),
    ((SALICYLIC_ACID,), "product atoms supplied by no reactant"),
    ((SALICYLIC_ACID, ACETIC_ANHYDRIDE, "BrBr"), "a reactant supplies nothing to the product"),
    ((SALICYLIC_ACID, ACETIC_ANHYDRIDE, "CCCCCCN"), "a reactant supplies nothing to the product"),
    (("COc1ccc(C(O)C(C)OC(=O)c2csc(C)n2)cc1OC",), "too many bonds made or broken"),
])
def test_each_rejection_of_the_task_falls_in_its_class(reactants, expected):
    reasons = _reasons(ASPIRIN, *reactants)
    assert reasons, "the task accepted an answer the test expects it to reject"
    assert RF.failure_class(reasons) == expected, reasons


def test_an_accepted_answer_has_no_class_and_an_unknown_reason_is_other():
    assert _reasons(ASPIRIN, SALICYLIC_ACID, ACETIC_ANHYDRIDE) == []
    assert RF.failure_class([]) is None
    assert RF.failure_class(["something the task never said"]) == RF.OTHER


def test_report_lists_classes_and_the_template_answers():
    rep = {"products": 2, "samples_per_product": 3, "sampling": "app sampling", "samples": 6, "passed": 3,
           "pass_rate": 0.5, "classes": {"product atoms supplied by no reactant": 2, RF.OTHER: 1},
           "template_answers": 5, "template_answers_passing": 5, "seconds": 1.0}
    text = RF.format_report(rep)
    assert "3/6 pass the check (50.0%)" in text
    assert "| product atoms supplied by no reactant | 2 | 33.3% |" in text
    assert "5/5" in text


def test_a_file_that_is_not_a_heldout_file_is_refused(tmp_path, capsys):
    bad = tmp_path / "heldout.json"
    bad.write_text(json.dumps({"settings": {}}))
    assert RF.main(["model.gguf", str(bad)]) == 2
    assert "not a held-out file of logos train demo" in capsys.readouterr().err


def test_analyse_counts_each_sample_once_in_its_class():
    paracetamol = "CC(=O)Nc1ccc(O)cc1"
    items = [{"product": ASPIRIN, "target": [SALICYLIC_ACID, ACETIC_ANHYDRIDE]},
             {"product": paracetamol, "target": ["Nc1ccc(O)cc1", "CC(=O)Cl"],
              "all_targets": [["Nc1ccc(O)cc1", "CC(=O)Cl"], ["Nc1ccc(O)cc1", "CC(=O)OC(C)=O"]]}]
    blocks = lambda *s: "".join(f"<MoleculeS>{x}<MoleculeE>" for x in s)  # noqa: E731
    rt = AnswerRuntime({ASPIRIN: [blocks(SALICYLIC_ACID, ACETIC_ANHYDRIDE), blocks("C1CC"), blocks(SALICYLIC_ACID)],
                        paracetamol: [blocks(paracetamol), blocks("Nc1ccc(O)cc1", "CC(=O)Cl"), ""]})
    rep = RF.analyse(rt, items, k=3)
    assert (rep["samples"], rep["passed"]) == (6, 2)
    assert rep["classes"] == {"a reactant is not a valid molecule": 1,
                              "product atoms supplied by no reactant": 1,
                              "the product itself among the reactants": 1, "no reactant block": 1}
    assert (rep["template_answers"], rep["template_answers_passing"]) == (3, 3)
    assert rep["examples"]["no reactant block"][0]["product"] == paracetamol


def test_a_missing_model_or_a_file_that_is_not_one_is_an_error_not_a_traceback(tmp_path, capsys):
    held = tmp_path / "heldout.json"
    held.write_text(json.dumps({"heldout": {"reactions": [{"product": ASPIRIN, "target": [SALICYLIC_ACID]}]}}))
    assert RF.main([str(tmp_path / "none.gguf"), str(held)]) == 2
    assert "no such model file" in capsys.readouterr().err
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    assert RF.main([str(junk), str(held)]) == 2
    assert f"error: {junk}" in capsys.readouterr().err


def test_a_rejected_sample_without_a_reason_still_counts_as_a_failure(monkeypatch):
    from training import card

    monkeypatch.setattr(card, "_run", lambda rt, task, n, seed, **kw: [{"valid": False, "reasons": []}] * n)
    rep = RF.analyse(object(), [{"product": ASPIRIN, "target": [SALICYLIC_ACID, ACETIC_ANHYDRIDE]}], k=2)
    assert rep["passed"] == 0 and rep["classes"] == {RF.OTHER: 2}
    assert rep["examples"][RF.OTHER][0]["reason"] == ""
