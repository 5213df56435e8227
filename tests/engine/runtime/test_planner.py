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


# LOGOS-1B's shape (a Llama 3.2 1B: hidden 2048, 16 layers, 8 KV heads x 64, 128k vocabulary), Q8_0
LOGOS_1B = GGUFFacts(path="logos-1b-q8_0.gguf", file_bytes=1_320_000_000, architecture="llama", n_layer=16,
                     n_embd=2048, n_head=32, n_head_kv=8, head_dim_k=64, head_dim_v=64, n_ctx_train=131072,
                     n_vocab=128_256, tensor_bytes=1_310_000_000)


def test_the_cpu_plan_decodes_16_samples_together_for_a_large_model():
    """Without a count asked for, a CPU plan for a model of a billion weights or more has 16 slots
    (+ the prompt's sequence; a step of 16 tokens is long beside a decode call's fixed cost), the
    context as before, and says so."""
    from engine.runtime.planner import CPU_SLOTS

    for facts in (QWEN3_8B, LOGOS_1B):
        p = plan(facts, CPU_BUILD, ram_free=64 * GiB)
        assert CPU_SLOTS == 16 and p.n_seq_max == 17 and p.n_ctx == 16384
        assert any("16 slots" in r for r in p.reasons)
    # a GPU build on a machine without a GPU plans as a CPU
    p = plan(LOGOS_1B, CUDA_BUILD.__class__(available=True, backend="CUDA", gpu_offload=True), ram_free=64 * GiB)
    assert p.n_gpu_layers == 0 and p.n_seq_max == 17


def test_a_gpu_plan_takes_as_many_slots_as_the_free_vram_holds():
    """On a GPU the slots follow the free memory: LOGOS-1B on an 80 GiB card gets the most (256, each
    with 512 tokens of context, the context grown to hold them); on smaller cards fewer, halving,
    never under 16 and never beyond the card; an 8B model with the same card fewer than the 1B."""
    from engine.runtime.planner import MAX_SLOTS, SLOT_TOKENS

    big = plan(LOGOS_1B, CUDA_BUILD, ram_free=64 * GiB, vram_free=80 * GiB)
    assert big.n_gpu_layers == big.n_layers_total and big.fits
    assert big.n_seq_max == MAX_SLOTS + 1 == 257
    assert big.n_ctx >= 257 * SLOT_TOKENS and big.vram_needed_bytes <= 0.9 * 80 * GiB
    assert any("256 slots on the GPU" in r for r in big.reasons)
    slots = {}
    for vram in (3, 4, 6, 10, 20, 80):
        p = plan(LOGOS_1B, CUDA_BUILD, ram_free=64 * GiB, vram_free=vram * GiB)
        assert p.n_gpu_layers == p.n_layers_total, vram
        slots[vram] = p.n_seq_max - 1
        assert 16 <= slots[vram] <= 256
        if slots[vram] > 16:  # a count above the floor was chosen because it fits
            assert p.fits and p.vram_needed_bytes <= 0.9 * vram * GiB, vram
    assert list(slots.values()) == sorted(slots.values())  # more memory, never fewer slots
    assert slots[3] < slots[80] and len(set(slots.values())) >= 3
    eight = plan(QWEN3_8B, CUDA_BUILD, ram_free=64 * GiB, vram_free=32 * GiB)
    one = plan(LOGOS_1B, CUDA_BUILD, ram_free=64 * GiB, vram_free=32 * GiB)
    assert eight.n_seq_max < one.n_seq_max


def test_slots_asked_for_or_a_context_asked_for_are_kept():
    p = plan(LOGOS_1B, CUDA_BUILD, ram_free=64 * GiB, vram_free=80 * GiB, n_seq_max=9)
    assert p.n_seq_max == 9 and p.n_ctx == 16384
    p = plan(LOGOS_1B, CUDA_BUILD, n_ctx=8192, ram_free=64 * GiB, vram_free=80 * GiB)
    assert p.n_ctx == 8192  # not grown: the slots fit the context asked for (256 tokens each at least)
    assert 16 <= p.n_seq_max - 1 and 8192 // p.n_seq_max >= 256


def test_the_cpu_plan_decodes_more_samples_together_for_a_small_model():
    """On the CPU a decode call's fixed cost (0.07 ms here) is amortised over the step's tokens: the
    demonstration model's size (3.9 M weights, 2 threads) gets 32 slots and a context grown to hold
    them (512 tokens each), a 25.9 M model and a 1B model 16; more threads, more slots; too little
    RAM for the grown context keeps 16 slots in the context there is, and says why."""
    from dataclasses import replace

    from engine.runtime.planner import SLOT_TOKENS, cpu_slots

    demo = replace(LOGOS_1B, n_layer=4, n_embd=256, n_head=4, n_head_kv=4, n_ctx_train=512, n_vocab=1024,
                   tensor_bytes=4_187_136, file_bytes=4_400_000, n_params=3_934_464)
    p = plan(demo, CPU_BUILD, ram_free=64 * GiB, n_threads=2)
    assert p.n_seq_max == 33 and p.n_ctx == 33 * SLOT_TOKENS and p.fits
    assert any(r.startswith("32 slots") and "3.9 M weights on 2 threads" in r for r in p.reasons), p.reasons
    assert any(r.startswith(f"context {33 * SLOT_TOKENS} tokens") for r in p.reasons), p.reasons
    assert [cpu_slots(n, 2)[0] for n in (3_934_464, 25_900_000, 1_200_000_000)] == [32, 16, 16]
    assert cpu_slots(25_900_000, 16)[0] > cpu_slots(25_900_000, 2)[0]
    # a context size asked for is kept: the slots are what it holds
    asked = plan(demo, CPU_BUILD, ram_free=64 * GiB, n_threads=2, n_ctx=16384)
    assert asked.n_ctx == 16384 and asked.n_seq_max == 33  # 16,384 tokens hold the 32 slots too
    # little RAM: the fewest slots, in the context there is, and the reason says so
    small = plan(demo, CPU_BUILD, ram_free=200 * 2**20, n_threads=2)
    assert small.n_seq_max == 17 and small.n_ctx < 33 * SLOT_TOKENS and small.fits, small.reasons
    assert any("32 would suit" in r and "does not fit" in r for r in small.reasons), small.reasons
    # the header reader counts the weights
    from engine import paths
    from engine.runtime.gguf_facts import read_facts

    facts = read_facts(paths.bundled_models()[0])
    assert 3_000_000 < facts.n_params < 5_000_000 and facts.params() == facts.n_params
