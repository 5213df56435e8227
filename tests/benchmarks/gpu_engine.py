"""Engine benchmark on a machine with an NVIDIA GPU, run by hand (not by CI), after a CUDA build of
llama-cpp-python (``installer/setup.sh build-llama`` there):

    python tests/benchmarks/gpu_engine.py OUT_DIR            # on the GPU machine
    python tests/benchmarks/gpu_engine.py --count OUT_DIR    # afterwards, where RDKit is installed

The same measurements as ``test_bench_engine.py`` (whose functions it uses), on the hardware the
LOGOS authors run their pipeline on:

* Part A, the demonstration model, N = 16, molecule jobs: the reference pipeline (transformers
  ``generate`` + perplexity pass) on the GPU and on all CPU cores; the engine with the planner's
  choice (layers on the GPU) and on the CPU only; llama.cpp alone (decode + argmax) as the ceiling;
  one job of 256 samples in N slots, refilled slots against waves.
* Part B, a random Llama with the shape of LOGOS-pretrain-1B (Llama-3.2-1B: hidden 2048, 16 layers,
  32 heads, 8 KV heads, FFN 8192, untied embeddings, Llama-3's 128,256-token vocabulary: the test
  tokenizer padded to it by the converter; ``LOGOS_GPU_B_VOCAB`` changes it; the first run used
  the test tokenizer's own 721 tokens): the reference in bf16 on
  the GPU against the engine (Q8_0, all layers on the GPU), and single-stream and N = 16 decoding
  against the GPU's bandwidth roofline (measured read bandwidth / bytes of weights).

The GPU machine may have no RDKit: samples are written to OUT_DIR/gpu_engine.json, and ``--count``
counts the valid ones with the molecule task and prints valid samples per second. The test
tokenizer of part B is trained from RDKit's data: save it where RDKit is
(``_train_tokenizer("llama", "special").save(FILE)``) and pass ``LOGOS_GPU_TOKENIZER=FILE``.

Where device time is short, the CUDA build can be made beforehand on a machine with CUDA's
compiler and no GPU (2026-11-26: CUDA 13.0 and cuBLAS from NVIDIA's ``nvidia-cublas`` wheel,
``-DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_NO_VMM=ON``, 37 minutes on 2 cores) and carried as
the ``llama_cpp`` package folder (one copy of each library, symlinks for the sonames: 30 MB
gzipped); it ran on the H100 with ``LD_LIBRARY_PATH=/usr/local/cuda/lib64``. The H200 runs also
carried transformers 5.24 with its hub and tokenizers packages (the development machine's, as
folders on ``PYTHONPATH``, so that the reference is the same program on both machines) and the
compiled sampler built for the GPU machine's Python (``gcc -O3 -shared -fPIC`` against Python
3.12's headers, as ``engine/runtime/_stepper.cpython-312-x86_64-linux-gnu.so``).

Both sides run their jobs ``LOGOS_BENCH_ROUNDS`` times (default 3) and keep the fastest round: the
first pass of transformers on LOGOS-1B's shape took 6x longer than the second.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if os.environ.get("LOGOS_BENCH_CHILD") == "1":  # an engine process: llama.cpp before numpy (CUDA builds)
    from engine.runtime.native import preload

    preload()

import json  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
import time  # noqa: E402

JOBS = int(os.environ.get("LOGOS_BENCH_JOBS", "4"))
BUDGET_S = float(os.environ.get("LOGOS_GPU_BUDGET_S", "330"))  # part B is skipped past this
B_SHAPE = dict(hidden_size=int(os.environ.get("LOGOS_GPU_B_HIDDEN", "2048")),
               num_hidden_layers=int(os.environ.get("LOGOS_GPU_B_LAYERS", "16")),
               intermediate_size=int(os.environ.get("LOGOS_GPU_B_FFN", "8192")),
               num_attention_heads=32, num_key_value_heads=8)
B_VOCAB = int(os.environ.get("LOGOS_GPU_B_VOCAB", "128256"))  # Llama-3's: the test tokenizer padded to it
B_NEW = 128


def _quantize(src: str, dst: str, threads: int) -> str:
    from engine.models.quantize import quantize

    return str(quantize(Path(src), Path(dst), "Q8_0", threads=threads).path)


def _build_1b(folder: Path, device: str) -> int:
    import torch
    from tokenizers import Tokenizer

    from tests.benchmarks.test_bench_engine import _random_llama

    saved = os.environ.get("LOGOS_GPU_TOKENIZER")  # the test tokenizer saved where RDKit is (its corpus needs it)
    return _random_llama(folder, tokenizer=Tokenizer.from_file(saved) if saved else None, vocab_size=B_VOCAB,
                         device=device, dtype=torch.bfloat16, max_position_embeddings=4096, rope_theta=500000.0,
                         initializer_range=0.02, **B_SHAPE)


def _gpu_read_bandwidth() -> float:
    """Bytes/s read by a sum over 1 GiB of float32 on the GPU (best of 10)."""
    import torch

    x = torch.ones(256 * 1024**2, device="cuda")
    x.sum()
    best = 0.0
    for _ in range(10):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        x.sum()
        b.record()
        b.synchronize()
        best = max(best, x.nbytes / (a.elapsed_time(b) / 1e3))
    del x
    torch.cuda.empty_cache()
    return best


def _save(out: Path, res: dict) -> None:
    (out / "gpu_engine.json").write_text(json.dumps(res, indent=1))


def _rate(r: dict) -> float:
    return r["tokens"] / r["seconds"]


def run(out: Path) -> dict:
    import torch

    from tests.benchmarks import test_bench_engine as be

    t_start = time.perf_counter()
    os.environ["LOGOS_BENCH_CHILD"] = "1"  # the spawned engine processes load llama.cpp first
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cores = len(os.sched_getaffinity(0))
    from engine.runtime.draw import sampler_report

    res: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "cores": cores,
                 "N": be.N, "jobs": JOBS, "max_new": be.DEMO_MAX_NEW, "sampler": sampler_report()}
    print(f"GPU benchmark on {res['device']}, {cores} CPU cores, sampler: {res['sampler']}", flush=True)

    # ---- part A: the demonstration model
    if os.environ.get("LOGOS_GPU_SKIP_A") == "1":
        res["A"] = {}
    else:
        _part_a(out, res, be, device, cores)
    _part_b(out, res, be, device, cores, t_start)
    return res


def _part_a(out, res, be, device, cores):
    from engine.runtime.gguf_facts import read_facts

    demo = be.DEMO
    a = res["A"] = {"model": demo.name, "bytes": read_facts(demo).tensor_bytes}
    _try(out, res, a, "reference_gpu", be._reference_demo, demo, JOBS, device=device, threads=cores,
         count_valid=False)
    _try(out, res, a, "reference_cpu", be._reference_demo, demo, JOBS, device="cpu", threads=cores,
         count_valid=False)
    _try(out, res, a, "engine_gpu", be._fresh, _engine, demo, JOBS, be.DEMO_MAX_NEW, "auto")
    _try(out, res, a, "engine_cpu", be._fresh, _engine, demo, JOBS, be.DEMO_MAX_NEW, 0)
    eng = a.get("engine_gpu") or a.get("engine_cpu") or {"tokens": 19, "samples": 1}
    length = a["ceiling_length"] = max(2, round(eng["tokens"] / eng["samples"]))
    _try(out, res, a, "ceiling_gpu", be._fresh, _speed, demo, be.N, length, "auto")
    _try(out, res, a, "ceiling_cpu", be._fresh, _speed, demo, be.N, length, 0)
    # the same with llama.cpp's sampler chain (the engine's sampler before the compiled one), side by side
    os.environ["LOGOS_SAMPLER"] = "native"
    try:
        _try(out, res, a, "ceiling_gpu_native", be._fresh, _speed, demo, be.N, length, "auto")
    finally:
        del os.environ["LOGOS_SAMPLER"]
    # one job of 256 samples in N slots: refilled slots against waves (LOGOS_REFILL=0)
    _try(out, res, a, "big_gpu", be._fresh, be._big_job, demo, 256, threads=None, count_valid=False)
    _try(out, res, a, "printed", _print_a, res)


def _part_b(out, res, be, device, cores, t_start):
    from engine.runtime.gguf_facts import read_facts

    # ---- part B: LOGOS-1B's body, random weights
    if time.perf_counter() - t_start > BUDGET_S:
        print(f"part B skipped: {time.perf_counter() - t_start:.0f} s spent (budget {BUDGET_S:.0f} s)", flush=True)
        return
    from engine.models.convert import convert_hf_to_gguf

    work = Path(os.environ.get("LOGOS_GPU_WORK", tempfile.gettempdir())) / "gpu-engine-work"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        n_params = _build_1b(work / "hf", device)
        f16 = convert_hf_to_gguf(work / "hf", work / "b-f16.gguf", outtype="f16").path
        q8 = Path(be._fresh(_quantize, str(f16), str(work / "b-q8_0.gguf"), cores))
        f16.unlink()
    except Exception as exc:  # noqa: BLE001 - part A is kept
        traceback.print_exc()
        res["B"] = {"errors": {"prepare": f"{type(exc).__name__}: {exc}"}}
        _save(out, res)
        return
    b = res["B"] = {"n_params": n_params, "shape": B_SHAPE, "bytes": read_facts(q8).tensor_bytes, "vocab": B_VOCAB,
                    "prepare_s": round(time.perf_counter() - t0, 1), "max_new": B_NEW}
    print(f"part B model: {n_params / 1e9:.2f} B parameters, Q8_0 {b['bytes'] / 1e9:.2f} GB, "
          f"made in {b['prepare_s']} s", flush=True)
    _try(out, res, b, "reference_gpu", be._reference_demo, q8, 1, B_NEW, device=device, threads=cores,
         hf_dir=work / "hf", count_valid=False)
    _try(out, res, b, "engine_gpu", be._fresh, _engine, q8, 1, B_NEW, "auto")
    _try(out, res, b, "single_gpu", be._fresh, _speed, q8, 1, B_NEW, "auto")
    _try(out, res, b, "batched_gpu", be._fresh, _speed, q8, be.N, B_NEW, "auto")
    b["read_bandwidth"] = None
    if device == "cuda":
        _try(out, res, b, "read_bandwidth", _gpu_read_bandwidth)
    _try(out, res, b, "printed", _print_b, res)


def _try(out: Path, res: dict, part: dict, key: str, fn, *args, **kw) -> None:
    """One measurement: its result in ``part[key]``, or its error there, so that one failure
    still leaves the others; the JSON is saved after each."""
    t0 = time.perf_counter()
    try:
        part[key] = fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - recorded and printed; the run goes on
        part.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    print(f"[{key}: {time.perf_counter() - t0:.1f} s]", flush=True)
    _save(out, res)


def _engine(path, jobs, max_new, n_gpu_layers):
    from tests.benchmarks import test_bench_engine as be

    return be._engine_demo(path, jobs, max_new, threads=None, n_gpu_layers=n_gpu_layers, count_valid=False)


def _speed(path, n, max_new, n_gpu_layers):
    from tests.benchmarks import test_bench_engine as be

    return be._speed(path, n, max_new, threads=None, n_gpu_layers=n_gpu_layers)


def _print_a(res: dict, valid: dict | None = None) -> None:
    a = res["A"]
    ref = a["reference_gpu"]
    print(f"part A: {a['model']} ({a['bytes'] / 1e6:.1f} MB), {res['jobs']} jobs of N = {res['N']}, "
          f"up to {res['max_new']} new tokens, on {res['device']} / {res['cores']} CPU cores")
    for key, label in (("reference_gpu", "reference, transformers on the GPU (F32)"),
                       ("reference_cpu", f"reference, transformers on {res['cores']} CPU cores (F32)"),
                       ("engine_gpu", "engine, planner's choice (Q8_0)"),
                       ("engine_cpu", "engine, CPU only (Q8_0)")):
        r = a[key]
        extra = f", {r['n_gpu_layers']} layers on the GPU, {r['layout']}" if "layout" in r else ""
        v = ""
        if valid is not None:
            v = f", {valid[key]}/{r['samples']} valid = {valid[key] / r['seconds']:.1f} valid samples/s"
        print(f"  {label}: {r['tokens']} tokens in {r['seconds']:.2f} s = {_rate(r):.0f} tokens/s "
              f"= {_rate(r) / _rate(ref):.1f}x the GPU reference{v}{extra}")
    for key, label in (("ceiling_gpu", "GPU"), ("ceiling_cpu", "CPU"),
                       ("ceiling_gpu_threads", "GPU, host work over threads"),
                       ("ceiling_gpu_native", "GPU, llama.cpp's sampler chain (LOGOS_SAMPLER=native)")):
        if key not in a:
            continue
        c = a[key]
        print(f"  ceiling on the {label}: llama.cpp alone, N = {res['N']}, {a['ceiling_length']} tokens: "
              f"{c['bare']:.0f} tokens/s = {c['bare'] / _rate(ref):.1f}x the GPU reference; the engine at that "
              f"fixed length {c['engine']:.0f} tokens/s ({100 * c['engine'] / c['bare']:.0f} % of llama.cpp alone)")


    if "big_gpu" in a:
        big = a["big_gpu"]
        med = {k: sorted(v["tps"])[len(v["tps"]) // 2] for k, v in big.items()}
        print(f"  one job of 256 samples in {big['refill']['slots']} slots, planner's choice: refilled slots "
              f"{med['refill']:.0f} tokens/s ({big['refill']['steps']} steps), waves {med['waves']:.0f} tokens/s "
              f"({big['waves']['steps']} steps): RATIO {med['refill'] / med['waves']:.2f}x")


def _print_b(res: dict) -> None:
    b = res["B"]
    ref, eng = b["reference_gpu"], b["engine_gpu"]
    print(f"part B: random Llama shaped as LOGOS-1B, {b['n_params'] / 1e9:.2f} B parameters, vocabulary "
          f"{b.get('vocab', '?')}, "
          f"Q8_0 {b['bytes'] / 1e9:.2f} GB, one job of N = {res['N']}, {b['max_new']} new tokens")
    print(f"  reference (transformers generate + perplexity pass, bf16, GPU): {_rate(ref):.0f} tokens/s; "
          f"engine (Q8_0, {eng['n_gpu_layers']} layers on the GPU): {_rate(eng):.0f} tokens/s; "
          f"RATIO {_rate(eng) / _rate(ref):.1f}x")
    bw = b["read_bandwidth"]
    for key, n in (("single_gpu", 1), ("batched_gpu", res["N"])):
        s = b[key]
        roof = ""
        if bw:
            r = n * bw / b["bytes"]
            roof = (f"; bandwidth roofline {bw / 1e12:.2f} TB/s / {b['bytes'] / 1e9:.2f} GB x {n} = {r:.0f} "
                    f"tokens/s -> engine {100 * s['engine'] / r:.0f} %, llama.cpp alone {100 * s['bare'] / r:.0f} %")
        print(f"  N = {n}: engine {s['engine']:.0f} tokens/s, llama.cpp alone {s['bare']:.0f} tokens/s "
              f"(engine = {100 * s['engine'] / s['bare']:.0f} % of it){roof}")


def count(out: Path) -> None:
    from tests.benchmarks import test_bench_engine as be

    res = json.loads((out / "gpu_engine.json").read_text())
    valid = {k: be._valid_count(res["A"][k]["texts"])
             for k in ("reference_gpu", "reference_cpu", "engine_gpu", "engine_cpu")}
    _print_a(res, valid)
    if "B" in res:
        _print_b(res)


if __name__ == "__main__":
    if sys.argv[1] == "--count":
        count(Path(sys.argv[2]))
    else:
        folder = Path(sys.argv[1])
        folder.mkdir(parents=True, exist_ok=True)
        run(folder)
