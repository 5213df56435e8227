"""Memory planner: where a model goes (GPU layers, context, threads) and why, before loading it.

The estimate is weights (the GGUF's tensor bytes) + KV cache (per token position, f16, for the
whole context) + a compute buffer, compared with free RAM (psutil) and free VRAM (the backend's
devices, ``nvidia-smi`` for CUDA). Every choice comes with a sentence in ``reasons``; running on the
CPU when a GPU was asked for or is present always carries ``cpu_reason`` (never a silent fallback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field

from engine.runtime.gguf_facts import GGUFFacts

GiB = 1024**3
DEFAULT_N_CTX = 16384  # tokens for the whole job (prompt once + every sample's output), unified cache
MIN_N_CTX = 512
RAM_HEADROOM = 0.85  # use at most this share of the free memory
VRAM_HEADROOM = 0.90
# Slots (samples decoded together) when the caller does not say. CPU: a ``llama_decode`` call costs
# a fixed part (the graph, the threads' hand-offs) plus a share per token that grows with the
# weights; the slots are the smallest power of two from CPU_MIN_SLOTS to CPU_MAX_SLOTS whose tokens
# leave the fixed part at most CPU_CALL_SHARE of a step. Measured on the project's 2-core machine
# (docs/benchmarks.md, llama.cpp alone at b = 1..128 on the demonstration model, in one long-lived
# thread): 0.07 ms a call and 0.073 ms a token at 3.9 M weights on 2 threads, i.e. 26 G weights a
# second per thread; from b = 16 to 128 the tokens/s stay within 1 %. So the demonstration model
# decodes 32 together, a 1B model 16. (An earlier fit, 0.28 ms a call and 128 slots, came from a
# curve where every job paid a new thread's first decode, which more slots amortised.)
# GPU: as many as the free VRAM holds, from GPU_MIN_SLOTS to MAX_SLOTS, each with SLOT_TOKENS of
# context (prompt + output of a typical sample; the context grows with them when no size was asked).
CPU_SLOTS = 16  # CPU_MIN_SLOTS: the batch where a model of 1 B weights or more stays
CPU_MIN_SLOTS = CPU_SLOTS
CPU_MAX_SLOTS = 128
CPU_CALL_S = 0.07e-3
CPU_WEIGHTS_PER_S_PER_THREAD = 26e9
CPU_CALL_SHARE = 0.03
GPU_MIN_SLOTS = 16
MAX_SLOTS = 256
SLOT_TOKENS = 512


class PlanError(RuntimeError):
    """The model cannot be placed in the memory there is; the message says how much is missing."""


@dataclass
class Plan:
    device: str  # "CPU" or "GPU (<backend>: <device>)"
    n_gpu_layers: int  # layers offloaded (0 = CPU only); the output layer counts as one
    n_layers_total: int
    n_ctx: int
    n_seq_max: int
    n_batch: int
    n_threads: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    ram_needed_bytes: int
    vram_needed_bytes: int
    free_ram_bytes: int
    free_vram_bytes: int | None
    fits: bool
    reasons: list[str] = field(default_factory=list)
    cpu_reason: str | None = None  # why the model is not (fully) on a GPU, when one could be asked for

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        where = (f"{self.n_gpu_layers}/{self.n_layers_total} layers on {self.device}"
                 if self.n_gpu_layers else "CPU")
        return (f"{where}, context {self.n_ctx} tokens, {self.n_threads} threads; "
                f"needs {self.ram_needed_bytes / GiB:.2f} GiB RAM"
                + (f" + {self.vram_needed_bytes / GiB:.2f} GiB VRAM" if self.vram_needed_bytes else "")
                + f" (free {self.free_ram_bytes / GiB:.1f} GiB RAM"
                + (f", {self.free_vram_bytes / GiB:.1f} GiB VRAM" if self.free_vram_bytes is not None else "")
                + ")")


def free_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001
        n = None
    if not n:
        n = os.cpu_count() or 1
    try:  # respect CPU affinity (containers, taskset)
        n = min(n, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        pass
    return max(1, int(n))


def free_vram_cuda() -> tuple[int | None, str | None]:
    """(free bytes, device name) of the first NVIDIA GPU, or (None, None)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None, None
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[1].isdigit():
            return int(parts[1]) * 1024**2, parts[0]
    return None, None


def compute_bytes_estimate(facts: GGUFFacts, n_ctx: int, n_batch: int) -> int:
    """Logits for a full batch + activations and attention scores of one micro-batch (float32)."""
    logits = 4 * facts.n_vocab * n_batch
    act = 4 * n_batch * (12 * facts.n_embd + facts.n_head * min(n_ctx, 8192))
    return int(logits + act + 64 * 1024**2)


