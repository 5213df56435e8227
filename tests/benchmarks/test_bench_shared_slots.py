"""Shared slots: two jobs of 64 samples submitted together on the demonstration model, run in one
set of slots (the default) against one after the other (``RuntimeOptions(share_slots=False)``,
as ``LOGOS_SHARE_SLOTS=0``).

Run by its own command, never in CI:  .venv/bin/python -m pytest tests/benchmarks/test_bench_shared_slots.py -s

Both ways submit the two jobs at the same moment from two threads (the first a hair earlier), in
one process with one loaded model, in alternating rounds (shared, apart, apart, shared, ...: a
machine busy with other work slows both ways alike); the median of the rounds is printed. Per
way: the time until both jobs have finished, the time to the first result of the second job, and
the time until the first job has finished (it gives up part of its slots). Both ways must give
the very same samples (same seeds).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

from engine.runtime.llama import Runtime, RuntimeOptions
from engine.runtime.sampling import SamplingParams

DEMO = Path(__file__).resolve().parents[2] / "resources" / "models" / "logos-demo-q8_0.gguf"
SLOTS = int(os.environ.get("LOGOS_BENCH_SLOTS", "16"))
N = int(os.environ.get("LOGOS_BENCH_SHARED_N", "64"))
ROUNDS = int(os.environ.get("LOGOS_BENCH_ROUNDS", "4"))  # rounds of each way
THREADS = int(os.environ.get("LOGOS_BENCH_THREADS", "2"))


def _round(rt: Runtime, share: bool, stop: int) -> dict:
    rt.options = rt.options.replace(share_slots=share)
    jobs = [("<MoleculeS>", SamplingParams(max_new_tokens=128), 1),
            ("<MoleculeS>", SamplingParams(max_new_tokens=128, temperature=0.9, top_k=30), 2)]
    firsts, ends, samples = [None, None], [None, None], [[], []]

    def run(k):
        prompt, params, seed = jobs[k]

        def on_sample(s):
            if firsts[k] is None:
                firsts[k] = time.perf_counter()
            samples[k].append(s)

        rt.stream(prompt, N, params, seed, stop_ids=[stop], on_sample=on_sample)
        ends[k] = time.perf_counter()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    t0 = time.perf_counter()
    threads[0].start()
    time.sleep(0.001)  # the first job is queued first
    threads[1].start()
    for t in threads:
        t.join()
    key = [sorted((s.index, s.tokens, s.ppl) for s in job) for job in samples]
    return {"both": max(ends) - t0, "first_done": ends[0] - t0, "ttfr2": firsts[1] - t0,
            "tokens": sum(len(s.tokens) for job in samples for s in job), "key": key}


def test_two_jobs_shared_against_one_after_the_other():
    rt = Runtime.load(DEMO, n_threads=THREADS, n_seq_max=SLOTS + 1)
    try:
        stop = rt.token_id("<MoleculeE>")
        _round(rt, True, stop)  # warm-up (builds the context)
        out = {True: [], False: []}
        for r in range(ROUNDS):
            for share in ((True, False) if r % 2 == 0 else (False, True)):
                out[share].append(_round(rt, share, stop))
    finally:
        rt.close()
    ref = out[False][0]["key"]
    for runs in out.values():
        for x in runs:
            assert x["key"] == ref, "the samples depend on how the jobs ran"
    med = {share: {k: statistics.median(x[k] for x in runs) for k in ("both", "first_done", "ttfr2", "tokens")}
           for share, runs in out.items()}
    print(f"\nshared slots, demonstration model, {SLOTS} slots, 2 jobs x {N} samples, {THREADS} threads, "
          f"median of {ROUNDS} alternating rounds each")
    for share, name in ((False, "one after the other"), (True, "shared slots")):
        m = med[share]
        all_both = ", ".join(f"{x['both']:.2f}" for x in out[share])
        print(f"  {name:20s} both done {m['both']:.2f} s (rounds: {all_both}), first job done "
              f"{m['first_done']:.2f} s, second job's first result {m['ttfr2']:.3f} s, "
              f"{m['tokens'] / m['both']:.0f} tokens/s")
    print(f"  shared / apart: both done x{med[True]['both'] / med[False]['both']:.2f}, second job's first result "
          f"x{med[True]['ttfr2'] / med[False]['ttfr2']:.3f}")
    assert med[True]["ttfr2"] < med[False]["ttfr2"]
