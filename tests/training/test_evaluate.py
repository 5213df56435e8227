"""Held-out metrics of the demonstration model (training.evaluate): the counts and the samplers."""

from __future__ import annotations

import pytest

from tests.fixtures.required import require_module
from training import evaluate as E

from tests.training.conftest import tiny_config


def test_moses_metrics_counts_validity_uniqueness_and_novelty():
    samples = ["CCO", "OCC", "c1ccccc1", "C1CC", "", "C<MoleculeE>C"]
    m = E.moses_metrics(samples, {"CCO"})
    assert m["samples"] == 6
    assert m["validity"] == pytest.approx(3 / 6)  # CCO, OCC (the same molecule), benzene
    assert m["uniqueness"] == pytest.approx(2 / 3)
    assert m["novelty"] == pytest.approx(1 / 2)  # benzene is new, ethanol is in the train set


def test_torch_generate_uses_the_named_sampling(tiny_tokenizer):
    from training.train import build_model

    model, tok, _ = build_model(tiny_config(), tiny_tokenizer, False)
    model.eval()
    seen = []
    real = model.generate

    def spy(*args, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty")})
        return real(*args, **kwargs)

    model.generate = spy
    for name in ("t1", "reference"):
        out = E._generate(model, tok, "<MoleculeS>", 3, "<MoleculeE>", 8, False, seed=1, sampling=name)
        assert len(out) == 3
    temperature, top_k, top_p, penalty = E.SAMPLINGS["reference"]
    assert seen[0] == {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}
    assert seen[1] == {"do_sample": True, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                       "repetition_penalty": penalty}
    # the reference sampling is the engine's default, the one the app uses
    from engine.runtime.sampling import SamplingParams

    d = SamplingParams()
    assert (d.temperature, d.top_k, d.top_p, d.repetition_penalty) == E.SAMPLINGS["reference"]


def test_llama_cpp_moses_over_several_seeds_on_the_shipped_model(monkeypatch):
    require_module("llama_cpp")
    from engine import paths
    from engine.runtime.llama import Runtime

    used = []
    real = Runtime.generate

    def spy(self, prompt, n, params, seed, **kw):
        used.append((params, seed))
        return real(self, prompt, n=n, params=params, seed=seed, **kw)

    monkeypatch.setattr(Runtime, "generate", spy)
    gguf = paths.bundled_models()[0]
    out = E.moses_with_llama_cpp(gguf, 40, set(), seed=5, sampling="reference", seeds=2)
    assert out["samples"] == 80 and out["seeds"] == 2
    assert len(out["validity_per_seed"]) == 2
    assert out["validity"] == pytest.approx(sum(out["validity_per_seed"]) / 2, abs=1e-3)
    assert out["validity"] >= 0.6  # the shipped model: about 92 % with this sampling
    params = {(p.temperature, p.top_k, p.top_p, p.repetition_penalty, p.min_p) for p, _ in used}
    assert params == {E.SAMPLINGS["reference"] + (0.0,)}
    assert len({s for _, s in used}) == len(used)  # every batch has its own seed


def test_material_vnu_counts_valid_novel_unique_over_all_samples():
    from training.evaluate import material_vnu

    train = ["<MaterialS><MetalS>[Zn]<MetalE><MoleculeS>O=C(O)c1ccc(C(=O)O)cc1<MoleculeE><MaterialE>"]
    bodies = [
        "<MetalS>[Zn]<MetalE><MoleculeS>OC(=O)c1ccc(C(O)=O)cc1<MoleculeE>",  # the training material, other SMILES
        "<MetalS>[Cu]<MetalE><MoleculeS>O=C(O)c1ccc(C(=O)O)cc1<MoleculeE>",  # novel
        "<MetalS>[Cu]<MetalE><MoleculeS>O=C(O)c1ccc(C(=O)O)cc1<MoleculeE>",  # novel, not unique
        "<MetalS>[Cu]<MetalE><MoleculeS>O=C(O)c1ccc(C(=O)O)c1<MoleculeE>",   # invalid linker
    ]
    out = material_vnu(bodies, train)
    assert out["valid"] == 0.75
    assert out["vnu"] == 0.25
    assert abs(out["novel_of_valid"] - 2 / 3) < 1e-9 and abs(out["unique_of_valid"] - 2 / 3) < 1e-9
    assert out["training_materials"] == 1