def cpu_slots(n_params: int, threads: int) -> tuple[int, str]:
    """(slots, reason) on the CPU for a model of ``n_params`` weights on ``threads`` threads (see
    the constants above)."""
    per_token = max(1, n_params) / (CPU_WEIGHTS_PER_S_PER_THREAD * max(1, threads))
    want = (1 - CPU_CALL_SHARE) / CPU_CALL_SHARE * CPU_CALL_S / per_token
    slots = CPU_MIN_SLOTS
    while slots < want and slots < CPU_MAX_SLOTS:
        slots *= 2
    return slots, (f"{slots} slots (samples decoded together): a decode call's fixed "
                   f"{CPU_CALL_S * 1e3:.2f} ms is {CPU_CALL_S / (CPU_CALL_S + slots * per_token):.1%} of a step "
                   f"of {slots} tokens at {n_params / 1e6:,.1f} M weights on {threads} threads "
                   f"(from {CPU_MIN_SLOTS} to {CPU_MAX_SLOTS}; fewer when the context cannot hold them)")


def choose_slots(on_gpu: bool, vram: int | None, ctx: int, ctx_asked: bool, needs, ram: int,
                 n_params: int = 0, threads: int = 1) -> tuple[int, int, str]:
    """(slots, context tokens, reason). Where the slots start: on the CPU :func:`cpu_slots`, with
    the whole model on a GPU whose free memory is known :data:`MAX_SLOTS`. From there, halving, the
    most slots whose context (``SLOT_TOKENS`` each, plus the prompt's; only grown, and only when no
    size was asked) fits in the free RAM (and VRAM); at least :data:`CPU_MIN_SLOTS` /
    :data:`GPU_MIN_SLOTS`. ``needs(ctx) -> (ram, vram)`` bytes."""
    if on_gpu and vram is None:
        return CPU_SLOTS, ctx, f"{CPU_SLOTS} slots (free VRAM unknown)"
    if on_gpu:
        slots, floor = MAX_SLOTS, GPU_MIN_SLOTS
    else:
        (slots, why), floor = cpu_slots(n_params, threads), CPU_MIN_SLOTS
    suits = slots  # what the device and the model would take, before the memory's say
    while slots > floor:
        want = ctx if ctx_asked else max(ctx, (slots + 1) * SLOT_TOKENS)
        on_cpu, on_gpu_b = needs(want)
        if (on_cpu <= RAM_HEADROOM * ram and (not on_gpu or on_gpu_b <= VRAM_HEADROOM * vram)
                and (not ctx_asked or ctx // (slots + 1) >= SLOT_TOKENS // 2)):
            break
        slots //= 2
    slots = max(slots, floor)
    new_ctx = ctx if ctx_asked else max(ctx, (slots + 1) * SLOT_TOKENS)
    if not on_gpu and new_ctx != ctx and needs(new_ctx)[0] > RAM_HEADROOM * ram:
        new_ctx = ctx  # the CPU's fewest slots in the context there is (a job gets fewer if it must)
    if on_gpu:
        return slots, new_ctx, (f"{slots} slots on the GPU (as many as {vram / GiB:.1f} GiB free VRAM holds, "
                                f"at most {MAX_SLOTS}); context {new_ctx} tokens")
    if slots != suits:
        why = (f"{slots} slots on the CPU ({suits} would suit a model of {n_params / 1e6:,.1f} M weights, "
               f"but their context does not fit in {ram / GiB:.1f} GiB free RAM)")
    return slots, new_ctx, why + (f"; context grown to {new_ctx} tokens for them" if new_ctx != ctx else "")


def plan(facts: GGUFFacts, backend=None, *, n_ctx: int | None = None, n_seq_max: int | None = None,
         n_gpu_layers: int | str = "auto", n_threads: int | None = None,
         ram_free: int | None = None, vram_free: int | None = None) -> Plan:
    """Choose GPU layers, context and threads for ``facts`` on this machine.

    ``n_gpu_layers``: "auto" (as many as fit), 0 (CPU), -1 (all), or a count. ``n_seq_max``: the
    context's sequences (slots + 1 for the prompt); None: chosen here (:func:`choose_slots`).
    ``backend`` is a
    :class:`engine.runtime.backend.BackendInfo`; ``ram_free``/``vram_free`` override the measured
    free memory (tests, what-if estimates).
    """
    if backend is None:
        from engine.runtime.backend import backend_info

        backend = backend_info()
    reasons: list[str] = []
    cpu_reason: str | None = None
    layers_total = facts.n_layer + 1  # llama.cpp counts the output layer as one more
    ram = free_ram() if ram_free is None else int(ram_free)
    threads = n_threads or physical_cores()
    reasons.append(f"{threads} threads ({'asked' if n_threads else 'one per physical core'})")

    n_batch = 512
    kv_tok = facts.kv_bytes_per_token()
    weights = facts.tensor_bytes or facts.file_bytes
    ctx = int(n_ctx or DEFAULT_N_CTX)
    if facts.n_ctx_train and ctx < MIN_N_CTX:
        ctx = MIN_N_CTX

    # GPU memory
    vram, gpu_name = (None, None)
    gpu_possible = bool(getattr(backend, "gpu_offload", False))
    if gpu_possible and getattr(backend, "backend", "CPU") == "CUDA":
        vram, gpu_name = free_vram_cuda()
    if vram_free is not None:
        vram = int(vram_free)
    device_label = f"GPU ({getattr(backend, 'backend', '?')}: {gpu_name or 'device 0'})"

    def needs(ctx_: int, layers_gpu: int) -> tuple[int, int]:
        share = layers_gpu / layers_total
        kv = kv_tok * ctx_
        comp = compute_bytes_estimate(facts, ctx_, n_batch)
        on_gpu = int(share * (weights + kv)) + (comp if layers_gpu else 0)
        on_cpu = int((1 - share) * (weights + kv)) + (0 if layers_gpu else comp)
        return on_cpu, on_gpu

    # shrink the context until the CPU part fits (only when no size was asked)
    if n_ctx is None:
        while ctx > MIN_N_CTX and needs(ctx, 0)[0] > RAM_HEADROOM * ram and vram is None:
            ctx //= 2
        if ctx != DEFAULT_N_CTX:
            reasons.append(f"context reduced to {ctx} tokens to fit {ram / GiB:.1f} GiB free RAM")

    # GPU layers
    if n_gpu_layers in (0, "0"):
        layers = 0
        if gpu_possible:
            cpu_reason = "CPU asked for (n_gpu_layers=0)"
    elif not gpu_possible:
        layers = 0
        cpu_reason = (f"this llama.cpp build is {getattr(backend, 'backend', 'CPU')}-only "
                      "(no GPU offload compiled in)")
        if n_gpu_layers not in ("auto", None):
            cpu_reason += f"; the {n_gpu_layers} GPU layers asked for cannot be used"
    elif not getattr(backend, "gpu_visible", False) and vram is None:
        layers = 0
        cpu_reason = f"the build supports {backend.backend} but no GPU is visible on this machine"
    else:
        want = layers_total if n_gpu_layers in ("auto", -1, "-1", None) else min(int(n_gpu_layers), layers_total)
        layers = want
        if vram is not None:
            while layers > 0 and needs(ctx, layers)[1] > VRAM_HEADROOM * vram:
                layers -= 1
            if layers < want:
                cpu_reason = (f"only {layers} of {want} layers fit in {vram / GiB:.1f} GiB free VRAM "
                              f"(the whole model needs {needs(ctx, want)[1] / GiB:.1f} GiB); "
                              "the rest runs on the CPU")
        if layers:
            reasons.append(f"{layers}/{layers_total} layers on {device_label}")
        elif cpu_reason is None:
            cpu_reason = "no layer fits in the free VRAM"
    # slots: asked, or chosen from the device and its free memory
    if n_seq_max is None:
        slots, ctx, why = choose_slots(layers == layers_total and layers > 0, vram, ctx, n_ctx is not None,
                                       lambda c: needs(c, layers), ram, facts.params(), threads)
        n_seq = slots + 1
        reasons.append(why)
    else:
        n_seq = max(1, int(n_seq_max))
        reasons.append(f"{n_seq} sequences asked for ({max(1, n_seq - 1)} slots)")
    reasons.append(f"context {ctx} tokens shared by all samples of a job "
                   f"({kv_tok * ctx / GiB:.2f} GiB KV cache, {kv_tok / 1024:.0f} KiB per token)"
                   + (f"; each sample at most {facts.n_ctx_train} tokens, the model's training length"
                      if facts.n_ctx_train and facts.n_ctx_train < ctx else ""))
    on_cpu, on_gpu = needs(ctx, layers)
    fits = on_cpu <= RAM_HEADROOM * ram and (vram is None or on_gpu <= VRAM_HEADROOM * vram)
    if cpu_reason:
        reasons.append(f"CPU: {cpu_reason}")
    if not fits:
        reasons.append(f"does not fit: needs {on_cpu / GiB:.2f} GiB RAM of {ram / GiB:.2f} GiB free"
                       + (f" and {on_gpu / GiB:.2f} GiB VRAM of {vram / GiB:.2f} GiB free" if vram else ""))
    return Plan(
        device=device_label if layers else "CPU", n_gpu_layers=layers, n_layers_total=layers_total,
        n_ctx=ctx, n_seq_max=n_seq, n_batch=n_batch, n_threads=threads,
        weights_bytes=int(weights), kv_bytes=int(kv_tok * ctx),
        compute_bytes=compute_bytes_estimate(facts, ctx, n_batch),
        ram_needed_bytes=on_cpu, vram_needed_bytes=on_gpu, free_ram_bytes=ram, free_vram_bytes=vram,
        fits=fits, reasons=reasons, cpu_reason=cpu_reason,
    )
