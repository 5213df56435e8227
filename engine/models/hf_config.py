"""Read and check a Hugging Face ``config.json`` of a supported causal language model.

Supported: ``LlamaForCausalLM`` (LOGOS-pretrain-1B/3B) and ``Qwen3ForCausalLM`` (LOGOS-8B). Both
the transformers 4 layout (``rope_theta`` + ``rope_scaling``) and the transformers 5 layout
(``rope_parameters``) are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.modelfiles.errors import ModelFileError, UnsupportedArchitectureError

# HF architecture -> how llama.cpp runs it
ARCHITECTURES = {
    # Llama in llama.cpp uses interleaved ("normal") rotary pairs, Hugging Face the half-split
    # layout: the q and k rows must be permuted. Qwen3 runs with NeoX rope (half-split): no permute.
    "LlamaForCausalLM": {"gguf_arch": "llama", "permute_qk": True, "qk_norm": False},
    "Qwen3ForCausalLM": {"gguf_arch": "qwen3", "permute_qk": False, "qk_norm": True},
}


@dataclass
class ModelConfig:
    path: Path
    hf_arch: str
    gguf_arch: str
    permute_qk: bool
    qk_norm: bool
    vocab_size: int
    hidden: int
    intermediate: int
    n_layers: int
    n_head: int
    n_head_kv: int
    head_dim: int
    context_length: int
    rms_eps: float
    rope_theta: float
    rope: dict = field(default_factory=dict)   # {"type": "default"|"linear"|"yarn"|"llama3", ...}
    tied: bool = False
    name: str = ""
    raw: dict = field(default_factory=dict)


def _need(cfg: dict, key: str, path: Path, kind=int):
    if key not in cfg or cfg[key] is None:
        raise ModelFileError(path, "missing", field=key)
    try:
        return kind(cfg[key])
    except (TypeError, ValueError):
        raise ModelFileError(path, f"not a number: {cfg[key]!r}", field=key) from None


def read_config(folder: Path) -> ModelConfig:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ModelFileError(path, "file not found (is this a Hugging Face checkpoint folder?)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(path, f"not valid JSON ({exc})") from None
    archs = cfg.get("architectures") or []
    if not archs:
        raise UnsupportedArchitectureError(path, "missing; cannot tell which model this is", field="architectures")
    arch = archs[0]
    if arch not in ARCHITECTURES:
        raise UnsupportedArchitectureError(
            path, f"{arch!r} is not supported (supported: {', '.join(ARCHITECTURES)})", field="architectures")
    spec = ARCHITECTURES[arch]
    for flag in ("attention_bias", "mlp_bias"):
        if cfg.get(flag):
            raise UnsupportedArchitectureError(path, "biases are not supported by this converter", field=flag)
    hidden = _need(cfg, "hidden_size", path)
    n_head = _need(cfg, "num_attention_heads", path)
    n_head_kv = int(cfg.get("num_key_value_heads") or n_head)
    head_dim = int(cfg.get("head_dim") or hidden // n_head)
    if n_head % n_head_kv:
        raise ModelFileError(path, f"{n_head} heads are not a multiple of {n_head_kv} KV heads", field="num_key_value_heads")

    rope_params = dict(cfg.get("rope_parameters") or {})
    scaling = dict(cfg.get("rope_scaling") or {})
    rope = {**scaling, **rope_params}
    rope_theta = rope.pop("rope_theta", cfg.get("rope_theta", 10000.0))
    rope_type = rope.pop("rope_type", rope.pop("type", "default")) or "default"
    rope_field = "rope_parameters" if "rope_parameters" in cfg else "rope_scaling"
    if rope_type not in ("default", "linear", "yarn", "llama3"):
        raise ModelFileError(path, f"rope type {rope_type!r} is not supported (default, linear, yarn, llama3)",
                             field=f"{rope_field}.rope_type")
    if rope_type != "default" and "factor" not in rope:
        raise ModelFileError(path, f"rope type {rope_type!r} needs a factor", field=f"{rope_field}.factor")
    rope["type"] = rope_type

    return ModelConfig(
        path=path, hf_arch=arch, gguf_arch=spec["gguf_arch"], permute_qk=spec["permute_qk"], qk_norm=spec["qk_norm"],
        vocab_size=_need(cfg, "vocab_size", path), hidden=hidden,
        intermediate=_need(cfg, "intermediate_size", path), n_layers=_need(cfg, "num_hidden_layers", path),
        n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim,
        context_length=_need(cfg, "max_position_embeddings", path),
        rms_eps=float(cfg.get("rms_norm_eps", 1e-6)), rope_theta=float(rope_theta), rope=rope,
        tied=bool(cfg.get("tie_word_embeddings", False)),
        name=str(cfg.get("_name_or_path") or Path(folder).resolve().name), raw=cfg,
    )
