"""The engine process: one model, one job queue, newline-delimited JSON over stdio.

A reader thread takes requests from stdin; ``cancel``, ``status`` and ``shutdown`` are answered at
once, everything that touches the model (``load_model``, ``submit``, ``unload``) goes through one
queue, taken in order by one worker thread. On a local model (``Runtime.shares_slots``) the worker
hands each job to a thread of its own (at most ``slots.MAX_JOBS`` at once), so that jobs queued
together run in one set of slots (:mod:`engine.runtime.slots`: a job joins the running jobs' slots
at their next step when it can share them, else it waits for them, as before) and each job's
events and ``finished`` come when that job ends; a ``load_model`` or ``unload`` waits for the jobs
before it. A remote model runs one job at a time on the worker. A bad
request gets an error event and the process stays up. A user's error (a bad request, a model file
refused, a job's input refused: the engine's own error types) is answered with its message and
logged on stderr as one line; a traceback is written only for what is a bug in the engine (any
other exception). stdout carries only protocol lines: the
original stdout is kept for events and file descriptor 1 is pointed at stderr, so nothing native
(llama.cpp, RDKit) can print into the protocol.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback

from engine.process.protocol import PROTOCOL_VERSION, ProtocolError, dumps, event, max_line, parse_request
from engine.runtime.planner import PlanError

_STOP = object()
DEFAULT_MAX_QUEUE = 64  # requests waiting for the worker (jobs, loads, unloads); LOGOS_ENGINE_MAX_QUEUE
_CHUNK = 1 << 16
_LOG_MAX = 500  # characters of one stderr log line


class NoModelLoaded(RuntimeError):
    """A job sent before any model was loaded (the user's error)."""


def log_line(text: str) -> None:
    """One line on stderr for the engine's log (newlines folded, length capped)."""
    line = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    if len(line) > _LOG_MAX:
        line = line[:_LOG_MAX - 3] + "..."
    try:
        sys.stderr.write(f"[engine] {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _max_jobs() -> int:
    """Jobs handed to a local runtime at once (they share its slots or wait in its queue)."""
    from engine.runtime.slots import MAX_JOBS

    return MAX_JOBS


def max_queue() -> int:
    try:
        value = int(os.environ.get("LOGOS_ENGINE_MAX_QUEUE", DEFAULT_MAX_QUEUE))
    except ValueError:
        return DEFAULT_MAX_QUEUE
    return value if value > 0 else DEFAULT_MAX_QUEUE


class LineTooLong:
    """What the line reader yields for a line over the cap (its bytes are read and dropped)."""

    def __init__(self, size: int) -> None:
        self.size = size


def read_lines(stream, cap: int):
    """Lines of a binary stream as bytes (newline stripped), never holding more than ``cap`` bytes
    of one line: a longer line is read to its end in chunks, dropped, and reported as LineTooLong."""
    while True:
        line = stream.readline(cap + 1)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1]
            continue
        if len(line) <= cap:  # the last line, without a newline
            yield line
            return
        size = len(line)
        while True:  # skip the rest of the long line
            chunk = stream.readline(_CHUNK)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        yield LineTooLong(size - (1 if chunk.endswith(b"\n") else 0) if chunk else size)
        if not chunk:
            return


class EngineServer:
    def __init__(self, out, *, max_queue_size: int | None = None, max_line_bytes: int | None = None) -> None:
        self.out = out
        self.max_queue = max_queue_size or max_queue()
        self.max_line = max_line_bytes or max_line()
        self._waiting = 0  # requests on the worker's queue, not yet taken
        self._out_lock = threading.Lock()
        self.runtime = None
        self.queue: queue.Queue = queue.Queue()
        self._pending: dict = {}  # job id -> cancel event (queued or running)
        self._running: list = []  # job ids handed to the runtime (running, or waiting in its slot queue)
        self._job_threads: list[threading.Thread] = []
        self._job_room = threading.Semaphore(_max_jobs())
        self._queued: list = []
        self._lock = threading.Lock()
        self._shutdown = threading.Event()

    # ---------------------------------------------------------------- output
    def emit(self, ev: dict) -> None:
        line = dumps(ev)
        with self._out_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._shutdown.set()

    def error(self, message: str, rid=None, job=None) -> None:
        ev = event("error", message=message)
        if rid is not None:
            ev["id"] = rid
        if job is not None:
            ev["job"] = job
        self.emit(ev)

    # ---------------------------------------------------------------- requests
    def _enqueue(self, kind: str, rid) -> bool:
        """Count a request onto the worker's queue (call with self._lock held); False when full."""
        if self._waiting >= self.max_queue:
            return False
        self._waiting += 1
        return True

    def _busy(self, kind: str, rid) -> None:
        """The queue is full: an error event, and for a job its ``finished`` (failed) so a client
        waiting on that job id is answered too."""
        message = (f"busy: {self.max_queue} requests are already waiting (the limit, "
                   f"LOGOS_ENGINE_MAX_QUEUE); this {kind} was not queued: wait for a job to finish "
                   "or cancel one, then send it again")
        self.error(message, rid=rid, job=rid if kind == "submit" else None)
        if kind == "submit":
            self.emit(event("finished", job=rid, status="failed", error=message, summary=None, stats=None))

    def handle_line(self, line: str | bytes) -> None:
        line = line.strip()
        if not line:
            return
        try:
            req = parse_request(line)
        except ProtocolError as exc:
            rid = exc.request_id
            log_line(f"request {rid!r} refused: {exc}" if rid is not None else f"request refused: {exc}")
            if exc.kind == "submit" and rid is not None:
                # a client waiting on this job id gets its end too (unless the id is a live job's)
                with self._lock:
                    live = rid in self._pending
                self.error(str(exc), rid=rid, job=None if live else rid)
                if not live:
                    self.emit(event("finished", job=rid, status="failed", error=str(exc), summary=None,
                                    stats=None))
            else:
                self.error(str(exc), rid=rid)
            return
        kind = req["type"]
        rid = req.get("id")
        if kind == "cancel":
            self.cancel(req["job"], rid)
        elif kind == "status":
            self.emit(self.status_event(rid))
        elif kind == "tasks":
            from engine.tasks.registry import schemas

            self.emit(event("tasks", id=rid, tasks=schemas()))
        elif kind == "shutdown":
            self.shutdown()
        elif kind == "submit":
            if rid is None:
                self.error("submit: an id is needed (it becomes the job id)")
                return
            with self._lock:
                if rid in self._pending:
                    self.error(f"submit: job id {rid!r} is already in use", rid=rid)
                    return
                if not self._enqueue(kind, rid):
                    busy = True
                else:
                    busy = False
                    cancel = threading.Event()
                    self._pending[rid] = cancel
                    self._queued.append(rid)
                    position = len(self._queued) + len(self._running)
            if busy:
                self._busy(kind, rid)
                return
            self.emit(event("accepted", id=rid, job=rid, position=position))
            self.queue.put((req, cancel))
        else:  # load_model, unload
            with self._lock:
                ok = self._enqueue(kind, rid)
            if not ok:
                self._busy(kind, rid)
                return
            self.queue.put((req, None))

    def cancel(self, job, rid=None) -> None:
        with self._lock:
            ev = self._pending.get(job)
            queued = job in self._queued
        if ev is None:
            self.error(f"cancel: no queued or running job {job!r}", rid=rid, job=job)
            return
        ev.set()
        if queued:  # it will be skipped by the worker; say so now
            with self._lock:
                if job in self._queued:
                    self._queued.remove(job)
                    self._pending.pop(job, None)
            self.emit(event("finished", job=job, status="cancelled", summary=None, stats=None))

    def status_event(self, rid=None) -> dict:
        with self._lock:
            running, queued = list(self._running), list(self._queued)
        model = self.runtime.describe() if self.runtime is not None else None
        return event("status", id=rid, model=model, running=running[0] if running else None,
                     running_jobs=running, queue=queued, protocol=PROTOCOL_VERSION, pid=os.getpid())

    def shutdown(self) -> None:
        self._shutdown.set()
        with self._lock:
            for ev in self._pending.values():
                ev.set()
        self.queue.put(_STOP)

    # ---------------------------------------------------------------- worker
    def worker(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                self._join_jobs(10.0)
                break
            with self._lock:
                self._waiting -= 1
            req, cancel = item
            kind = req["type"]
            if kind == "submit" and getattr(self.runtime, "shares_slots", False):
                # its own thread: it joins the running jobs' slots, or waits for them in the runtime
                self._job_room.acquire()  # at most _max_jobs() at once; the next waits here, in order
                t = threading.Thread(target=self._job_thread, args=(req, cancel), name=f"engine-job-{req.get('id')}",
                                     daemon=True)
                with self._lock:
                    self._job_threads = [j for j in self._job_threads if j.is_alive()] + [t]
                t.start()
                continue
            if kind != "submit":
                self._join_jobs()  # a load or unload comes after the jobs sent before it
            self._handle(req, cancel)

    def _job_thread(self, req: dict, cancel) -> None:
        try:
            self._handle(req, cancel)
        finally:
            self._job_room.release()

    def _join_jobs(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._job_threads)
        for t in threads:
            t.join(timeout)
        with self._lock:
            self._job_threads = [j for j in self._job_threads if j.is_alive()]

    def _handle(self, req: dict, cancel) -> None:
        """One request on the worker (or, for a job, on its own thread); every failure becomes an
        error event (and, for a job, its failed ``finished``)."""
        kind = req["type"]
        rid = req.get("id")
        finished = None
        try:
            if kind == "load_model":
                self.load_model(req)
            elif kind == "unload":
                self.unload(rid)
            elif kind == "submit":
                finished = self.submit(req, cancel)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
            user = _is_user_error(exc)
            message = str(exc) if user else f"{type(exc).__name__}: {exc}"
            if getattr(exc, "still_loaded", None):
                message += f" (the model loaded before, {exc.still_loaded}, stays loaded)"
            if user:
                log_line(f"{kind} {rid!r}: {message}")
            else:  # a bug in the engine: its traceback is what finds it
                sys.stderr.write(traceback.format_exc())
            self.error(message, rid=rid, job=rid if kind == "submit" else None)
            if kind == "submit":
                finished = event("finished", job=rid, status="failed", error=message)
        finally:
            if kind == "submit":
                with self._lock:
                    self._pending.pop(rid, None)
                    if rid in self._running:
                        self._running.remove(rid)
        if finished is not None:
            self.emit(finished)

    def load_model(self, req: dict) -> None:
        """Load the new model BEFORE freeing the old one: a file that fails to load leaves the
        loaded model in place (the error says so). Only when the new model does not fit next to
        the old one is the old one freed first."""
        rid = req.get("id")
        old = self.runtime
        try:
            rt = self._open_model(req, rid)
        except PlanError:
            if old is None:
                raise
            self.runtime = None
            old.close()
            old = None
            rt = self._open_model(req, rid)  # raises again if it does not fit on its own either
        except Exception as exc:
            if old is not None:
                exc.still_loaded = str(getattr(old, "path", "") or "the previous model")
            raise
        self.runtime = rt
        if old is not None:
            old.close()
        d = rt.describe()
        self.emit(event("model_loaded", id=rid, path=d.get("path"), backend=d.get("backend"),
                        n_gpu_layers=d.get("n_gpu_layers"), plan=d.get("plan"),
                        architecture=d.get("architecture"), n_vocab=d.get("n_vocab"), n_ctx=d.get("n_ctx"),
                        card=_card(d.get("path"))))

    def _open_model(self, req: dict, rid):
        if req.get("url"):
            from engine.runtime.remote import RemoteRuntime

            from engine.runtime.remote import max_response_from

            return RemoteRuntime(req["url"], model=req.get("model"), api_key=req.get("api_key"),
                                 max_response_bytes=max_response_from(os.environ))
        from engine.runtime.llama import Runtime
        from engine.runtime.options import RuntimeOptions

        # said before llama.cpp touches the file: a client that sees the process die now knows
        # this load is what it died of (and does not send it again)
        self.emit(event("load_progress", id=rid, fraction=0.0))
        last = [0.0]

        def progress(frac: float) -> None:
            if frac - last[0] >= 0.1 or frac >= 1.0:
                last[0] = frac
                self.emit(event("load_progress", id=rid, fraction=round(frac, 3)))

        return Runtime.load(req["path"], n_gpu_layers=req.get("n_gpu_layers", "auto"),
                            n_ctx=req.get("n_ctx"), n_threads=req.get("n_threads"),
                            n_seq_max=req.get("n_seq_max"), progress=progress, abort=self._shutdown,
                            options=RuntimeOptions.from_mapping(os.environ))  # the environment is read here, at the edge

    def unload(self, rid) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        self.emit(event("unloaded", id=rid))

    def submit(self, req: dict, cancel: threading.Event) -> dict | None:
        """Run a job; returns its finished event (sent by the worker once the job is off the books)."""
        from engine.process.jobs import run_job

        rid = req["id"]
        with self._lock:
            if rid in self._queued:
                self._queued.remove(rid)
            elif cancel.is_set():  # cancelled while queued: finished already sent
                return None
            self._running.append(rid)
        if cancel.is_set():
            return event("finished", job=rid, status="cancelled", summary=None, stats=None)
        if self.runtime is None:
            raise NoModelLoaded("no model loaded: send load_model first")
        return run_job(self.runtime, req, self.emit, cancel)

    # ---------------------------------------------------------------- main loop
    def serve(self, stdin) -> int:
        from engine import __version__
        from engine.runtime.backend import backend_info

        worker = threading.Thread(target=self.worker, name="engine-worker", daemon=True)
        worker.start()
        info = backend_info()
        self.emit(event("hello", protocol=PROTOCOL_VERSION, version=__version__, pid=os.getpid(),
                        backend=info.as_dict()))
        reader = threading.Thread(target=self._read, args=(stdin,), name="engine-reader", daemon=True)
        reader.start()
        self._shutdown.wait()
        self.queue.put(_STOP)
        worker.join(timeout=10)
        if self.runtime is not None:
            try:
                self.runtime.close()
            except Exception:  # noqa: BLE001
                pass
        self.emit(event("bye"))
        return 0

    def _read(self, stdin) -> None:
        lines = read_lines(stdin, self.max_line) if _is_binary(stdin) else stdin
        for line in lines:
            if self._shutdown.is_set():
                break
            try:
                if isinstance(line, LineTooLong):
                    self.error(f"request line too long ({line.size} bytes; at most {self.max_line}, "
                               "LOGOS_ENGINE_MAX_LINE): ignored")
                    continue
                if isinstance(line, bytes):
                    line = line.decode("utf-8", errors="replace")
                self.handle_line(line)
            except Exception as exc:  # noqa: BLE001 - the reader must never die
                sys.stderr.write(traceback.format_exc())
                self.error(f"internal error: {type(exc).__name__}: {exc}")
        self.shutdown()  # stdin closed: the client is gone


def _is_binary(stream) -> bool:
    import io

    return isinstance(stream, (io.RawIOBase, io.BufferedIOBase)) or "b" in getattr(stream, "mode", "")


def _is_user_error(exc: Exception) -> bool:
    """An error the engine raises on purpose about what it was given (its own error types: a model
    file refused, a plan that does not fit, a task input, a project, a remote server...), as
    opposed to a bug (a built-in exception such as TypeError, KeyError or AssertionError)."""
    if isinstance(exc, (AssertionError, NameError, AttributeError, TypeError, LookupError)) \
            and type(exc).__module__ == "builtins":
        return False
    return any(cls.__module__.split(".", 1)[0] == "engine" for cls in type(exc).__mro__)


def main() -> int:
    """Run the engine on this process's stdio (``logos engine --stdio``)."""
    proto_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # native prints go to stderr
    sys.stdout = sys.stderr
    server = EngineServer(proto_out)
    # binary: the reader caps the length of a line before decoding it
    stdin = open(sys.stdin.fileno(), "rb", buffering=_CHUNK, closefd=False)
    return server.serve(stdin)


def _card(path) -> dict:
    """The model's card per task (engine.models.registry.card_event): trained or not, data,
    measured figures."""
    from engine.models.registry import card_event

    return card_event(path)
