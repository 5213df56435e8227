"""Model-manager benchmarks (run by their own command, never in CI):

    .venv/bin/python -m pytest tests/benchmarks/test_bench_models.py -s

1. Conversion of a 1B-shaped random checkpoint (Llama-3.2-1B / LOGOS-pretrain-1B shape: hidden
   2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, vocabulary 128,256, untied output, BF16 in
   shards of ~1 GB). The checkpoint is written straight to safetensors by streaming (one random
   block tiled), never built in torch. Prints conversion time, throughput and the converter's peak
   memory (measured in a child process) as ratios to the checkpoint and to its largest tensor.
2. Perplexity delta of each quantisation (F16, Q8_0, Q5_K_M, Q4_K_M) against F16 on the held-out
   grammar text: on the tiny test models, and on the 1B-shaped model with LOGOS_BENCH_1B_PPL=1
   (slow on 2 cores).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.required import require_module

SHAPE_1B = dict(hidden=2048, intermediate=8192, layers=16, heads=32, kv_heads=8, vocab=128256, ctx=131072)
SHARD_BYTES = 1 << 30


def _synthetic_bpe_tokenizer(folder: Path, n_vocab: int, n_special: int = 256) -> None:
    """A Llama-3-style tokenizer.json with ``n_vocab - n_special`` byte-level BPE tokens (each new
    token the merge of two earlier ones) and ``n_special`` control tokens at the end."""
    from tokenizers import pre_tokenizers

    rng = np.random.default_rng(0)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(alphabet)}
    tokens = list(alphabet)
    merges = []
    n_bpe = n_vocab - n_special
    while len(tokens) < n_bpe:
        a = tokens[int(rng.integers(0, len(tokens)))]
        b = tokens[int(rng.integers(0, min(len(tokens), 2000)))]
        t = a + b
        if t in vocab or len(t) > 16:
            continue
        vocab[t] = len(tokens)
        tokens.append(t)
        merges.append([a, b])
    specials = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(n_special - 2)]
    pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": n_bpe + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(specials)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                                                "ids": [n_bpe], "tokens": ["<|begin_of_text|>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
    (folder / "tokenizer.json").write_text(json.dumps(tj))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "tokenizer_class": "PreTrainedTokenizerFast"}))


def build_1b_checkpoint(folder: Path) -> int:
    """Write the 1B-shaped BF16 checkpoint by streaming; returns its tensor bytes."""
    s = SHAPE_1B
    folder.mkdir(parents=True, exist_ok=True)
    hd = s["hidden"] // s["heads"]
    tensors = [("model.embed_tokens.weight", (s["vocab"], s["hidden"]))]
    for i in range(s["layers"]):
        p = f"model.layers.{i}."
        tensors += [
            (p + "input_layernorm.weight", (s["hidden"],)),
            (p + "self_attn.q_proj.weight", (s["heads"] * hd, s["hidden"])),
            (p + "self_attn.k_proj.weight", (s["kv_heads"] * hd, s["hidden"])),
            (p + "self_attn.v_proj.weight", (s["kv_heads"] * hd, s["hidden"])),
            (p + "self_attn.o_proj.weight", (s["hidden"], s["heads"] * hd)),
            (p + "post_attention_layernorm.weight", (s["hidden"],)),
            (p + "mlp.gate_proj.weight", (s["intermediate"], s["hidden"])),
            (p + "mlp.up_proj.weight", (s["intermediate"], s["hidden"])),
            (p + "mlp.down_proj.weight", (s["hidden"], s["intermediate"])),
        ]
    tensors += [("model.norm.weight", (s["hidden"],)), ("lm_head.weight", (s["vocab"], s["hidden"]))]
    # split into shards of ~1 GB
    shards, cur, size = [], [], 0
    for name, shape in tensors:
        nbytes = int(np.prod(shape)) * 2
        if cur and size + nbytes > SHARD_BYTES:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape, nbytes))
        size += nbytes
    shards.append(cur)
    rng = np.random.default_rng(0)
    block = (rng.standard_normal(1 << 24, dtype=np.float32) * 0.02).view(np.uint32) >> 16
    block = block.astype(np.uint16).tobytes()  # 32 MB of BF16 noise, tiled
    ones = (np.float32(1.0).view(np.uint32) >> 16).astype(np.uint16)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {}, 0
        for name, shape, nbytes in shard:
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes]}
            off += nbytes
            weight_map[name] = fname
        hb = json.dumps(header).encode()
        hb += b" " * (-len(hb) % 8)
        with open(folder / fname, "wb") as fh:
            fh.write(struct.pack("<Q", len(hb)) + hb)
            for name, shape, nbytes in shard:
                if len(shape) == 1:
                    fh.write(np.full(shape, ones, dtype=np.uint16).tobytes())
                    continue
                left = nbytes
                while left:
                    n = min(left, len(block))
                    fh.write(block[:n])
                    left -= n
        total += off
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total},
                                                                      "weight_map": weight_map}))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": s["hidden"],
        "intermediate_size": s["intermediate"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"], "head_dim": hd, "vocab_size": s["vocab"],
        "max_position_embeddings": s["ctx"], "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 128000, "eos_token_id": 128001,
    }
    (folder / "config.json").write_text(json.dumps(config))
    _synthetic_bpe_tokenizer(folder, s["vocab"])
    return total


_CHILD = r"""
import json, resource, sys, time
from engine.models.convert import convert_hf_to_gguf
t0 = time.perf_counter()
r = convert_hf_to_gguf(sys.argv[1], sys.argv[2], outtype=sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "n_params": r.n_params}))
"""


@pytest.fixture(scope="module")
def ckpt_1b(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-1b") / "hf"
    t0 = time.perf_counter()
    total = build_1b_checkpoint(folder)
    print(f"\n[bench] wrote 1B-shaped checkpoint: {total / 1e9:.2f} GB in {time.perf_counter() - t0:.1f}s")
    return folder, total


def test_bench_convert_1b(ckpt_1b, tmp_path):
    folder, total = ckpt_1b

    largest = SHAPE_1B["vocab"] * SHAPE_1B["hidden"] * 2
    for outtype in ("f16", "bf16"):
        out = tmp_path / f"m-{outtype}.gguf"
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(out), outtype], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).resolve().parents[2])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        peak = r["peak_kb"] * 1024
        print(f"[bench] convert 1B-shaped BF16 -> {outtype.upper()}: {r['seconds']:.1f}s "
              f"({total / r['seconds'] / 1e6:.0f} MB/s), {r['n_params'] / 1e9:.2f} B params; "
              f"peak RSS {peak / 1e9:.2f} GB = {peak / total:.2f}x checkpoint, {peak / largest:.2f}x largest tensor; "
              f"GGUF {out.stat().st_size / 1e9:.2f} GB")
        assert peak < total  # the model is never held in memory, let alone twice
        out.unlink()


def _ppl_table(label: str, gguf_path: Path, texts: list[str], threads: int = 1) -> None:
    from engine.models.parity import compare_quantizations
    from engine.runtime.logits import Scorer

    with Scorer(gguf_path, vocab_only=True) as s:
        seqs = [s.tokenize(t)[:256] for t in texts]
    n_ctx = max(len(x) for x in seqs) + 8
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = compare_quantizations(gguf_path, seqs, ["F16", "Q8_0", "Q5_K_M", "Q4_K_M"], Path(tmp), n_ctx, threads)
    for r in rows:
        print(f"[bench] {label} {r.quant:<7} ppl {r.perplexity:10.4f}  delta vs F16 {100 * r.ppl_delta_vs_f16:+7.3f}%  "
              f"argmax vs F16 {r.argmax_agreement_vs_f16:.3f}  size {r.size / 1e6:8.1f} MB  {r.seconds:.1f}s")


def test_bench_quant_ppl_tiny(tiny_gguf):
    require_module("llama_cpp")
    from engine.models.parity import default_corpus

    for arch in ("llama", "qwen3"):
        _ppl_table(f"tiny {arch}", tiny_gguf(arch, "special", "f32"), default_corpus())


@pytest.mark.timeout(7200)
@pytest.mark.skipif(os.environ.get("LOGOS_BENCH_1B_PPL") != "1", reason="set LOGOS_BENCH_1B_PPL=1 (slow)")
def test_bench_quant_ppl_1b(ckpt_1b, tmp_path):
    require_module("llama_cpp")
    from engine.models.convert import convert_hf_to_gguf
    from engine.models.parity import default_corpus

    folder, _ = ckpt_1b
    path = convert_hf_to_gguf(folder, tmp_path / "1b-f16.gguf", outtype="f16").path
    _ppl_table("1B-shaped", path, default_corpus()[:8], threads=2)
