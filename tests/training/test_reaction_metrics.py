"""Reaction figures of training.evaluate.reaction_metrics through the engine's job path: counted
right on a runtime whose answers are known, and measured on the shipped demonstration GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import AnswerRuntime
from training import evaluate as E

GGUF = Path(__file__).resolve().parents[2] / "resources" / "models" / "logos-demo-q8_0.gguf"

# held-out items as training.reactions writes them (targets pass the engine's reaction check)
HELD = [
    {"product": "CC(=O)Oc1ccccc1C(=O)O", "target": ["O=C(O)c1ccccc1O", "CC(=O)Cl"],
     "all_targets": [["O=C(O)c1ccccc1O", "CC(=O)Cl"], ["COC(=O)c1ccccc1OC(C)=O"]], "template": "t"},
    {"product": "CC(=O)Nc1ccc(O)cc1", "target": ["Nc1ccc(O)cc1", "CC(=O)Cl"],
     "all_targets": [["Nc1ccc(O)cc1", "CC(=O)Cl"]], "template": "t"},
]


def _blocks(smiles):
    return "".join(f"<MoleculeS>{s}<MoleculeE>" for s in smiles)


def test_counts_on_known_answers():
    aspirin, paracetamol = HELD[0]["product"], HELD[1]["product"]
    # aspirin: greedy and the first sample are right; paracetamol: the target only as the 3rd sample,
    # the other samples are unrelated molecules that fail the retrosynthesis check
    retro = {aspirin: [_blocks(HELD[0]["target"])],
             paracetamol: [_blocks(["CCCCCCCCCC"]), _blocks(["c1ccncc1"]), _blocks(HELD[1]["target"])]}
    forward = {_blocks(HELD[0]["target"]) + "<React><MoleculeS>": [aspirin + "<MoleculeE>"],
               _blocks(HELD[1]["target"]) + "<React><MoleculeS>": ["CCCCCCCCCCCC<MoleculeE>"]}
    m = E.reaction_metrics(AnswerRuntime(retro, forward), HELD, k=3, seeds=(0, 1))
    assert m["products"] == 2 and m["k"] == 3
    assert m["retro_top1_greedy"] == 0.5
    assert m["retro_top1_first_sample"]["per_seed"] == [0.5, 0.5]
    assert m["retro_top3"]["mean"] == 1.0 and m["retro_top3_any_template"]["mean"] == 1.0
    # 3 aspirin samples pass, 1 of 3 paracetamol samples passes
    assert m["retro_check_pass"]["mean"] == pytest.approx(4 / 6)
    assert m["retro_check_pass"]["spread"] == 0.0
    assert m["forward_top1_greedy"] == 0.5 and m["forward_top1_first_sample"]["mean"] == 0.5
    assert m["forward_check_pass"]["mean"] == 0.5  # dodecane is not made from acetyl chloride + aminophenol


def test_shipped_demo_model_on_five_heldout_products():
    from training import data as D
    from training import reactions as X

    if not GGUF.is_file():
        pytest.skip("the shipped GGUF is not in resources/models")
    _, held = X.build_reactions(60, 3, 5, 5, D.BuildReport())
    assert len(held) == 5
    m = E.reaction_metrics(str(GGUF), held, k=4, seeds=(0, 1, 2), max_new_tokens=96)
    assert m["products"] == 5 and len(m["retro_top4"]["per_seed"]) == 3
    for key in ("retro_top1_first_sample", "retro_top4", "retro_check_pass", "forward_top1_first_sample"):
        assert all(0.0 <= v <= 1.0 for v in m[key]["per_seed"]), key
    assert m["retro_top4"]["mean"] >= m["retro_top1_first_sample"]["mean"]
    print(m)
