"""A pool of fuzz worker processes with a time bound per case.

Each case goes to a long-lived worker (``python -m tests.reliability.fuzz_worker``), so imports are
paid once, yet every case is bounded: no answer within ``timeout`` seconds means ``hang`` (the
worker is killed and replaced); a worker that dies means ``crash`` (with its exit code or signal
and the tail of its stderr). Nothing a reader does can take the test process down with it.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen | None = None
        self.buf = b""
        self.stderr_file = tempfile.NamedTemporaryFile(prefix=f"fuzz-worker{index}-", suffix=".log", delete=False)
        self.started = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.fuzz_worker"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     env=_env())
        self.buf = b""
        self.started += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        try:
            self.stderr_file.close()
            os.unlink(self.stderr_file.name)
        except OSError:
            pass

    def _stderr_tail(self) -> str:
        try:
            self.stderr_file.flush()
            data = Path(self.stderr_file.name).read_bytes()
        except OSError:
            return ""
        return data[-2000:].decode("utf-8", "replace")

    def ask(self, req: dict, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        t0 = time.monotonic()
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died(t0)
        fd = self.proc.stdout.fileno()
        deadline = t0 + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                return {"outcome": "hang", "message": f"no answer within {timeout:.0f} s", "seconds": timeout}
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return self._died(t0)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        ans = json.loads(line)
        ans["seconds"] = round(time.monotonic() - t0, 3)
        return ans

    def _died(self, t0: float) -> dict:
        rc = self.proc.wait()
        self.proc = None
        how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
        return {"outcome": "crash", "message": f"worker died ({how})", "returncode": rc,
                "stderr_tail": self._stderr_tail(), "seconds": round(time.monotonic() - t0, 3)}


class WorkerPool:
    """``run(requests)`` -> answers in the same order; ``workers`` processes work in parallel."""

    def __init__(self, workers: int = 2, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.workers = [_Worker(i) for i in range(max(1, workers))]

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for w in self.workers:
            w.stop()

    @property
    def restarts(self) -> int:
        return sum(max(0, w.started - 1) for w in self.workers)

    def warm_up(self, paths: list[str], mode: str = "read", timeout: float = 180.0) -> list[dict]:
        """Every worker reads every path (imports paid here, not inside a case's time bound)."""
        out = []
        for w in self.workers:
            for p in paths:
                out.append(w.ask({"path": str(p), "mode": mode}, timeout))
        return out

    def run(self, requests: list[dict]) -> list[dict]:
        todo: queue.Queue = queue.Queue()
        for i, req in enumerate(requests):
            todo.put((i, req))
        answers: list[dict | None] = [None] * len(requests)

        def serve(worker: _Worker) -> None:
            while True:
                try:
                    i, req = todo.get_nowait()
                except queue.Empty:
                    return
                answers[i] = worker.ask(req, self.timeout)

        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return answers  # type: ignore[return-value]
