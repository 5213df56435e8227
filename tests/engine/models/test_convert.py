"""The HF → GGUF converter, checked with gguf's own reader against the checkpoint it came from."""

from __future__ import annotations

import json

import gguf
import numpy as np
import pytest

from engine.models.convert import convert_hf_to_gguf, llama3_rope_factors
from engine.models.hf_config import read_config
from engine.models.safetensors_io import list_tensors


def _fields(reader: gguf.GGUFReader) -> dict:
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def _hf_tensor(folder, name) -> np.ndarray:
    ref = next(r for r in list_tensors(folder) if r.name == name)
    return ref.load_f32()


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize("tags", ["special", "ordinary"])
def test_metadata_and_vocab(tiny_hf, tmp_path, arch, tags):
    folder = tiny_hf(arch, tags)
    result = convert_hf_to_gguf(folder, tmp_path / "m.gguf", outtype="f32")
    assert result.path.is_file() and not (tmp_path / "m.gguf.part").exists()
    kv = _fields(gguf.GGUFReader(result.path))
    cfg = json.loads((folder / "config.json").read_text())
    tj = json.loads((folder / "tokenizer.json").read_text())
    a = "llama" if arch == "llama" else "qwen3"
    assert kv["general.architecture"] == a
    assert kv[f"{a}.embedding_length"] == cfg["hidden_size"]
    assert kv[f"{a}.block_count"] == cfg["num_hidden_layers"]
    assert kv[f"{a}.attention.head_count_kv"] == cfg["num_key_value_heads"]
    assert kv[f"{a}.context_length"] == cfg["max_position_embeddings"]
    assert kv[f"{a}.rope.freq_base"] == pytest.approx(cfg["rope_parameters"]["rope_theta"])
    assert kv["tokenizer.ggml.pre"] == ("llama-bpe" if arch == "llama" else "qwen2")
    tokens, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
    assert len(tokens) == cfg["vocab_size"]
    for t in tj["added_tokens"]:  # every added token keeps its id and its kind
        assert tokens[t["id"]] == t["content"]
        assert types[t["id"]] == (gguf.TokenType.CONTROL if t["special"] else gguf.TokenType.USER_DEFINED)
    tag_type = types[tokens.index("<MoleculeS>")]
    assert tag_type == (gguf.TokenType.CONTROL if tags == "special" else gguf.TokenType.USER_DEFINED)
    for text, idx in tj["model"]["vocab"].items():
        assert tokens[idx] == text and types[idx] == gguf.TokenType.NORMAL
    merges = kv["tokenizer.ggml.merges"]
    assert merges[:3] == [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"][:3]]
    if arch == "llama":
        assert kv["tokenizer.ggml.add_bos_token"] is True
        assert tokens[kv["tokenizer.ggml.bos_token_id"]] == "<|begin_of_text|>"
        assert tokens[kv["tokenizer.ggml.eos_token_id"]] == "<|end_of_text|>"
        assert tokens[kv["tokenizer.ggml.padding_token_id"]] == "<|eot_id|>"
    else:
        assert kv["tokenizer.ggml.add_bos_token"] is False
        assert tokens[kv["tokenizer.ggml.eos_token_id"]] == "<|endoftext|>"
        n_tok = max(t["id"] for t in tj["added_tokens"]) + 1
        assert n_tok < len(tokens)  # vocabulary padded past the tokenizer, as Qwen3 checkpoints are
        assert all(ty == gguf.TokenType.UNUSED for ty in types[n_tok:])


def test_llama_tensors_permuted_and_untied(tiny_llama_hf, tmp_path):
    path = convert_hf_to_gguf(tiny_llama_hf, tmp_path / "l.gguf", outtype="f32").path
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    cfg = read_config(tiny_llama_hf)
    assert "output.weight" in tensors  # untied output kept
    np.testing.assert_array_equal(np.asarray(tensors["output.weight"].data), _hf_tensor(tiny_llama_hf, "lm_head.weight"))
    q_hf = _hf_tensor(tiny_llama_hf, "model.layers.1.self_attn.q_proj.weight")
    q_gg = np.asarray(tensors["blk.1.attn_q.weight"].data)
    assert not np.array_equal(q_gg, q_hf)  # rows moved ...
    hd = cfg.head_dim
    # ... so that rotary pair (i, i + hd/2) of each head becomes the adjacent rows (2i, 2i+1)
    for head in range(cfg.n_head):
        for i in range(hd // 2):
            np.testing.assert_array_equal(q_gg[head * hd + 2 * i], q_hf[head * hd + i])
            np.testing.assert_array_equal(q_gg[head * hd + 2 * i + 1], q_hf[head * hd + hd // 2 + i])
    k_gg = np.asarray(tensors["blk.0.attn_k.weight"].data)
    k_hf = _hf_tensor(tiny_llama_hf, "model.layers.0.self_attn.k_proj.weight")
    np.testing.assert_array_equal(k_gg[1], k_hf[hd // 2])  # K permuted with the KV head count
    np.testing.assert_array_equal(np.asarray(tensors["blk.0.attn_v.weight"].data),
                                  _hf_tensor(tiny_llama_hf, "model.layers.0.self_attn.v_proj.weight"))
    rope = np.asarray(tensors["rope_freqs.weight"].data)
    np.testing.assert_allclose(rope, llama3_rope_factors(cfg))
    assert rope[0] == 1.0 and rope[-1] == pytest.approx(8.0)  # high frequencies kept, low ones scaled


def test_qwen3_tied_not_permuted_f16(tiny_qwen3_hf, tmp_path):
    path = convert_hf_to_gguf(tiny_qwen3_hf, tmp_path / "q.gguf", outtype="f16").path
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    assert tensors["blk.0.attn_q_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    q = tensors["blk.0.attn_q.weight"]
    assert q.tensor_type == gguf.GGMLQuantizationType.F16
    np.testing.assert_array_equal(np.asarray(q.data),
                                  _hf_tensor(tiny_qwen3_hf, "model.layers.0.self_attn.q_proj.weight").astype(np.float16))


def test_bf16_output_rounds_like_torch(tiny_llama_hf, tmp_path):
    path = convert_hf_to_gguf(tiny_llama_hf, tmp_path / "b.gguf", outtype="bf16").path
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    t = tensors["blk.0.ffn_up.weight"]
    assert t.tensor_type == gguf.GGMLQuantizationType.BF16
    raw = np.asarray(t.data).view(np.uint16).reshape(-1)
    back = (raw.astype(np.uint32) << 16).view(np.float32)
    # the checkpoint is stored in bf16, so a bf16 GGUF reproduces it bit for bit
    np.testing.assert_array_equal(back, _hf_tensor(tiny_llama_hf, "model.layers.0.mlp.up_proj.weight").reshape(-1))


def test_progress_reports_every_byte(tiny_llama_hf, tmp_path):
    seen = []
    convert_hf_to_gguf(tiny_llama_hf, tmp_path / "p.gguf", progress=lambda s, d, t: seen.append((s, d, t)))
    tensor_steps = [(d, t) for s, d, t in seen if s == "tensors"]
    assert tensor_steps[0][0] == 0 and tensor_steps[-1][0] == tensor_steps[-1][1] > 0
    assert [d for d, _ in tensor_steps] == sorted(d for d, _ in tensor_steps)


def test_transformers4_config_layout(tiny_llama_hf, tmp_path):
    """Released checkpoints carry rope_theta and rope_scaling at the top level (transformers 4)."""
    import shutil

    folder = tmp_path / "v4"
    shutil.copytree(tiny_llama_hf, folder)
    cfg = json.loads((folder / "config.json").read_text())
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope.pop("rope_theta")
    rope["type"] = rope.pop("rope_type")  # the oldest spelling
    cfg["rope_scaling"] = rope
    (folder / "config.json").write_text(json.dumps(cfg))
    a = convert_hf_to_gguf(folder, tmp_path / "v4.gguf", outtype="f32").path
    b = convert_hf_to_gguf(tiny_llama_hf, tmp_path / "v5.gguf", outtype="f32").path
    ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
    assert _fields(ra)["llama.rope.freq_base"] == _fields(rb)["llama.rope.freq_base"] == 500000.0
    ta = {t.name: np.asarray(t.data) for t in ra.tensors}
    tb = {t.name: np.asarray(t.data) for t in rb.tensors}
    assert ta.keys() == tb.keys()
    np.testing.assert_array_equal(ta["rope_freqs.weight"], tb["rope_freqs.weight"])
