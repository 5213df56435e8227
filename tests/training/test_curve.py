"""The learning curve of a demo run: held-out reaction top-1 and sample validity per checkpoint."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import tiny_config

PRODUCT = "CC(=O)Nc1ccc(O)cc1"          # paracetamol
TARGET = ["Nc1ccc(O)cc1", "CC(=O)O"]    # amide disconnection
OTHER = ["Nc1ccc(O)cc1", "CC(=O)Cl"]    # another template's disconnection


def test_reaction_top1_scores_exact_sets_and_products(monkeypatch):
    from training import evaluate as E

    answers = {}

    def fake_generate(model, tok, prompt, n, stop, max_new, greedy, seed, **kw):
        assert greedy and n == 1
        return [answers["retro" if prompt.endswith("<ReverseReact>") else "forward"]]

    monkeypatch.setattr(E, "_generate", fake_generate)
    tok = type("Tok", (), {"eos_token": "<|end_of_text|>"})()
    item = {"product": PRODUCT, "target": TARGET, "all_targets": [TARGET, OTHER]}
    # the target in another order and other SMILES spellings is exact; the product too
    answers.update(retro="<MoleculeS>OC(C)=O<MoleculeE><MoleculeS>Nc1ccc(O)cc1<MoleculeE>", forward="CC(=O)Nc1ccc(O)cc1")
    assert E.reaction_top1(None, tok, [item]) == {"items": 1, "retro_top1": 1.0, "retro_top1_any_template": 1.0,
                                                    "forward_top1": 1.0}
    # another template's reactants: "any template" only; a wrong product: no forward hit
    answers.update(retro="<MoleculeS>Nc1ccc(O)cc1<MoleculeE><MoleculeS>CC(=O)Cl<MoleculeE>", forward="CC(=O)Oc1ccc(N)cc1")
    got = E.reaction_top1(None, tok, [item])
    assert (got["retro_top1"], got["retro_top1_any_template"], got["forward_top1"]) == (0.0, 1.0, 0.0)
    # a reactant missing, or a broken SMILES: no hit at all
    answers.update(retro="<MoleculeS>Nc1ccc(O)cc1<MoleculeE>", forward="CC(=O")
    got = E.reaction_top1(None, tok, [item])
    assert (got["retro_top1"], got["retro_top1_any_template"], got["forward_top1"]) == (0.0, 0.0, 0.0)


def test_retro_check_pass_counts_the_samples_the_task_accepts(monkeypatch):
    from training import evaluate as E

    samples = ["<MoleculeS>OC(C)=O<MoleculeE><MoleculeS>Nc1ccc(O)cc1<MoleculeE>",   # makes the product
               "<MoleculeS>CC(=O)Nc1ccc(O)cc1<MoleculeE>",                            # the product itself
               "<MoleculeS>Nc1ccc(O)cc1<MoleculeE><MoleculeS>CC(=O<MoleculeE>",       # a broken SMILES
               "<MoleculeS>Nc1ccc(O)cc1<MoleculeE>"]                                  # acetyl missing

    def fake_generate(model, tok, prompt, n, stop, max_new, greedy, seed, **kw):
        assert prompt == f"<MoleculeS>{PRODUCT}<MoleculeE><ReverseReact>" and not greedy
        assert kw.get("sampling") == "reference" and n == 4
        return list(samples)

    monkeypatch.setattr(E, "_generate", fake_generate)
    tok = type("Tok", (), {"eos_token": "<|end_of_text|>"})()
    got = E.retro_check_pass(None, tok, [{"product": PRODUCT, "target": TARGET}], k=4)
    assert got == {"retro_check_pass": 0.25, "retro_check_samples": 4}


def test_ligand_valid_counts_the_ligands_the_task_accepts(monkeypatch):
    from training import evaluate as E

    samples = ["CC(=O)Nc1ccc(O)cc1<MoleculeE>",          # a valid molecule, record closed
               "CC(=O<MoleculeE>",                        # a broken SMILES
               "CC(=O)Nc1ccc(O)cc1",                      # cut by the length limit: never closed
               "CC<PocketS>L<PocketE>C<MoleculeE>"]       # back into the protein's grammar
    seen = {}

    def fake_generate(model, tok, prompt, n, stop, max_new, greedy, seed, **kw):
        seen.update(prompt=prompt, stop=stop, n=n, greedy=greedy, **kw)
        return list(samples)

    monkeypatch.setattr(E, "_generate", fake_generate)
    got = E.ligand_valid(None, None, 4)
    assert got == {"ligand_valid": 0.25, "ligand_samples": 4, "ligand_pocket": "XK2 of 1hvr.pdb"}
    # the ligand task's own prompt for the pocket of XK2: the marked protein, then a molecule opens
    assert seen["prompt"].startswith("<ProteinS>") and seen["prompt"].endswith("<MoleculeS>")
    assert "<PocketS>" in seen["prompt"] and seen["stop"] == "<MoleculeE>"
    assert seen["sampling"] == "reference" and seen["keep_stop"] and not seen["greedy"] and seen["n"] == 4


def test_curve_scores_every_checkpoint_of_a_run(real_rows, tiny_tokenizer, tmp_path, capsys, monkeypatch):
    from training import curve
    from training.train import train

    out = tmp_path / "demo"
    res = train(tiny_config(steps=6), real_rows, real_rows[:20], out / "run", tokenizer=tiny_tokenizer)
    assert res.status == "finished"
    (out / "data").mkdir()
    item = {"product": PRODUCT, "target": TARGET, "all_targets": [TARGET]}
    (out / "data" / "heldout.json").write_text(json.dumps({"settings": {}, "heldout": {"reactions": [item]}}))
    assert curve.main([str(out), "--items", "1", "--samples", "4", "--ligands", "0"]) == 0
    rows = json.loads((out / "curve.json").read_text())
    assert all("ligand_valid" not in r for r in rows)
    # rows scored before the ligand figure get it added, and nothing else is scored again
    with monkeypatch.context() as mp:
        mp.setattr(curve, "checkpoint_row", lambda *a, **kw: pytest.fail("scored again"))
        assert curve.main([str(out), "--items", "1", "--samples", "4", "--ligands", "3"]) == 0
    with_ligands = json.loads((out / "curve.json").read_text())
    for before, after in zip(rows, with_ligands):
        assert after["ligand_samples"] == 3 and 0.0 <= after["ligand_valid"] <= 1.0
        assert after["ligand_pocket"] == "XK2 of 1hvr.pdb"
        assert {k: v for k, v in after.items() if not k.startswith("ligand")} == before
    rows = with_ligands
    assert [r["step"] for r in rows] == [3, 6]
    assert [r["tokens_seen"] for r in rows] == [3 * 4 * 64, 6 * 4 * 64]
    for r in rows:
        assert r["items"] == 1
        assert r["retro_check_samples"] == 4
        for key in ("retro_top1", "retro_check_pass", "forward_top1", "materials_metal_and_valid_linkers",
                    "molecule_validity_t1"):
            assert 0.0 <= r[key] <= 1.0
    assert "retro@1" in capsys.readouterr().out
    assert {r["layers"] for r in rows} == {tiny_config().model.num_hidden_layers}
    assert rows[0]["parameters"] == rows[1]["parameters"] > 0
    assert all(r["train_minutes"] is not None and r["train_minutes"] >= 0 for r in rows)

    # a second call keeps the rows it has (same settings) and scores nothing again
    def no_scoring(*a, **kw):
        raise AssertionError("scored again")

    monkeypatch.setattr(curve, "checkpoint_row", no_scoring)
    monkeypatch.setattr(curve, "add_ligands", no_scoring)
    assert curve.main([str(out), "--items", "1", "--samples", "4", "--ligands", "3"]) == 0
    assert json.loads((out / "curve.json").read_text()) == rows
    # other settings are scored afresh
    with pytest.raises(AssertionError, match="scored again"):
        curve.main([str(out), "--items", "1", "--samples", "5", "--ligands", "3"])
    capsys.readouterr()

    # two runs side by side, matched by tokens seen; a run scored only at its end shows '-' before it
    other = tmp_path / "other"
    other.mkdir()
    (other / "curve.json").write_text(json.dumps([dict(rows[1], retro_top1=0.5, layers=8, parameters=7_300_000)]))
    assert curve.main(["--compare", str(out), str(other)]) == 0
    printed = capsys.readouterr().out
    assert f"run a: {out}" in printed and "run b:" in printed and "8 layers, 7.30 M parameters" in printed
    lines = {ln.split()[0]: ln for ln in printed.splitlines() if ln.strip() and ln.split()[0][0].isdigit()}
    first, last = (f"{t:,}" for t in (rows[0]["tokens_seen"], rows[1]["tokens_seen"]))
    assert " / -" in lines[first] and "/ 50.0%" in lines[last]
    # a run without a curve is named, not a traceback
    assert curve.main(["--compare", str(out), str(tmp_path / "none")]) == 1
    assert "none" in capsys.readouterr().err
