"""MOSES's metric suite (training.moses_metrics) on hand-checkable sets of real MOSES molecules."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from engine import datasets
from tests.fixtures.required import missing, require_module
from training import moses_metrics as M

require_module("rdkit", allow_module_level=True)


def _split(member: str, n: int) -> list[str]:
    try:
        return M.moses_split(member)[:n]
    except datasets.DatasetMissing as exc:
        missing(str(exc))


@pytest.fixture(scope="module")
def test_rows() -> list[str]:
    return _split(M.TEST, 400)


def _mols(smiles):
    return [M.get_mol(s) for s in smiles]


def _rdkit_tanimoto(a: str, b: str) -> float:
    from rdkit import DataStructs
    from rdkit.Chem import AllChem

    fa, fb = (AllChem.GetMorganFingerprintAsBitVect(M.get_mol(s), 2, nBits=1024) for s in (a, b))
    return DataStructs.TanimotoSimilarity(fa, fb)


def _ref(smiles) -> dict:
    mols = _mols(smiles)
    return {"fps": M.fingerprints(mols), "frag": M.count_fragments(mols), "scaf": M.count_scaffolds(mols),
            "n": len(smiles)}


# --- validity and uniqueness ----------------------------------------------------------------

def test_validity_counts_empty_unparsable_and_tagged_text_as_invalid(test_rows):
    a, b = test_rows[:2]
    samples = [a, a, b, "", "C1CC", "CC<MoleculeE>", "c1ccccc1X"]
    res = M.compute(samples, ref=_ref(test_rows[:50]), train=set(), fcd_ref=None, chemnet=None)
    assert res["samples"] == 7 and res["valid"] == 3
    assert res["validity"] == pytest.approx(3 / 7)
    # unique@1k over the 3 valid ones there are: a, a, b -> 2 distinct
    assert res["unique@1k"] == pytest.approx(2 / 3) and res["unique@1k_over"] == 3


def test_unique_at_k_looks_only_at_the_first_k_valid_samples(test_rows):
    samples = test_rows[:5] * 300  # 1,500 valid samples, 5 distinct
    res = M.compute(samples, ref=_ref(test_rows[:20]), train=set(), fcd_ref=None, chemnet=None,
                    ks=(10, 1000))
    assert res["unique@10"] == pytest.approx(5 / 10)  # k = 10: the first ten hold the five twice
    assert res["unique@1k"] == pytest.approx(5 / 1000)


def test_a_different_spelling_of_the_same_molecule_is_not_unique():
    samples = ["OCC", "CCO", "C(O)C"]
    res = M.compute(samples, ref=_ref(["CCO"]), train=set(), fcd_ref=None, chemnet=None)
    assert res["unique@1k"] == pytest.approx(1 / 3)


# --- SNN, Frag, Scaf on identical and disjoint sets --------------------------------------------

def test_a_set_against_itself_has_snn_frag_and_scaf_one(test_rows):
    res = M.compute(test_rows[:200], ref=_ref(test_rows[:200]), train=set(), fcd_ref=None, chemnet=None)
    assert res["SNN/Test"] == pytest.approx(1.0)
    assert res["Frag/Test"] == pytest.approx(1.0)
    assert res["Scaf/Test"] == pytest.approx(1.0)
    assert res["novelty"] == 1.0  # an empty train set: everything is new


def test_snn_is_the_mean_nearest_neighbour_similarity_rdkit_computes(test_rows):
    gen, ref = test_rows[:3], test_rows[100:130]
    expected = np.mean([max(_rdkit_tanimoto(g, r) for r in ref) for g in gen])
    res = M.compute(gen, ref=_ref(ref), train=set(), fcd_ref=None, chemnet=None)
    assert 0.1 < expected < 0.9
    assert res["SNN/Test"] == pytest.approx(expected, abs=1e-6)


def test_sets_with_disjoint_scaffolds_have_scaf_zero(test_rows):
    mols = _mols(test_rows)
    scafs = [M.scaffold(m) for m in mols]
    ring2 = [s for s in scafs if s is not None]
    first = ring2[0]
    a = [smi for smi, s in zip(test_rows, scafs) if s == first]
    b = [smi for smi, s in zip(test_rows, scafs) if s is not None and s != first][:60]
    assert a and len(b) == 60
    res = M.compute(a, ref=_ref(b), train=set(), fcd_ref=None, chemnet=None)
    assert res["Scaf/Test"] == 0.0
    assert 0.0 < res["Frag/Test"] < 1.0  # they still share BRICS fragments


def test_scaffolds_with_fewer_than_two_rings_are_not_counted():
    # toluene's scaffold is benzene (one ring): MOSES's min_rings = 2 drops it
    assert M.scaffold(M.get_mol("Cc1ccccc1")) is None
    assert M.scaffold(M.get_mol("CCc1ccc(-c2ccccn2)cc1")) == "c1ccc(-c2ccccn2)cc1"
    assert M.count_scaffolds(_mols(["Cc1ccccc1", "CCOc1ccc(-c2ccccn2)cc1"])) == Counter({"c1ccc(-c2ccccn2)cc1": 1})


def test_frag_is_the_cosine_of_brics_fragment_counts():
    # ethyl benzoate breaks at the ester: [16*]c1ccccc1 (x) + [6*]C(=O)..., the same pieces as a hand count
    frags = M.fragments(M.get_mol("CCOC(=O)c1ccccc1"))
    assert len(frags) > 1 and any("c1ccccc1" in f for f in frags)
    ref = {"x": 3, "y": 4}
    assert M.cosine(ref, {"x": 3, "y": 4}) == pytest.approx(1.0)
    assert M.cosine(ref, {"z": 1}) == 0.0
    assert M.cosine(ref, {"x": 1}) == pytest.approx(3 / 5)
    assert np.isnan(M.cosine(ref, {}))


def _moses_shipped_stats() -> dict:
    """MOSES's own statistics of its full test set (molsets's ``test_stats.npz``, inside the
    hash-pinned data package): the reference our code is checked against. The file is a pickled
    dict, so only this test reads it; the product computes its own (training/moses_metrics.py)."""
    import io

    from engine import datasets

    raw = datasets.read_bytes(M.PACKAGE, M.TEST_STATS)
    return np.load(io.BytesIO(raw), allow_pickle=True)["stats"].item()


def test_fingerprints_are_the_ones_moses_shipped_for_its_test_set():
    shipped = _moses_shipped_stats()
    rows = _split(M.TEST, 1000)
    ours = np.unpackbits(M.fingerprints(_mols(rows)), axis=1)
    assert shipped["SNN"]["fps"].shape == (176_074, 1024)
    assert np.array_equal(ours, shipped["SNN"]["fps"][:1000])
    # and the BRICS fragments and scaffolds of those rows are keys of MOSES's own counts
    assert set(M.count_fragments(_mols(rows[:200]))) <= set(shipped["Frag"]["frag"])
    assert set(M.count_scaffolds(_mols(rows[:200]))) <= set(shipped["Scaf"]["scaf"])


# --- IntDiv --------------------------------------------------------------------------------

def test_intdiv_of_one_repeated_molecule_is_zero(test_rows):
    res = M.compute([test_rows[7]] * 25, ref=_ref(test_rows[:20]), train=set(), fcd_ref=None, chemnet=None)
    assert res["IntDiv"] == pytest.approx(0.0, abs=1e-12)
    assert res["IntDiv2"] == pytest.approx(0.0, abs=1e-12)


def test_intdiv_of_two_molecules_by_hand(test_rows):
    a, b = test_rows[0], test_rows[1]
    t = _rdkit_tanimoto(a, b)
    res = M.compute([a, b], ref=_ref(test_rows[:20]), train=set(), fcd_ref=None, chemnet=None)
    # all four ordered pairs: T(a,a) = T(b,b) = 1, T(a,b) = T(b,a) = t
    assert res["IntDiv"] == pytest.approx(1 - (2 + 2 * t) / 4)
    # MOSES's p = 2 form: per molecule sqrt(mean of T^2), then the mean
    assert res["IntDiv2"] == pytest.approx(1 - np.sqrt((1 + t * t) / 2))


def test_duplicates_count_in_intdiv_as_separate_samples(test_rows):
    a, b = test_rows[0], test_rows[1]
    t = _rdkit_tanimoto(a, b)
    res = M.compute([a, a, b], ref=_ref(test_rows[:20]), train=set(), fcd_ref=None, chemnet=None)
    # 9 ordered pairs: 5 identical (a-a x4, b-b x1) and 4 a-b
    assert res["IntDiv"] == pytest.approx(1 - (5 + 4 * t) / 9)


# --- novelty -------------------------------------------------------------------------------

def test_novelty_of_train_molecules_is_zero_and_a_new_one_counts():
    train_rows = _split(M.TRAIN, 300)
    train = {M.canonical(s) for s in train_rows}
    res = M.compute(train_rows[:100], ref=_ref(train_rows[:20]), train=train, fcd_ref=None, chemnet=None)
    assert res["novelty"] == 0.0
    new = "CC(C)(C)OC(=O)N1CCC(CC1)C(=O)O"  # not among these 300 rows
    assert M.canonical(new) not in train
    res = M.compute(train_rows[:3] + [new, new], ref=_ref(train_rows[:20]), train=train, fcd_ref=None,
                    chemnet=None)
    assert res["novelty"] == pytest.approx(1 / 4)  # distinct valid: 3 from train + 1 new


# --- FCD -----------------------------------------------------------------------------------

def test_frechet_distance_of_diagonal_gaussians_by_hand():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    # |dmu|^2 + sum (sqrt(a) - sqrt(b))^2 for diagonal covariances
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)
    assert M.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_weighted_gaussian_equals_the_repeated_rows():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(6, 4))
    w = np.array([1, 3, 2, 1, 1, 4])
    mu, sigma = M.gaussian(rows, w)
    mu2, sigma2 = M.gaussian(np.repeat(rows, w, axis=0))
    assert np.allclose(mu, mu2) and np.allclose(sigma, sigma2)


@pytest.fixture(scope="module")
def chemnet():
    require_module("torch")
    require_module("fcd_torch")
    return M.ChemNet(threads=2)


def test_fcd_of_a_set_against_itself_is_zero_and_of_other_molecules_is_not(chemnet, test_rows):
    gen = test_rows[:200]
    ref_acts = chemnet.activations(gen)
    mu, sigma = M.gaussian(ref_acts)
    res = M.compute(gen, ref=_ref(gen), train=set(), fcd_ref=(mu, sigma), chemnet=chemnet)
    assert res["FCD/Test"] == pytest.approx(0.0, abs=1e-3)
    other = _split(M.TEST, 400)[200:400]
    res = M.compute(other, ref=_ref(gen), train=set(), fcd_ref=(mu, sigma), chemnet=chemnet)
    assert res["FCD/Test"] > 1.0  # two samples of 200 differ by sampling noise alone


def test_moses_shipped_test_statistics_agree_with_chemnet_here(chemnet):
    stats = _moses_shipped_stats()
    mu, sigma = np.asarray(stats["FCD"]["mu"]), np.asarray(stats["FCD"]["sigma"])
    assert mu.shape == (512,) and sigma.shape == (512, 512)
    everything = _split(M.TEST, 200_000)
    assert len(everything) == 176_074
    pick = np.random.default_rng(0).choice(len(everything), 2000, replace=False)
    own = M.gaussian(chemnet.activations([everything[i] for i in pick]))
    near = M.frechet_distance(*own, mu, sigma)
    # small molecules unlike MOSES's 250-350 Da leads are far from the test distribution
    small = ["CCO", "CC(=O)O", "c1ccccc1", "CCN", "OCCO", "CC(C)O", "CCCC", "C1CCCCC1", "CN", "CCOC"] * 20
    far = M.frechet_distance(*M.gaussian(chemnet.activations(small)), mu, sigma)
    # 2,000 random test molecules against all 176,074: the finite-sample floor, about 0.6 (0.3 at
    # 4,000: it halves as the sample doubles), so the shipped statistics match this ChemNet and RDKit
    assert near < 1.0, near
    assert far > 20 * near


# --- the printout and the command line ------------------------------------------------------

def test_table_prints_our_row_beside_the_published_baselines():
    res = {"validity": 0.5, "FCD/Test": 1.25, "SNN/Test": float("nan")}
    text = M.table(res, "mine.gguf")
    lines = text.splitlines()
    assert lines[0].startswith("| model | validity | unique@1k | unique@10k | FCD/Test")
    assert "| **mine.gguf** | 0.5000 | – | – | 1.2500 | nan |" in text
    assert any(ln.startswith("| CharRNN | 0.9748 |") and "| 0.0732 |" in ln for ln in lines)
    for name in ("VAE", "JTN-VAE", "AAE"):
        assert any(ln.startswith(f"| {name} |") for ln in lines)
    assert M.goal_lines({"validity": 0.96, "FCD/Test": 0.43}) == [
        "validity 0.9600 (goal >= 0.95): met", "FCD/Test 0.4300 (goal <= 0.2): NOT met"]


def test_command_line_on_a_samples_file(tmp_path, monkeypatch, capsys, test_rows):
    monkeypatch.setattr(M, "_cache_root", lambda: tmp_path / "cache")
    samples = tmp_path / "samples.txt"
    samples.write_text("\n".join(test_rows[:30] + ["", "C1CC", test_rows[0]]) + "\n")
    out_json = tmp_path / "m.json"
    rc = M.main(["--samples", str(samples), "--test-rows", "300", "--train-rows", "500", "--no-fcd",
                 "--json", str(out_json)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| **samples.txt** | 0.9394 |" in printed  # 31 of 33 parse: not the empty line, not C1CC
    assert "unique@10k is over the 31 valid samples there are" in printed
    data = json.loads(out_json.read_text())
    assert data["samples"] == 33 and data["valid"] == 31 and data["test_molecules"] == 300
    assert data["SNN/Test"] == pytest.approx(1.0)  # the first 30 test rows are in the reference
    assert data["novelty"] == 1.0  # test molecules are not in the train split
    # the reference statistics were cached and are read back the second time
    assert list((tmp_path / "cache").glob("test_300_*/fps.npy"))
    assert M.main(["--samples", str(samples), "--test-rows", "300", "--train-rows", "500", "--no-fcd"]) == 0


def test_command_line_names_a_missing_samples_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        M.main(["--samples", str(tmp_path / "nope.txt")])
    assert "nope.txt: no such file" in capsys.readouterr().err


def test_command_line_refuses_a_file_that_is_not_a_gguf_with_its_name(tmp_path, capsys):
    require_module("llama_cpp")
    bad = tmp_path / "notes.gguf"
    bad.write_text("these are notes, not a model\n")
    assert M.main(["--model", str(bad), "-n", "4", "--no-fcd"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "notes.gguf" in err


def test_samples_come_from_the_engine_at_the_moses_convention(monkeypatch):
    require_module("llama_cpp")
    from engine import paths
    from engine.runtime.llama import Runtime

    if not paths.bundled_models():
        missing("no bundled GGUF in resources/models")
    used = []
    real = Runtime.generate

    def spy(self, prompt, n, params, seed, **kw):
        used.append((prompt, n, params, seed))
        return real(self, prompt, n=n, params=params, seed=seed, **kw)

    monkeypatch.setattr(Runtime, "generate", spy)
    texts = M.sample_engine(paths.bundled_models()[0], 40, seed=3, batch=16, log=lambda _m: None)
    assert len(texts) == 40 and not any("<MoleculeE>" in t for t in texts)
    assert [n for _, n, _, _ in used] == [16, 16, 8]
    assert {p for p, _, _, _ in used} == {"<MoleculeS>"}
    assert {(p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty) for _, _, p, _ in used} == {
        (1.0, 0, 1.0, 0.0, 1.0)}
    assert len({s for _, _, _, s in used}) == 3  # each batch its own seed
    assert sum(M.get_mol(t) is not None for t in texts) >= 24  # the shipped model: about 86 % at T = 1


def test_card_option_needs_a_model(tmp_path, capsys):
    from training.moses_metrics import main

    f = tmp_path / "s.txt"
    f.write_text("CCO\n")
    with pytest.raises(SystemExit):
        main(["--samples", str(f), "--card"])
    assert "--card needs --model" in capsys.readouterr().err
