"""The model card per task: GGUF keys written by our converter and by embed_card (tensors kept byte
for byte), the registry's sidecar for imported GGUFs without keys, and 'unknown: no card' otherwise."""

from __future__ import annotations

import json
import shutil

import pytest

from engine import paths
from engine.modelfiles.errors import ModelFileError
from engine.modelfiles.gguf_info import GGUFHeader, inspect_gguf, read_header
from engine.models.card import (
    CARD_FILE,
    IMPORT_HINT,
    Figure,
    ModelCard,
    TaskCard,
    card_from_header,
    card_json,
    embed_card,
    load_card_json,
    read_card,
    tensor_data_hash,
)
from engine.models.convert import convert_hf_to_gguf
from engine.models.registry import Registry, card_event, card_for
from engine.tasks.registry import TASKS


def _card() -> ModelCard:
    return ModelCard({
        "molecule": TaskCard("trained", "1,000 MOSES molecules", figures=[
            Figure("MOSES validity", 92.5, "%", "app sampling, 1,000 samples", "llama.cpp, 2026-12-05"),
            Figure("uniqueness", 100.0, "%", "of the valid samples")]),
        "retro": TaskCard("not_learnt", "50 template pairs", note="unrelated reactants",
                          figures=[Figure("exact match", 0.0, "%", "200 pairs")]),
        "forward": TaskCard("not_trained"),
    }, summary="a test card", source="tests/engine/models/test_card.py")


def test_lines_say_what_to_expect():
    card = _card()
    assert list(card.tasks) == list(TASKS)  # every task of the catalogue, in its order
    assert card.task("molecule").line() == "trained: MOSES validity 92.5 % (app sampling, 1,000 samples)"
    assert card.task("forward").line() == f"not trained for this task: expect invalid output; {IMPORT_HINT}"
    retro = card.task("retrosynthesis")  # the task's alias
    assert retro.status == "not_learnt" and retro.line() == (
        f"seen in training but not learnt: exact match 0.0 % (200 pairs); unrelated reactants; {IMPORT_HINT}")
    assert card.task("antibody").status == "unknown" and card.task("antibody").line().startswith("unknown: no card")
    d = card.as_dict()["tasks"]
    assert d["molecule"]["trained"] is True and d["molecule"]["usable"] is True
    assert d["retro"]["trained"] is True and d["retro"]["usable"] is False
    assert d["forward"]["trained"] is False and d["antibody"]["trained"] is None
    assert "MOSES validity 92.5 % (app sampling, 1,000 samples, llama.cpp, 2026-12-05)" in d["molecule"]["details"]
    with pytest.raises(ValueError, match="status 'great'"):
        TaskCard("great")
    with pytest.raises(ValueError, match="unknown task"):
        ModelCard({"poetry": TaskCard("trained")})


def test_embed_keeps_tensors_and_other_keys(tiny_llama_gguf, tmp_path):
    src = tmp_path / "m.gguf"
    shutil.copy(tiny_llama_gguf, src)
    assert read_card(src) is None
    before_hash, before = tensor_data_hash(src), read_header(src)
    out = embed_card(src, tmp_path / "carded.gguf", _card())
    after = read_header(out)
    assert tensor_data_hash(out) == before_hash
    assert [(t.name, t.type_id, t.shape) for t in after.tensors] == [(t.name, t.type_id, t.shape) for t in before.tensors]
    kept = {k: v for k, v in after.kv.items() if not k.startswith("logos.")}
    assert kept == before.kv
    got = read_card(out)
    assert card_json(got) == card_json(_card()) and got.origin == "gguf"
    assert after.kv["logos.task.molecule.status"] == "trained"
    assert after.kv["logos.task.molecule.figure.values"] == [92.5, 100.0]
    assert "logos.task.antibody.status" not in after.kv  # unknown: no keys
    # in place, twice: the card is replaced, not appended; the tensors stay
    other = ModelCard({"molecule": TaskCard("not_trained")})
    embed_card(out, out, other)
    assert card_json(read_card(out)) == card_json(other) and tensor_data_hash(out) == before_hash
    assert inspect_gguf(out, with_hash=False).all_tags_single
    assert not list(tmp_path.glob("*.part"))


def test_bundled_model_rewrite_is_bit_identical_in_its_tensors(tmp_path):
    demo = paths.bundled_models()[0]
    copy = tmp_path / demo.name
    embed_card(demo, copy, _card())
    assert tensor_data_hash(copy) == tensor_data_hash(demo)
    assert inspect_gguf(copy, with_hash=False).quant == "Q8_0"


