"""The bundled demonstration model: what the app and the CLI load by default."""

from __future__ import annotations

import re

import pytest

from engine import paths
from tests.fixtures.required import require_module


def _demo():
    models = paths.bundled_models()
    assert models, "resources/models holds no GGUF"
    return models[0]


def test_bundled_model_file_and_tags():
    from engine.modelfiles.gguf_info import inspect_gguf

    info = inspect_gguf(_demo())
    assert info.size <= 30 * 1024 * 1024
    assert info.quant.upper().startswith("Q8_0")
    assert info.architecture == "llama"
    assert info.embedding_length % 256 == 0
    # every LOGOS tag is one token and NOT a control (special) token: llama.cpp shows it as text
    assert info.all_tags_single
    assert {t["type"] for t in info.tags.values()} == {"user_defined"}


def test_model_card_states_data_and_metrics(repo_root):
    card = (repo_root / "resources" / "models" / "MODEL_CARD.md").read_text()
    for word in ("MOSES", "CoRE MOF", "template-generated", "UniProt", "Q8_0", "not USPTO"):
        assert word.lower() in card.lower(), word
    if "INTERIM" not in card:
        for word in ("validity", "uniqueness", "novelty", "top-1 exact", "VNU", "well-formed", "Tokens seen"):
            assert word in card, word
        assert re.search(r"validity \(goal ≥ 90 %\) \| \d+\.\d %", card)


def test_default_model_is_the_demo_without_a_registry():
    from engine.models.registry import default_model

    assert default_model() == _demo()


def test_demo_generates_grammar_through_the_engine_runtime():
    require_module("llama_cpp")
    from engine.grammar import codec
    from engine.runtime.llama import Runtime
    from engine.runtime.sampling import SamplingParams

    rt = Runtime.load(_demo(), n_gpu_layers=0, n_ctx=512, n_threads=2)
    try:
        assert len(rt.tokenize("<MoleculeS>", add_special=False)) == 1
        stop = rt.token_id("<MoleculeE>")
        samples, _ = rt.generate("<MoleculeS>", n=16, seed=3, stop_ids=[stop],
                                 params=SamplingParams(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=100))
    finally:
        rt.close()
    assert sum(s.stop == "stop_token" for s in samples) >= 12  # closes the block on its own
    decoded = [codec.decode("<MoleculeS>" + s.text.split("<MoleculeE>")[0] + "<MoleculeE>") for s in samples]
    # a molecule block (its SMILES may still be invalid: validity is in the model card)
    assert sum(d.kind == "molecule" for d in decoded) >= 12, [s.text for s in samples]
