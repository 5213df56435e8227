"""Run ligands over a ``concurrent.futures.Executor``: a local process pool by default, a Dask
cluster's executor when the user gives a scheduler address.

The caller iterates events: ``result`` (one ligand docked), ``error`` (one ligand could not be
docked: its reason; the others go on), ``progress`` (done/total, ligands per minute, ETA) and a last
``finished`` (status finished or cancelled). Cancel: set the ``cancel`` event; local workers are
killed at once (well under a second), Dask futures are cancelled. A worker process that dies (a
crash inside a native library) breaks a local pool: the ligands that were running are docked again
one at a time in a fresh pool, so the one that kills its worker is found and reported, and the rest
go on.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from engine.docking.errors import DockingError, LigandError
from engine.docking.worker import LigandJob, Settings, Target, dock_one, init_worker


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def local_executor(cpus: int) -> ProcessPoolExecutor:
    """Worker processes started fresh (spawn): never a fork of a process that holds Qt, llama.cpp
    or threads."""
    return ProcessPoolExecutor(max_workers=cpus, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker)


def _kill(executor: Executor) -> None:
    procs = getattr(executor, "_processes", None) or {}
    for p in list(procs.values()):
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
    # work still in the pipe to the killed workers is dropped: the queue's feeder thread must not
    # keep the process from exiting while it waits for a reader that is gone
    queue = getattr(executor, "_call_queue", None)
    if queue is not None:
        try:
            queue.cancel_join_thread()
        except Exception:  # noqa: BLE001
            pass
    try:
        executor.shutdown(wait=False, cancel_futures=True)
    except Exception:  # noqa: BLE001
        pass


def _processes(executor: Executor) -> dict:
    return dict(getattr(executor, "_processes", None) or {})


def _exit_codes(procs: dict) -> list[int]:
    """Exit codes of the worker processes that died (a broken pool forgets its processes: the
    caller keeps its own copy of the table)."""
    from multiprocessing.connection import wait as ready

    out = []
    for p in procs.values():
        try:
            p.join(0.2)
            # a broken pool's own thread joins its workers at the same time: when it reaps the
            # process first, this join finds no child and the exit code stays None until that
            # thread has stored it (a CI run reported a crash without its code; two threads joining
            # a dead process: 84 of 200 saw None, 0 of 200 with this wait); wait for the code of a
            # process that has ended
            end = time.monotonic() + 2.0
            while p.exitcode is None and time.monotonic() < end and ready([p.sentinel], 0):
                time.sleep(0.005)
        except Exception:  # noqa: BLE001
            continue
        if p.exitcode not in (None, 0):
            out.append(p.exitcode)
    # a broken pool sends SIGTERM to its other workers: the culprit's own code comes first
    return sorted(out, key=lambda c: c == -15)


def dock_ligands(target: Target, settings: Settings, ligands: Iterable[LigandJob], *,
                 executor: Executor | None = None, cpus: int | None = None,
                 cancel: threading.Event | None = None,
                 fn: Callable = dock_one, progress_interval: float = 1.0) -> Iterator[dict]:
    """Dock every ligand; yields events as they happen (see the module's docstring).

    ``executor``: any Executor (e.g. a Dask ``Client.get_executor()``); None makes a local process
    pool of ``cpus`` workers and shuts it down at the end. ``fn(target, settings, job)`` is the
    worker function (tests pass one that crashes on purpose).
    """
    settings.check()
    jobs = list(ligands)
    total = len(jobs)
    own = executor is None
    cpus = max(1, int(cpus or usable_cpus()))
    if own and cpus > 64:
        raise DockingError(f"at most 64 worker processes, not {cpus}")
    pool = local_executor(cpus) if own else executor
    width = cpus
    pending = collections.deque((job, False) for job in jobs)  # (job, suspect of killing its worker)
    inflight: dict = {}  # future -> (job, suspect)
    isolate = 0  # suspects still to run one at a time
    done = failed = 0
    t0 = time.perf_counter()
    last_progress = 0.0
    status = "finished"
    workers: dict = {}

    def progress():
        elapsed = time.perf_counter() - t0
        finished = done + failed
        rate = finished / elapsed * 60 if elapsed > 0 and finished else 0.0
        eta = (total - finished) / (rate / 60) if rate > 0 else None
        return {"type": "progress", "done": finished, "total": total, "docked": done, "failed": failed,
                "ligands_per_minute": round(rate, 2), "eta_s": round(eta, 1) if eta is not None else None,
                "elapsed_s": round(elapsed, 1)}

    try:
        yield progress()
        while pending or inflight:
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            limit = 1 if isolate > 0 else width
            while pending and len(inflight) < limit:
                job, suspect = pending.popleft()
                try:
                    fut = pool.submit(fn, target, settings, job)
                except BrokenProcessPool:
                    pending.appendleft((job, suspect))
                    break
                inflight[fut] = (job, suspect)
            if not inflight:  # the pool broke while submitting: start a fresh one
                if not own:
                    raise DockingError("the executor refused new work")
                _kill(pool)
                pool = local_executor(cpus)
                continue
            workers = _processes(pool) or workers
            finished, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
            broken = []
            for fut in finished:
                job, suspect = inflight.pop(fut)
                if suspect:
                    isolate -= 1
                try:
                    row = fut.result()
                except BrokenProcessPool:
                    broken.append((job, suspect))
                    continue
                except LigandError as exc:
                    failed += 1
                    yield {"type": "error", "index": job.index, "smiles": job.smiles, "name": job.name,
                           "message": str(exc)}
                    continue
                except Exception as exc:  # noqa: BLE001 - one ligand's failure, whatever it is
                    failed += 1
                    kind = type(exc).__name__
                    yield {"type": "error", "index": job.index, "smiles": job.smiles, "name": job.name,
                           "message": f"{job.smiles}: docking failed ({kind}: {' '.join(str(exc).split())[:200]})"}
                    continue
                done += 1
                yield {"type": "result", **row}
            if broken:
                # the remaining in-flight futures of a broken pool fail too: collect them
                for fut in list(inflight):
                    job, suspect = inflight.pop(fut)
                    if suspect:
                        isolate -= 1
                    broken.append((job, suspect))
                codes = _exit_codes(workers)
                _kill(pool)
                pool = local_executor(cpus)
                if len(broken) == 1:
                    job, _ = broken[0]
                    failed += 1
                    code = f" (exit code {codes[0]})" if codes else ""
                    yield {"type": "error", "index": job.index, "smiles": job.smiles, "name": job.name,
                           "message": f"{job.smiles}: the docking worker crashed{code}; the other ligands go on"}
                else:
                    for job, _ in reversed(broken):
                        pending.appendleft((job, True))
                    isolate = len(broken)
            now = time.perf_counter()
            if finished and now - last_progress >= progress_interval or not (pending or inflight):
                last_progress = now
                yield progress()
    finally:
        if status == "cancelled" or inflight:
            if own:
                _kill(pool)
            else:
                for fut in inflight:
                    fut.cancel()
        elif own:
            pool.shutdown(wait=True)
    end = progress()
    end.update(type="finished", status=status, seconds=round(time.perf_counter() - t0, 2))
    yield end
