"""Fine-tuning Hugging Face checkpoints (LoRA and full), adding missing LOGOS tags, and export
through the engine's converter into the model registry with provenance."""

from __future__ import annotations

import json

import pytest
import torch

from tests.fixtures.required import require_module
from tests.training.conftest import tiny_config
from training import tokenizer as tk
from training.config import LoraConfig
from training.train import TrainingError, train


@pytest.fixture(scope="module")
def base_without_tags(real_rows, tmp_path_factory):
    """A real HF checkpoint folder whose byte-level BPE has NO LOGOS tags (like a plain base model)."""
    from transformers import LlamaForCausalLM

    folder = tmp_path_factory.mktemp("base-notags")
    stripped = [r for r in real_rows]
    tok = tk.train_bpe(stripped, 400, folder, tags=[])
    assert tk.missing_tags(tok) == tk.logos_tags()
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config().model.to_hf(tok))
    model.save_pretrained(str(folder))
    return folder


def test_base_lacking_tags_is_refused_with_advice(base_without_tags, real_rows, tmp_path):
    cfg = tiny_config(2, base=str(base_without_tags))
    with pytest.raises(TrainingError, match="--add-tags"):
        train(cfg, real_rows, [], tmp_path / "o")


def test_lora_adds_tags_resizes_and_trains_their_embeddings(base_without_tags, real_rows, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = tiny_config(4, base=str(base_without_tags), lora=LoraConfig(r=4, alpha=8))
    res = train(cfg, real_rows, [], tmp_path / "o", add_missing_tags=True)
    assert sorted(res.added_tags) == sorted(tk.logos_tags())
    base_tok = AutoTokenizer.from_pretrained(str(base_without_tags))
    tok = AutoTokenizer.from_pretrained(str(res.final_dir))
    assert len(tok) == len(base_tok) + len(tk.logos_tags())
    assert tk.missing_tags(tok) == []
    # tags were added as ordinary (not special) tokens
    tj = json.loads((res.final_dir / "tokenizer.json").read_text())
    added = {t["content"]: t for t in tj["added_tokens"]}
    assert all(not added[t]["special"] for t in tk.logos_tags())
    merged = AutoModelForCausalLM.from_pretrained(str(res.final_dir))
    assert merged.get_input_embeddings().weight.shape[0] == len(tok)
    # the adapter checkpoint holds adapters (and the resized embeddings), not a full model copy
    from safetensors import safe_open

    with safe_open(str(res.last_checkpoint / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("lora_A" in k for k in keys)
    assert any("embed_tokens" in k for k in keys) and any("lm_head" in k for k in keys)  # new rows train
    assert not any("up_proj.weight" in k and "lora" not in k for k in keys)
    base = AutoModelForCausalLM.from_pretrained(str(base_without_tags))
    q_base = base.model.layers[0].self_attn.q_proj.weight
    q_new = merged.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(q_base, q_new)  # LoRA was merged into the weights
    assert torch.equal(base.model.layers[0].mlp.up_proj.weight, merged.model.layers[0].mlp.up_proj.weight)


@pytest.mark.slow
def test_lora_on_llama3_style_checkpoint_resumes(tiny_hf, real_rows, tmp_path):
    base = tiny_hf("llama", "special")
    cfg = tiny_config(4, base=str(base), lora=LoraConfig(r=4, alpha=8))
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2

    part = train(cfg, real_rows, [], tmp_path / "o", should_stop=stop)
    assert part.status == "cancelled" and part.step == 2
    done = train(cfg, real_rows, [], tmp_path / "o")
    assert done.status == "finished" and done.step == 4
    assert done.tokens_seen == 4 * 4 * 64


def test_full_finetune_qwen3_checkpoint(tiny_hf, real_rows, tmp_path):
    from transformers import AutoModelForCausalLM

    base = tiny_hf("qwen3", "ordinary")
    res = train(tiny_config(2, base=str(base)), real_rows, [], tmp_path / "o")
    model = AutoModelForCausalLM.from_pretrained(str(res.final_dir))
    assert model.config.model_type == "qwen3"


def test_export_registers_with_provenance(real_rows, tiny_tokenizer, tmp_path):
    from engine.modelfiles.gguf_info import inspect_gguf
    from engine.models.registry import Registry
    from training import export as X

    res = train(tiny_config(2), real_rows, [], tmp_path / "o", tokenizer=tiny_tokenizer)
    out = X.export(res.final_dir, tmp_path / "m-f16.gguf", quant="F16",
                   provenance={"base": "scratch", "data_sha256": "abc", "metrics": {"val_loss": res.val_loss}})
    info = inspect_gguf(out)
    assert info.architecture == "llama" and info.all_tags_single
    entries = Registry().list()
    assert len(entries) == 1 and entries[0].sha256 == info.sha256
    prov = X.provenance_of(entries[0].id)
    assert prov["data_sha256"] == "abc" and prov["quant"] == "F16"
    assert prov["hf_weights_sha256"] == X.folder_hash(res.final_dir)


def test_export_q8_0_through_llama_cpp(real_rows, tiny_tokenizer, tmp_path):
    require_module("llama_cpp")
    from engine.modelfiles.gguf_info import inspect_gguf
    from training import export as X

    res = train(tiny_config(2), real_rows, [], tmp_path / "o", tokenizer=tiny_tokenizer)
    out = X.export(res.final_dir, tmp_path / "m-q8_0.gguf", quant="Q8_0", register=False)
    assert inspect_gguf(out).quant.upper().startswith("Q8_0")
