"""Memory planner: what it chooses and the reasons it gives (never a silent CPU fallback)."""

from __future__ import annotations

from engine.runtime.backend import BackendInfo
from engine.runtime.gguf_facts import GGUFFacts
from engine.runtime.planner import GiB, plan

# LOGOS-8B is a Qwen3-8B: hidden 4096, 36 layers, 32 heads, 8 KV heads, head dim 128, 16.4 GB bf16
QWEN3_8B = GGUFFacts(path="logos-8b.gguf", file_bytes=16_400_000_000, architecture="qwen3", n_layer=36,
                     n_embd=4096, n_head=32, n_head_kv=8, head_dim_k=128, head_dim_v=128, n_ctx_train=40960,
                     n_vocab=151_700, tensor_bytes=16_380_000_000)
CPU_BUILD = BackendInfo(available=True, version="0.3.36", backend="CPU")
CUDA_BUILD = BackendInfo(available=True, version="0.3.36", backend="CUDA", gpu_offload=True, gpu_visible=True,
                         devices=["CUDA0: test card"])


def test_kv_cache_estimate_matches_the_architecture():
    # K and V, 36 layers, 8 KV heads x 128, f16: 144 KiB per token
    assert QWEN3_8B.kv_bytes_per_token() == 36 * 8 * 256 * 2
    p = plan(QWEN3_8B, CPU_BUILD, n_ctx=4096, ram_free=64 * GiB)
    assert p.kv_bytes == 4096 * 36 * 8 * 256 * 2
    assert p.ram_needed_bytes > p.weights_bytes + p.kv_bytes


def test_cpu_build_says_why_it_runs_on_the_cpu():
    p = plan(QWEN3_8B, CPU_BUILD, n_ctx=4096, ram_free=64 * GiB)
    assert p.n_gpu_layers == 0 and p.device == "CPU" and p.fits
    assert "CPU-only" in p.cpu_reason
    assert any(r.startswith("CPU:") for r in p.reasons)
    p = plan(QWEN3_8B, CPU_BUILD, n_ctx=4096, n_gpu_layers=20, ram_free=64 * GiB)
    assert "20 GPU layers asked for cannot be used" in p.cpu_reason


def test_gpu_with_room_takes_every_layer():
    p = plan(QWEN3_8B, CUDA_BUILD, n_ctx=4096, ram_free=64 * GiB, vram_free=40 * GiB)
    assert p.n_gpu_layers == p.n_layers_total == 37
    assert p.cpu_reason is None and p.fits
    assert p.device.startswith("GPU (CUDA")


def test_small_gpu_offloads_part_and_says_so():
    p = plan(QWEN3_8B, CUDA_BUILD, n_ctx=4096, ram_free=64 * GiB, vram_free=8 * GiB)
    assert 0 < p.n_gpu_layers < p.n_layers_total
    assert f"only {p.n_gpu_layers} of 37 layers fit in 8.0 GiB free VRAM" in p.cpu_reason
    assert p.vram_needed_bytes <= 0.9 * 8 * GiB


def test_not_enough_ram_is_reported_not_hidden():
    p = plan(QWEN3_8B, CPU_BUILD, n_ctx=4096, ram_free=8 * GiB)
    assert not p.fits
    assert any("does not fit" in r for r in p.reasons)


def test_context_shrinks_to_fit_when_not_asked():
    p = plan(QWEN3_8B, CPU_BUILD, ram_free=17 * GiB)
    assert p.n_ctx < 16384
    assert any("context reduced" in r for r in p.reasons)
