"""Jobs of thousands of samples in a real engine process on the demonstration model: every result
is stored and emitted as it finishes and then forgotten, so the process's memory does not grow
with N; N = 0 and N beyond the maximum are refused with the limit named."""

from __future__ import annotations

import sqlite3
import threading
import time

import psutil
import pytest

from engine.process.client import EngineClient
from engine.process.protocol import MAX_N

GROWTH_LIMIT = 30 * 2**20  # bytes of peak RSS the engine process may add from N = 1,000 to 10,000


@pytest.fixture(scope="module")
def engine():
    from engine import paths

    c = EngineClient()
    c.start()
    c.load_model_wait(str(paths.bundled_models()[0]), n_threads=2)
    yield c
    c.close()


def _rss_sampler(pid: int):
    """Peak RSS of ``pid``, sampled every 20 ms in a thread until ``stop`` is set."""
    proc = psutil.Process(pid)
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def run():
        while not stop.wait(0.02):
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return peak, stop, t


def _run(engine, n: int, project: str) -> tuple[int, dict, int]:
    """One molecule job of ``n`` short samples stored in ``project``; the results are counted as
    they come (each index once) and not kept. Returns (peak RSS, finished event, progress events)."""
    seen = bytearray(n)
    peak, stop, t = _rss_sampler(engine.proc.pid)
    progress = 0
    try:
        job = engine.submit("molecule", n=n, seed=5, sampling={"max_new_tokens": 4}, project=project)
        for ev in engine.iter_job(job, timeout=600):
            kind = ev["type"]
            if kind == "result":
                assert not seen[ev["index"]], ev["index"]
                seen[ev["index"]] = 1
                assert ev["result_id"] is not None
            elif kind == "progress":
                progress += 1
            elif kind in ("error", "engine_exited"):
                raise AssertionError(ev)
            elif kind == "finished":
                fin = ev
    finally:
        stop.set()
        t.join(1)
    assert fin["status"] == "finished" and fin["summary"]["samples"] == n
    assert all(seen), f"{seen.count(0)} results missing"
    with sqlite3.connect(project) as db:
        assert db.execute("SELECT count(*) FROM results WHERE run_id = ?", (fin["run_id"],)).fetchone()[0] == n
    return peak[0], fin, progress


@pytest.mark.slow
def test_engine_memory_does_not_grow_from_1000_to_10000_samples(engine, tmp_path):
    _run(engine, 32, str(tmp_path / "warm.logos"))  # lazily built tables, threads, the store's modules
    rss = {}
    for n in (1000, 10_000):
        t0 = time.perf_counter()
        rss[n], fin, progress = _run(engine, n, str(tmp_path / f"n{n}.logos"))
        st = fin["stats"]
        print(f"\nN = {n}: peak RSS {rss[n] / 2**20:.1f} MiB, {time.perf_counter() - t0:.1f} s, "
              f"{st['max_batch']} slots, {st['refills']} refills, {st['tokens_per_s']:.0f} tokens/s, "
              f"{progress} progress events")
        assert st["refills"] == n - st["max_batch"] and progress >= 2
    growth = rss[10_000] - rss[1000]
    print(f"growth from N = 1,000 to 10,000: {growth / 2**20:+.1f} MiB (limit {GROWTH_LIMIT / 2**20:.0f} MiB)")
    assert growth < GROWTH_LIMIT


def test_a_job_of_none_or_too_many_samples_is_refused_with_the_limit(engine):
    assert MAX_N == 10_000
    for n in (0, MAX_N + 1):
        rid = engine.send("submit", task="molecule", n=n)
        ev = engine.wait_for(lambda e: e.get("id") == rid, 10)
        assert ev["type"] == "error" and f"n must be an integer 1..{MAX_N}" in ev["message"], ev
    # the engine is still up and takes the largest job's neighbour in size
    job = engine.submit("molecule", n=3, seed=1, sampling={"max_new_tokens": 4})
    assert [e["type"] for e in engine.iter_job(job, timeout=120)][-1] == "finished"


def test_the_result_writer_keeps_order_bounds_its_queue_and_hands_its_error_to_the_job():
    """Results are handled in order in the writer's thread; a full queue makes the generation wait;
    the writer's error (e.g. the store refusing a write) stops the job at its next sample and is
    not raised twice; a failure after the last sample comes out of close()."""
    from engine.process.jobs import ResultWriter

    got, gate = [], threading.Event()

    def handle(i):
        gate.wait(5)
        if i == 3:
            raise OSError("disk full")
        got.append(i)

    w = ResultWriter(handle, depth=2)
    w.put(0)  # the writer takes it and waits at the gate
    t0 = time.perf_counter()
    blocked = threading.Thread(target=lambda: [w.put(i) for i in (1, 2, 3)])
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # queue of 2 full: the generation waits for the writer
    gate.set()
    blocked.join(5)
    with pytest.raises(OSError, match="disk full"):
        for i in range(4, 100):
            w.put(i)
            time.sleep(0.01)
    w.close()  # raised once already: not again
    assert got == [0, 1, 2] and time.perf_counter() - t0 < 10

    late = ResultWriter(lambda i: (_ for _ in ()).throw(ValueError("bad record")))
    late.put(1)
    with pytest.raises(ValueError, match="bad record"):
        late.close()
