"""GPU check, run by hand on a machine with an NVIDIA GPU (not by CI):

    python tests/benchmarks/gpu_check.py MODEL.gguf

Loads the model twice through the engine runtime, once with the planner's choice (all layers on
the GPU where they fit) and once on the CPU only, generates N molecules from the same prompt and
seed with each, and prints the plan, the layers on the GPU and tokens per second side by side.
"""

from __future__ import annotations

import json
import sys
import time


def main(model: str, n: int = 16) -> int:
    from engine.runtime.native import preload

    preload()  # before numpy: see engine/runtime/native.py
    from engine.runtime.backend import backend_info
    from engine.runtime.llama import Runtime
    from engine.runtime.sampling import SamplingParams

    info = backend_info()
    print("backend:", json.dumps(info.as_dict(), indent=1))
    results = {}
    for label, layers in (("planner", "auto"), ("cpu-only", 0)):
        t0 = time.perf_counter()
        rt = Runtime.load(model, n_gpu_layers=layers)
        load_s = time.perf_counter() - t0
        desc = rt.describe()
        stop = rt.token_id("<MoleculeE>")
        params = SamplingParams(max_new_tokens=128)
        samples, stats = rt.generate("<MoleculeS>", n=n, params=params, seed=7,
                                     stop_ids=[stop] if stop is not None else [])
        results[label] = {"n_gpu_layers": desc["n_gpu_layers"], "load_s": round(load_s, 2),
                          "tokens_per_s": round(stats.tokens_per_s, 1),
                          "reasons": desc["plan"].get("reasons"),
                          "first_samples": [s.text for s in samples[:3]]}
        rt.close()
    print(json.dumps(results, indent=1))
    gpu, cpu = results["planner"], results["cpu-only"]
    print(f"GPU layers {gpu['n_gpu_layers']}; tokens/s GPU {gpu['tokens_per_s']} vs CPU "
          f"{cpu['tokens_per_s']} (x{gpu['tokens_per_s'] / max(cpu['tokens_per_s'], 1e-9):.1f})")
    return 0 if (info.backend == "CUDA" and gpu["n_gpu_layers"] != 0) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *(int(a) for a in sys.argv[2:])))