def test_converter_writes_the_training_card_or_none(tiny_llama_hf, tmp_path):
    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama_hf, hf)
    res = convert_hf_to_gguf(hf, tmp_path / "none.gguf")
    assert any(CARD_FILE in w for w in res.warnings)
    assert read_card(res.path) is None
    unknown = card_for(res.path)
    assert unknown.origin == "none" and {t.status for t in unknown.tasks.values()} == {"unknown"}

    (hf / CARD_FILE).write_text(card_json(_card()))
    res = convert_hf_to_gguf(hf, tmp_path / "carded.gguf")
    assert not any(CARD_FILE in w for w in res.warnings)
    assert card_json(read_card(res.path)) == card_json(_card())

    (hf / CARD_FILE).write_text(json.dumps({"tasks": {"molecule": {"status": "brilliant"}}}))
    with pytest.raises(ModelFileError) as err:
        convert_hf_to_gguf(hf, tmp_path / "bad.gguf")
    assert CARD_FILE in str(err.value) and "brilliant" in str(err.value)
    assert not (tmp_path / "bad.gguf").exists()


def test_quantising_keeps_the_card(tiny_llama_hf, tmp_path):
    from tests.fixtures.required import require_module

    require_module("llama_cpp")
    from engine.models.quantize import quantize

    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama_hf, hf)
    (hf / CARD_FILE).write_text(card_json(_card()))
    f16 = convert_hf_to_gguf(hf, tmp_path / "m-f16.gguf").path
    q = quantize(f16, tmp_path / "m-q8.gguf", "Q8_0")
    assert card_json(read_card(q.path)) == card_json(_card())


def test_sidecar_for_an_imported_gguf_without_keys(tiny_llama_gguf, tmp_path):
    reg = Registry()
    entry = reg.import_file(tiny_llama_gguf, copy=True, name="plain")
    card = card_for(entry.path, sha256=entry.sha256)
    assert card.origin == "none" and all(t.status == "unknown" for t in card.tasks.values())
    assert all(t.line().startswith("unknown: no card") for t in card.tasks.values())

    side = reg.set_card("plain", _card())
    assert side == reg.root / "cards" / "plain.json"
    got = card_for(entry.path)
    assert got.origin == "sidecar" and card_json(got) == card_json(_card())
    assert card_json(card_for(entry.path, sha256=entry.sha256)) == card_json(_card())

    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        reg.set_card("plain", {"tasks": {"poetry": {"status": "trained"}}})
    side.write_text("{not json")
    with pytest.raises(ModelFileError, match="plain.json"):
        card_for(entry.path)
    assert card_event(entry.path)["tasks"]["molecule"]["status"] == "unknown"  # the engine never raises
    assert "could not be read" in card_event(entry.path)["tasks"]["molecule"]["note"]

    reg.remove("plain")
    assert not side.exists()


def test_keys_in_the_file_win_over_a_sidecar(tiny_llama_gguf, tmp_path):
    carded = embed_card(tiny_llama_gguf, tmp_path / "carded.gguf", _card())
    reg = Registry()
    reg.import_file(carded, copy=False, name="carded")
    reg.set_card("carded", ModelCard({"molecule": TaskCard("not_trained")}))
    got = card_for(carded)
    assert got.origin == "gguf" and got.task("molecule").status == "trained"


def _header(kv: dict) -> GGUFHeader:
    return GGUFHeader(paths.resources_dir() / "x.gguf", 3, kv, [], 0, 0, 0, {k: 100 + i for i, k in enumerate(kv)})


def test_bad_card_keys_are_named_with_their_offset():
    with pytest.raises(ModelFileError) as err:
        card_from_header(_header({"logos.task.molecule.status": 7}))
    assert "logos.task.molecule.status" in str(err.value) and "at byte 100" in str(err.value)
    with pytest.raises(ModelFileError, match="1 items where figure.names has 2"):
        card_from_header(_header({"logos.task.molecule.status": "trained",
                                  "logos.task.molecule.figure.names": ["a", "b"],
                                  "logos.task.molecule.figure.values": [1.0]}))
    with pytest.raises(ModelFileError, match="not one of trained"):
        card_from_header(_header({"logos.task.molecule.status": "unknown"}))
    with pytest.raises(ModelFileError, match="newer than this program"):
        card_from_header(_header({"logos.card.version": 99}))
    # a task of a newer catalogue is skipped, not shown
    card = card_from_header(_header({"logos.task.dreams.status": "trained", "logos.task.antibody.status": "not_trained"}))
    assert set(card.tasks) == set(TASKS) and card.task("antibody").status == "not_trained"


def test_card_json_files_name_the_file(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"tasks": {"molecule": {"status": "trained", "figures": [{"name": "x"}]}}}))
    with pytest.raises(ModelFileError) as err:
        load_card_json(bad)
    assert str(bad) in str(err.value) and "figures[0]" in str(err.value)
    assert card_event(None)["tasks"]["molecule"]["note"] == "a remote model: no card"
