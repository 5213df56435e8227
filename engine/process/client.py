"""EngineClient: spawn the engine process, send requests, receive events, restart after a crash.

Used alike by ``logos generate`` and the GUI (whose bridge turns events into Qt signals on the
main thread; this class never touches Qt). Events arrive on a reader thread; they are put on a
queue (``next_event`` / ``events`` / ``iter_job``) and, if given, passed to ``on_event`` (called
on the reader thread).

If the process dies without being asked to, the client emits ``{"type": "engine_exited",
"returncode", "stderr_tail"}``, a ``finished`` event with status ``failed`` for every job in
flight, and (``auto_restart``) starts a new process, re-sends the last ``load_model`` that loaded
and emits ``{"type": "engine_restarted"}``.

If the process dies while it loads a model (llama.cpp aborting on a hostile GGUF), that load is
never sent again: the new process starts with no model, and the load is answered (after
``engine_restarted``) with an ``error`` event naming the file and how the process died (signal or
exit code, and its last stderr line). Loads queued behind it are answered with an error too. A
client such as the GUI's bridge can then load the previous model itself.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator


class EngineError(RuntimeError):
    """The engine process could not be started or answered with an error."""


def exit_reason(rc: int, abort_line: str = "") -> str:
    """How a process ended, in words: 'killed by SIGABRT (signal 6)' or 'exit code 1', with the
    native abort message it wrote on stderr when given."""
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        why = f"killed by {name} (signal {-rc})"
    else:
        why = f"exit code {rc}"
    line = abort_line.strip()
    if line:
        why += ": " + (line if len(line) <= 240 else line[:237] + "...")
    return why


_ABORT_MARKS = ("GGML_ASSERT", "GGML_ABORT", "terminate called", "Fatal Python error")


class EngineClient:
    def __init__(self, command: list[str] | None = None, *, env: dict | None = None,
                 on_event: Callable[[dict], None] | None = None, auto_restart: bool = True,
                 max_restarts: int = 3) -> None:
        self.command = command or [sys.executable, "-m", "engine", "engine", "--stdio"]
        self.env = env
        self.on_event = on_event
        self.auto_restart = auto_restart
        self.max_restarts = max_restarts
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self.hello: dict | None = None
        self._events: queue.Queue = queue.Queue()
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._closing = False
        self._last_load: dict | None = None  # the last load_model that loaded (replayed on restart)
        self._loads: dict = {}  # id -> load_model request sent and not yet answered, in order
        self._loading = None  # id of the load the engine said it started (load_progress)
        self._jobs: set = set()
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._hello_event = threading.Event()
        self._abort_line = ""  # the first native abort message the current process wrote

    # ---------------------------------------------------------------- process
    def start(self, timeout: float = 60.0) -> dict:
        """Spawn the engine and wait for its hello event (returned)."""
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._hello_event.clear()
        self._abort_line = ""
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, text=True, encoding="utf-8",
                                         errors="replace", bufsize=1)
        except OSError as exc:
            raise EngineError(f"cannot start the engine ({' '.join(self.command)}): {exc}") from None
        proc = self.proc
        threading.Thread(target=self._read_stdout, args=(proc,), daemon=True, name="engine-events").start()
        threading.Thread(target=self._read_stderr, args=(proc,), daemon=True, name="engine-stderr").start()
        if not self._hello_event.wait(timeout):
            tail = "\n".join(list(self._stderr)[-10:])
            raise EngineError(f"the engine did not start within {timeout:.0f} s\n{tail}")
        return self.hello or {}

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read_stderr(self, proc) -> None:
        for line in proc.stderr:
            line = line.rstrip("\n")
            self._stderr.append(line)
            if proc is self.proc and not self._abort_line and any(m in line for m in _ABORT_MARKS):
                self._abort_line = line

    def _read_stdout(self, proc) -> None:
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(f"[not an event] {line}")
                continue
            if ev.get("type") == "hello":
                self.hello = ev
                self._hello_event.set()
            kind = ev.get("type")
            if kind == "finished":
                self._jobs.discard(ev.get("job"))
            elif kind == "load_progress" and ev.get("id") in self._loads:
                self._loading = ev.get("id")
            elif kind in ("model_loaded", "error") and ev.get("id") in self._loads:
                req = self._loads.pop(ev.get("id"))
                if self._loading == ev.get("id"):
                    self._loading = None
                if kind == "model_loaded":
                    self._last_load = req
            elif kind == "unloaded":
                self._last_load = None
            self._deliver(ev)
        rc = proc.wait()
        if proc is not self.proc or self._closing:
            return
        self._crashed(rc)

    def _deliver(self, ev: dict) -> None:
        self._events.put(ev)
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:  # noqa: BLE001 - an observer's bug must not kill the reader
                pass

    def _crashed(self, rc: int) -> None:
        time.sleep(0.05)  # let the stderr reader catch the last lines
        tail = "\n".join(list(self._stderr)[-20:])
        self._deliver({"type": "engine_exited", "returncode": rc, "stderr_tail": tail})
        for job in list(self._jobs):
            self._deliver({"type": "finished", "job": job, "status": "failed",
                           "error": f"the engine process exited (code {rc})"})
        self._jobs.clear()
        # loads in flight are answered, never replayed: the one being loaded is what crashed it
        crashed_load, self._loading = self._loading, None
        abort_line = self._abort_line
        lost = list(self._loads.items())
        self._loads.clear()
        if crashed_load is not None:
            self._last_load = None  # the load may have freed the previous model: start with none
        restarted = False
        if self.auto_restart and self.restarts < self.max_restarts:
            self.restarts += 1
            try:
                self.start()
                if self._last_load is not None:
                    self._send_load(dict(self._last_load))
                restarted = True
                self._deliver({"type": "engine_restarted", "restarts": self.restarts})
            except EngineError as exc:
                self._deliver({"type": "error", "message": f"restart failed: {exc}"})
        after = ("; the engine was restarted without a model and the file was not loaded again"
                 if restarted and crashed_load is not None else
                 "; the engine was restarted" if restarted else "; the engine was not restarted")
        for rid, req in lost:
            what = req.get("path") or req.get("url") or "the model"
            if rid == crashed_load:
                message = f"{what}: the engine process crashed while loading it ({exit_reason(rc, abort_line)}){after}"
            else:
                message = f"{what}: not loaded: the engine process exited before it got to it ({exit_reason(rc)}){after}"
            self._deliver({"type": "error", "id": rid, "message": message, "path": req.get("path"),
                           "returncode": rc})

    def restart(self) -> dict:
        """Stop the process (whatever state it is in) and start a new one; reloads the model.
        This is also how "unload" frees memory that llama.cpp keeps until the process exits."""
        self._kill()  # the old reader sees that its process is no longer ours and stays quiet
        for job in list(self._jobs):
            self._deliver({"type": "finished", "job": job, "status": "failed",
                           "error": "the engine was restarted"})
        self._jobs.clear()
        self._loads.clear()
        self._loading = None
        hello = self.start()
        if self._last_load is not None:
            self._send_load(dict(self._last_load))
        return hello

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def close(self, timeout: float = 10.0) -> None:
        """Ask the engine to shut down; kill it if it does not exit within ``timeout``."""
        self._closing = True
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self._send({"type": "shutdown"})
                proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> "EngineClient":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- requests
    def _send(self, req: dict) -> object:
        if "id" not in req and req.get("type") not in ("shutdown",):
            req["id"] = f"r{next(self._ids)}"
        line = json.dumps(req, separators=(",", ":")) + "\n"
        with self._send_lock:
            if not self.alive:
                raise EngineError("the engine process is not running")
            try:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise EngineError(f"the engine process is gone: {exc}") from None
        return req.get("id")

    def send(self, kind: str, **fields) -> object:
        """Send any request; returns its id."""
        return self._send({"type": kind, **{k: v for k, v in fields.items() if v is not None}})

    def load_model(self, path: str | None = None, *, url: str | None = None, **kw) -> object:
        req = {"type": "load_model", **({"path": str(path)} if path else {}), **({"url": url} if url else {}),
               **{k: v for k, v in kw.items() if v is not None}}
        return self._send_load(req)

    def _send_load(self, req: dict) -> object:
        """Send a load_model, keeping it among the loads in flight until the engine answers."""
        req.setdefault("id", f"r{next(self._ids)}")
        rid = req["id"]
        self._loads[rid] = {k: v for k, v in req.items() if k != "id"}
        try:
            return self._send(req)
        except EngineError:
            self._loads.pop(rid, None)
            raise

    def submit(self, task: str, *, inputs: dict | None = None, options: dict | None = None, n: int = 1,
               seed: int = 0, sampling: dict | None = None, project: str | None = None,
               prompt: str | None = None, grammar: bool = False, job: str | None = None) -> object:
        """Queue a job; returns its id (the ``job`` of its events)."""
        req = {"type": "submit", "task": task, "n": n, "seed": seed}
        if job is not None:
            req["id"] = job
        for key, value in (("inputs", inputs), ("options", options), ("sampling", sampling),
                           ("project", project), ("prompt", prompt)):
            if value:
                req[key] = value
        if grammar:
            req["grammar"] = True
        rid = self._send(req)
        self._jobs.add(rid)
        return rid

    def cancel(self, job) -> object:
        return self.send("cancel", job=job)

    def status(self, timeout: float = 10.0) -> dict:
        rid = self.send("status")
        return self.wait_for(lambda e: e.get("type") == "status" and e.get("id") == rid, timeout)

    def tasks(self, timeout: float = 10.0) -> list[dict]:
        rid = self.send("tasks")
        return self.wait_for(lambda e: e.get("type") == "tasks" and e.get("id") == rid, timeout)["tasks"]

    # ---------------------------------------------------------------- events
    def next_event(self, timeout: float | None = None) -> dict | None:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def events(self, timeout: float | None = None) -> Iterator[dict]:
        """Events as they come; stops after ``timeout`` seconds without one."""
        while True:
            ev = self.next_event(timeout)
            if ev is None:
                return
            yield ev

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 60.0) -> dict:
        """The first event matching ``predicate``; events before it are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EngineError(f"no answer from the engine within {timeout:.0f} s")
            ev = self.next_event(left)
            if ev is None:
                continue
            if predicate(ev):
                return ev

    def load_model_wait(self, path: str | None = None, *, timeout: float = 600.0, **kw) -> dict:
        """Load and wait: the model_loaded event, or EngineError with the engine's message."""
        rid = self.load_model(path, **kw)
        ev = self.wait_for(lambda e: e.get("id") == rid and e.get("type") in ("model_loaded", "error"),
                           timeout)
        if ev["type"] == "error":
            raise EngineError(ev["message"])
        return ev

    def iter_job(self, job, timeout: float = 600.0) -> Iterator[dict]:
        """Every event of ``job`` (and engine-level errors/exits) until its ``finished`` event."""
        while True:
            ev = self.next_event(timeout)
            if ev is None:
                raise EngineError(f"no event from the engine for {timeout:.0f} s")
            kind = ev.get("type")
            if ev.get("job") == job or ev.get("id") == job or kind in ("engine_exited", "engine_restarted"):
                yield ev
                if kind == "finished" and ev.get("job") == job:
                    return

    @property
    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)
