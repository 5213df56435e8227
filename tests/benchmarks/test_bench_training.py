"""Training throughput (tokens/s) on this CPU for the demonstration model's configuration.

Run: ``.venv/bin/python -m pytest tests/benchmarks/test_bench_training.py -s``. Prints, measured side
by side in one run on the same real records: the demo configuration with 2 threads (OpenMP passive
wait, as training sets it), with 1 thread, and the share of a step spent in the forward pass; and
float32 against bfloat16 mixed precision (``--precision``) at 4 and 8 layers, in alternating rounds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys, time, json
sys.path.insert(0, %(root)r)
import training  # sets OMP_WAIT_POLICY before torch loads
import torch
from training import data as D, tokenizer as tk
from training.demo import DemoSettings
from training.train import _stream, _record_starts, _batch, _autocast
threads = int(sys.argv[1]); steps = int(sys.argv[2])
precision = sys.argv[3] if len(sys.argv) > 3 else "float32"
layers = int(sys.argv[4]) if len(sys.argv) > 4 else 0
torch.set_num_threads(threads)
s = DemoSettings()
cfg = s.train
if layers:
    cfg.model.num_hidden_layers = layers
smiles = open(%(smi)r).read().split()
rows = [D.molecule_record(x) for x in smiles]
tok = tk.train_bpe(rows, s.vocab_size)
from transformers import LlamaForCausalLM
torch.manual_seed(0)
model = LlamaForCausalLM(cfg.model.to_hf(tok))
opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
stream, _ = _stream(tok, rows, cfg.block_size)
starts = _record_starts(stream, tok, cfg.block_size)
fwd = 0.0
for i in range(steps + 1):
    if i == 1:
        t0 = time.perf_counter(); fwd = 0.0
    x, _ = _batch(stream, starts, cfg.block_size, cfg.batch_size, 0, i, 0)
    t = time.perf_counter()
    with _autocast(torch.device("cpu"), precision):
        loss = model(input_ids=x, labels=x).loss
    fwd += time.perf_counter() - t
    opt.zero_grad(); loss.backward(); opt.step()
dt = time.perf_counter() - t0
print(json.dumps({"threads": threads, "tokens_per_s": steps * cfg.batch_size * cfg.block_size / dt,
                  "forward_share": fwd / dt, "batch": [cfg.batch_size, cfg.block_size],
                  "params": sum(p.numel() for p in model.parameters())}))
"""


def _run(threads: int, steps: int, precision: str = "float32", layers: int = 0) -> dict:
    import json

    code = SCRIPT % {"root": str(ROOT), "smi": str(ROOT / "tests/data/training/moses_train_head600.smi")}
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", code, str(threads), str(steps), precision, str(layers)],
                         capture_output=True, text=True,
                         env=env, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_tokens_per_second():
    steps = int(os.environ.get("LOGOS_BENCH_STEPS", "20"))
    t = time.time()
    two = _run(2, steps)
    one = _run(1, steps)
    print(f"\ndemo configuration ({two['params'] / 1e6:.2f} M parameters, batch {two['batch'][0]} x {two['batch'][1]} tokens), {steps} steps:")
    print(f"  2 threads: {two['tokens_per_s']:8.0f} tokens/s (forward {two['forward_share']:.0%} of a step)")
    print(f"  1 thread : {one['tokens_per_s']:8.0f} tokens/s")
    print(f"  ratio 2 threads / 1 thread: {two['tokens_per_s'] / one['tokens_per_s']:.2f}")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {time.time() - t:.0f} s)")
    assert two["tokens_per_s"] > 0 and one["tokens_per_s"] > 0


def test_bfloat16_against_float32():
    """Mixed precision's gain on this CPU, 2 threads, demo batch: the median of alternating rounds."""
    import statistics

    from training.train import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        print("\nthis CPU has no native bfloat16 (AVX512-BF16 or AMX): --precision auto trains in float32 here")
        return
    steps = int(os.environ.get("LOGOS_BENCH_STEPS", "10"))
    rounds = int(os.environ.get("LOGOS_BENCH_ROUNDS", "3"))
    t = time.time()
    print(f"\nfloat32 against bfloat16 mixed precision, 2 threads, {steps} steps a round, {rounds} rounds each:")
    for layers in (4, 8):
        got = {"float32": [], "bfloat16": []}
        for r in range(rounds):
            order = ("float32", "bfloat16") if r % 2 == 0 else ("bfloat16", "float32")
            for prec in order:
                got[prec].append(_run(2, steps, prec, layers)["tokens_per_s"])
        f32, b16 = statistics.median(got["float32"]), statistics.median(got["bfloat16"])
        print(f"  {layers} layers: float32 {f32:7.0f} tokens/s, bfloat16 {b16:7.0f} tokens/s, ratio {b16 / f32:.2f} "
              f"(rounds {', '.join(f'{x:.0f}' for x in got['float32'])} / {', '.join(f'{x:.0f}' for x in got['bfloat16'])})")
        assert f32 > 0 and b16 > 0
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {time.time() - t:.0f} s)")
