"""Engine events → Qt signals, and supervision of the engine process.

The engine runs in its own process, spawned by ``engine.process.client.EngineClient``, whose
reader thread queues every event. A QTimer on the GUI thread drains that queue and emits typed
signals, so no Qt object is ever touched from another thread. Starting the process (which waits
for its ``hello``) and restarting it run on a plain worker thread so the window never freezes.

Supervision: when the process dies the client reports ``engine_exited``, fails every job in flight
and restarts it (re-sending the last ``load_model``); the bridge turns that into ``stateChanged``
("crashed" with the exit code and the last lines of stderr, then "ready") so the window can say
so. A model that fails to load leaves the previous one in place: the bridge loads it again.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal


class EngineBridge(QObject):
    # protocol events (dicts exactly as the engine sent them)
    hello = Signal(dict)
    modelLoaded = Signal(dict)
    loadProgress = Signal(dict)
    accepted = Signal(dict)
    started = Signal(dict)
    progress = Signal(dict)
    result = Signal(dict)
    finished = Signal(dict)
    error = Signal(dict)
    status = Signal(dict)
    event = Signal(dict)  # every event, after its typed signal
    # supervision
    stateChanged = Signal(str, str)  # "starting" | "ready" | "crashed" | "stopped", message for the user
    modelLoadFailed = Signal(str, str)  # path, reason (the previous model is loaded again)

    def __init__(self, client_factory: Callable[[], Any] | None = None, parent: QObject | None = None,
                 poll_ms: int = 30) -> None:
        super().__init__(parent)
        self._factory = client_factory or _default_client_factory
        self.client = None
        self.state = "stopped"
        self.state_message = ""
        self.backend: dict = {}  # the engine's BackendInfo (from hello)
        self.model: dict | None = None  # the last model_loaded event
        self._loads: dict[str, tuple[str, dict]] = {}  # load request id -> (path, options)
        self._loaded: tuple[str, dict] | None = None  # the model that is loaded now
        self._deferred: list[tuple[str, tuple, dict]] = []  # requests waiting for the engine to be ready
        self._local: queue.Queue = queue.Queue()  # events made by the bridge's own threads
        self._ids = itertools.count(1)
        self.jobs_in_flight: set[str] = set()
        self.crashes = 0  # crashes of the current client
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._drain)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the engine process (on a worker thread); ``stateChanged('ready')`` follows."""
        if self.client is not None and self.state in ("starting", "ready"):
            return
        self._set_state("starting", "engine process: starting…")
        try:
            self.client = self._factory()
        except Exception as exc:  # noqa: BLE001
            self._set_state("crashed", f"engine process: cannot start ({exc})")
            return
        self.crashes = 0
        self._timer.start()
        self._in_thread(self.client.start, "engine-start")

    def restart(self) -> None:
        """Kill and start the engine process again (also frees memory llama.cpp keeps)."""
        if self.client is None:
            self.start()
            return
        self._set_state("starting", "engine process: restarting…")
        self._timer.start()
        self._in_thread(self.client.restart, "engine-restart")

    def stop(self, timeout: float = 5.0) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close(timeout)
            except Exception:  # noqa: BLE001
                pass
        self._timer.stop()
        self._set_state("stopped", "engine process: stopped")

    def _in_thread(self, fn, name: str) -> None:
        client = self.client

        def run():
            try:
                hello = fn()
                self._local.put({"type": "__started__", "hello": hello or {}, "client": client})
            except Exception as exc:  # noqa: BLE001 - reported on the GUI thread
                self._local.put({"type": "__start_failed__", "message": str(exc), "client": client})

        threading.Thread(target=run, name=name, daemon=True).start()

    # -- requests ---------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.client is not None

    def load_model(self, path: str, **options) -> None:
        """Load ``path`` in the engine. If it fails, the model loaded before is loaded again."""
        if not self.ready:
            self._deferred.append(("load_model", (path,), options))
            return
        rid = self.client.load_model(str(path), **{k: v for k, v in options.items() if v is not None})
        self._loads[str(rid)] = (str(path), dict(options))

    def submit(self, task: str, *, inputs: dict | None = None, options: dict | None = None, n: int = 1,
               seed: int = 0, sampling: dict | None = None, project: str | None = None,
               prompt: str | None = None) -> str:
        """Queue a job; returns its id at once (it is sent as soon as the engine is ready)."""
        job = f"gui-{next(self._ids)}"
        kw = dict(inputs=inputs, options=options, n=int(n), seed=int(seed or 0), sampling=sampling,
                  project=project, prompt=prompt, job=job)
        self.jobs_in_flight.add(job)
        if self.ready:
            self.client.submit(task, **kw)
        else:
            self._deferred.append(("submit", (task,), kw))
        return job

    def cancel(self, job: str) -> None:
        for i, (kind, _args, kw) in enumerate(self._deferred):
            if kind == "submit" and kw.get("job") == job:
                del self._deferred[i]
                self._emit({"type": "finished", "job": job, "status": "cancelled"})
                return
        if self.ready:
            self.client.cancel(job)

    def request_status(self) -> None:
        if self.ready:
            self.client.send("status")

    def _flush_deferred(self) -> None:
        pending, self._deferred = self._deferred, []
        for kind, args, kw in pending:
            try:
                if kind == "load_model":
                    self.load_model(*args, **kw)
                else:
                    self.client.submit(*args, **kw)
            except Exception as exc:  # noqa: BLE001
                self._emit({"type": "error", "message": f"could not send {kind}: {exc}",
                            **({"job": kw["job"]} if kind == "submit" else {})})
                if kind == "submit":
                    self._emit({"type": "finished", "job": kw["job"], "status": "failed", "error": str(exc)})

    # -- GUI thread: drain the queues -------------------------------------------------------
    def _drain(self) -> None:
        for _ in range(200):
            try:
                ev = self._local.get_nowait()
            except queue.Empty:
                break
            self._local_event(ev)
        client = self.client
        if client is None:
            return
        for _ in range(500):  # bounded: a flood of events cannot freeze the window
            ev = client.next_event(timeout=0)
            if ev is None:
                return
            self._dispatch(ev)

    def _local_event(self, ev: dict) -> None:
        if ev.get("client") is not self.client:
            return  # a thread of a client that was replaced
        if ev["type"] == "__started__":
            self.backend = dict((ev["hello"] or {}).get("backend") or {})
            self._set_state("ready", "engine process: ready")
            self._flush_deferred()
        else:
            self._set_state("crashed", f"engine process: could not start: {ev['message']}")
            for kind, _args, kw in self._deferred:
                if kind == "submit":
                    self._emit({"type": "finished", "job": kw["job"], "status": "failed",
                                "error": f"the engine could not start: {ev['message']}"})
            self._deferred = []

    def _emit(self, ev: dict) -> None:
        self._dispatch(ev)

    def _dispatch(self, ev: dict) -> None:
        kind = ev.get("type")
        if ev.get("job") is not None:
            ev["job"] = str(ev["job"])
        if kind == "hello":
            self.backend = dict(ev.get("backend") or {})
            self.hello.emit(ev)
        elif kind == "model_loaded":
            req = self._loads.pop(str(ev.get("id")), None)
            path = str(ev.get("path"))
            same = self._loaded is not None and self._loaded[0] == path
            self._loaded = req or (path, self._loaded[1] if same else {})
            self.model = ev
            self.modelLoaded.emit(ev)
        elif kind == "load_progress":
            self.loadProgress.emit(ev)
        elif kind == "accepted":
            self.accepted.emit(ev)
        elif kind == "started":
            self.started.emit(ev)
        elif kind == "progress":
            self.progress.emit(ev)
        elif kind == "result":
            self.result.emit(ev)
        elif kind == "finished":
            self.jobs_in_flight.discard(ev.get("job"))
            self.finished.emit(ev)
        elif kind == "status":
            self.status.emit(ev)
        elif kind == "engine_exited":
            rc = ev.get("returncode")
            tail = [ln for ln in (ev.get("stderr_tail") or "").splitlines() if ln.strip()][-2:]
            why = f"engine process: the process stopped unexpectedly (exit code {rc})"
            if tail:
                why += " — " + " | ".join(tail)
            self.crashes += 1  # the client restarts on its own until max_restarts crashes
            restarting = getattr(self.client, "auto_restart", False) and \
                self.crashes <= getattr(self.client, "max_restarts", 0)
            self.model = None
            self._set_state("crashed", why + ("; restarting it…" if restarting else
                                              "; not restarted again (Models > Restart engine)"))
        elif kind == "engine_restarted":
            self.backend = dict((getattr(self.client, "hello", None) or {}).get("backend") or self.backend)
            self._set_state("ready", f"engine process: restarted after a crash ({ev.get('restarts')})")
            self._flush_deferred()
        elif kind == "error":
            rid = str(ev.get("id")) if ev.get("id") is not None else None
            if rid is not None and rid in self._loads:
                path, _opts = self._loads.pop(rid)
                self.modelLoadFailed.emit(path, str(ev.get("message")))
                if self._loaded is not None and self._loaded[0] != path:
                    prev_path, prev_opts = self._loaded
                    self.load_model(prev_path, **prev_opts)  # leave the previous model in place
                else:
                    self.model = None
            elif str(ev.get("message", "")).startswith("restart failed"):
                self._set_state("crashed", f"engine process: {ev.get('message')}")
            self.error.emit(ev)
        self.event.emit(ev)

    def _set_state(self, state: str, message: str) -> None:
        self.state = state
        self.state_message = message
        self.stateChanged.emit(state, message)


def _default_client_factory():
    from engine.process.client import EngineClient

    return EngineClient()
