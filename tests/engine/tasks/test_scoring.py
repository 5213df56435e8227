"""Shared scores: uniqueness and novelty over a run, heavy-atom balance."""

from __future__ import annotations

from engine.tasks.scoring import RunTracker, balance, check_molecule, default_reference_path, reference_set


def test_reference_set_is_rdkit_nci_and_novelty_counts():
    assert default_reference_path().name == "first_5K.smi"
    ref = reference_set()
    assert len(ref) > 4000
    known = next(iter(sorted(ref)))
    t = RunTracker(ref)
    assert t.add(known, True) == {"unique": True, "novel": False}
    assert t.add("CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCO", True)["novel"] is True
    assert t.add(known, True)["unique"] is False
    assert t.add(None, False) == {}
    s = t.summary()
    assert s == {"samples": 4, "valid": 3, "validity": 0.75, "uniqueness": round(2 / 3, 4), "novelty": 0.5}


def test_balance_counts_elements():
    p = check_molecule("CC(=O)Oc1ccccc1C(=O)O")[0]
    a = check_molecule("CC(=O)O")[0]
    s = check_molecule("Oc1ccccc1C(=O)O")[0]
    ok, info = balance([p], [a, s])
    assert ok and info["reactant_heavy"] - info["product_heavy"] == 1
    ok, info = balance([p], [s])
    assert not ok and info["missing"] == {"C": 2, "O": 1}
