"""Bad checkpoints: a clear error naming the file and the field, and no output left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main as logos
from engine.modelfiles.errors import ModelFileError, TokenizerMappingError, UnsupportedArchitectureError
from engine.models.convert import convert_hf_to_gguf
from engine.models.registry import Registry


@pytest.fixture
def llama_copy(tiny_llama_hf, tmp_path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(tiny_llama_hf, dst)
    return dst


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _no_output(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if p.suffix in (".gguf", ".part")]


def _convert_fails(src: Path, tmp_path: Path, exc_type, *needles) -> str:
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    with pytest.raises(exc_type) as err:
        convert_hf_to_gguf(src, out_dir / "m.gguf")
    msg = str(err.value)
    for needle in needles:
        assert needle in msg, msg
    _no_output(out_dir)
    return msg


def test_unsupported_architecture(llama_copy, tmp_path):
    _edit_json(llama_copy / "config.json", lambda c: c.update(architectures=["MistralForCausalLM"]))
    _convert_fails(llama_copy, tmp_path, UnsupportedArchitectureError,
                   str(llama_copy / "config.json"), "architectures", "MistralForCausalLM", "LlamaForCausalLM")


def test_missing_shard(llama_copy, tmp_path):
    index = json.loads((llama_copy / "model.safetensors.index.json").read_text())
    victim = sorted(set(index["weight_map"].values()))[1]
    (llama_copy / victim).unlink()
    _convert_fails(llama_copy, tmp_path, ModelFileError, "model.safetensors.index.json", "weight_map", victim, "missing")


def test_truncated_shard(llama_copy, tmp_path):
    shard = sorted(llama_copy.glob("model-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:-1000])
    _convert_fails(llama_copy, tmp_path, ModelFileError, shard.name, "truncated")


def test_vocab_size_does_not_match_embedding(llama_copy, tmp_path):
    _edit_json(llama_copy / "config.json", lambda c: c.update(vocab_size=c["vocab_size"] + 7))
    _convert_fails(llama_copy, tmp_path, ModelFileError, "config.json", "vocab_size", "model.embed_tokens.weight")


def test_tokenizer_larger_than_embedding(llama_copy, tmp_path):
    def add_token(t):
        t["added_tokens"].append({"id": max(a["id"] for a in t["added_tokens"]) + 1, "content": "<NewTag>",
                                  "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
                                  "special": True})
    _edit_json(llama_copy / "tokenizer.json", add_token)
    _convert_fails(llama_copy, tmp_path, TokenizerMappingError, "tokenizer.json", "added_tokens", "<NewTag>", "rows")


@pytest.mark.parametrize("mutate, field", [
    (lambda t: t["model"].update(type="WordPiece"), "model.type"),
    (lambda t: t["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\w+|\s+"), "pre_tokenizer"),
    (lambda t: t.update(pre_tokenizer={"type": "Metaspace", "replacement": "▁"}), "pre_tokenizer"),
    (lambda t: t.update(decoder={"type": "Metaspace"}), "decoder"),
])
def test_unmappable_tokenizer(llama_copy, tmp_path, mutate, field):
    _edit_json(llama_copy / "tokenizer.json", mutate)
    _convert_fails(llama_copy, tmp_path, TokenizerMappingError, str(llama_copy / "tokenizer.json"), field)


def test_unknown_special_token_in_config(llama_copy, tmp_path):
    _edit_json(llama_copy / "tokenizer_config.json", lambda c: c.update(bos_token="<s>"))
    _convert_fails(llama_copy, tmp_path, TokenizerMappingError, "tokenizer_config.json", "bos_token", "'<s>'")


def test_missing_tensor(tiny_qwen3_hf, tmp_path):
    from safetensors.numpy import load_file, save_file

    src = tmp_path / "q"
    shutil.copytree(tiny_qwen3_hf, src)
    tensors = load_file(src / "model.safetensors")
    del tensors["model.layers.1.mlp.down_proj.weight"]
    save_file(tensors, src / "model.safetensors")
    _convert_fails(src, tmp_path, ModelFileError, "model.layers.1.mlp.down_proj.weight", "missing")


def test_unsupported_rope(llama_copy, tmp_path):
    _edit_json(llama_copy / "config.json", lambda c: c["rope_parameters"].update(rope_type="dynamic"))
    _convert_fails(llama_copy, tmp_path, ModelFileError, "config.json", "rope_parameters.rope_type", "dynamic")


def test_cli_reports_error_and_registers_nothing(llama_copy, tmp_path, capsys):
    _edit_json(llama_copy / "config.json", lambda c: c.update(architectures=["GPT2LMHeadModel"]))
    out = tmp_path / "o"
    out.mkdir()
    rc = logos(["models", "convert", str(llama_copy), str(out / "m.gguf"), "--register"])
    err = capsys.readouterr().err
    assert rc == 2 and "GPT2LMHeadModel" in err and "architectures" in err and "Traceback" not in err
    _no_output(out)
    assert Registry().list() == [] and not Registry().manifest.exists()


def test_cli_convert_and_register(tiny_qwen3_hf, tmp_path, capsys):
    out = tmp_path / "q.gguf"
    assert logos(["models", "convert", str(tiny_qwen3_hf), str(out), "--outtype", "f32", "--register"]) == 0
    assert "wrote" in capsys.readouterr().out
    (entry,) = Registry().list()
    assert entry.path == str(out.resolve()) and entry.quant == "F32" and not entry.managed
