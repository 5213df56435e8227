"""The native library's side: one-time backend initialisation and llama.cpp's log kept in memory
(so that a refused model is reported in llama.cpp's own words)."""

from __future__ import annotations

import collections
import ctypes
import threading
from pathlib import Path

_LOG_LOCK = threading.Lock()
_LOG_LINES: collections.deque[str] = collections.deque(maxlen=200)
_LOG_CB = None
_BACKEND_READY = False
_ECHO = [False]  # echo llama.cpp's log to stderr (RuntimeOptions.llama_log, set by the runtime)


def set_log_echo(on: bool) -> None:
    """Echo llama.cpp's log to stderr from now on (it is kept in memory either way)."""
    _ECHO[0] = bool(on)


def _llama():
    import llama_cpp

    return llama_cpp


def _install_log_capture(ll) -> None:
    """Keep llama.cpp's log in memory (errors are quoted in RuntimeLoadError); echo to stderr only
    after :func:`set_log_echo` (``RuntimeOptions.llama_log``, LOGOS_LLAMA_LOG=1 at the edge)."""
    global _LOG_CB
    if _LOG_CB is not None:
        return

    @ll.llama_log_callback
    def _cb(level, text, user_data):  # noqa: ARG001
        try:
            s = text.decode("utf-8", errors="replace")
        except Exception:  # noqa: BLE001
            return
        with _LOG_LOCK:
            _LOG_LINES.append(s)
        if _ECHO[0]:
            import sys

            sys.stderr.write(s)

    _LOG_CB = _cb
    ll.llama_log_set(_cb, ctypes.c_void_p(0))


def recent_log(n: int = 20) -> list[str]:
    with _LOG_LOCK:
        lines = "".join(_LOG_LINES).splitlines()
    return [ln for ln in lines if ln.strip()][-n:]


def _backend_init(ll) -> None:
    global _BACKEND_READY
    if not _BACKEND_READY:
        _install_log_capture(ll)
        ll.llama_backend_init()
        _BACKEND_READY = True


def _llama_error_lines() -> str:
    lines = [ln.strip() for ln in recent_log(60)
             if any(w in ln.lower() for w in ("error", "unknown", "failed", "invalid", "unsupported"))]
    return "; ".join(lines[-3:])


def preload() -> bool:
    """Load llama.cpp's shared libraries before numpy and friends are imported.

    Seen on an H100 with a CUDA build of llama-cpp-python 0.3.36: when numpy was imported before
    llama_cpp, the first model load crashed (SIGSEGV in llama_model::print_info, inside C++
    stream code resolved from libggml-cuda). Importing llama_cpp first avoids it. Processes that
    run models (the engine process, `logos generate`, `logos models`) call this first thing.
    """
    try:
        import llama_cpp  # noqa: F401
    except Exception:  # noqa: BLE001 - reported later by backend_info() with its reason
        return False
    return True


def tokenize(ll, vocab, text: str, add_special: bool, parse_special: bool) -> list[int]:
    """Token ids of ``text`` through llama.cpp, retrying once with the size it asks for."""
    data = text.encode("utf-8")
    cap = len(data) + 8
    buf = (ll.llama_token * cap)()
    n = ll.llama_tokenize(vocab, data, len(data), buf, cap, add_special, parse_special)
    if n < 0:
        cap = -n
        buf = (ll.llama_token * cap)()
        n = ll.llama_tokenize(vocab, data, len(data), buf, cap, add_special, parse_special)
    return list(buf[:n])


class NativeHandles:
    """Owns a llama.cpp model, context and batch (``_model``, ``_ctx``, ``_batch`` through ``_ll``)
    and frees them on ``close()`` or at the end of a ``with`` block, not at garbage collection."""

    _ll = None
    _model = None
    _ctx = None
    _batch = None

    def close(self) -> None:
        ll = self._ll
        if ll is None:
            return
        if self._batch is not None:
            ll.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            ll.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            ll.llama_model_free(self._model)
            self._model = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AbortFlag:
    """A cancel flag that llama.cpp checks between graph nodes WITHOUT calling into Python.

    A Python abort callback takes the GIL dozens of times per ``llama_decode``; under CPU load
    that made steps hundreds of times slower. Instead the callback is ggml's own
    ``ggml_is_empty(const struct ggml_tensor *)`` (signature ``bool (*)(void *)``, as an abort
    callback needs) pointed at a small structure laid out like the head of ``struct ggml_tensor``
    (``type``, ``buffer``, ``ne[4]``): all dimensions 1 = go on, ``ne[0] = 0`` = abort.
    ``set``/``clear``/``is_set`` mirror ``threading.Event``; ``set`` may come from any thread
    (one aligned 64-bit store). ``native`` is False when ggml-base could not be loaded; the runtime
    then checks for cancellation between steps only."""

    class _Head(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4)]

    def __init__(self, ll) -> None:
        self._head = self._Head(0, None, (ctypes.c_int64 * 4)(1, 1, 1, 1))
        self.data = ctypes.cast(ctypes.pointer(self._head), ctypes.c_void_p)
        self.callback = None
        try:
            from llama_cpp import _ctypes_extensions as ext

            lib = ext.load_shared_library("ggml-base", Path(ll.__file__).parent / "lib")
            fn = lib.ggml_is_empty
            self.callback = ll.ggml_abort_callback(ctypes.cast(fn, ctypes.c_void_p).value)
        except (OSError, AttributeError, RuntimeError, FileNotFoundError):
            self.callback = None

    @property
    def native(self) -> bool:
        return self.callback is not None

    def set(self) -> None:
        self._head.ne[0] = 0

    def clear(self) -> None:
        self._head.ne[0] = 1

    def is_set(self) -> bool:
        return self._head.ne[0] == 0

    def word_address(self) -> int:
        """The address of the int64 that is 0 while the flag is set (read by the C step loop)."""
        return ctypes.addressof(self._head) + self._Head.ne.offset

    def install(self, ll, ctx) -> bool:
        """Attach to a context; False when only between-step checks are possible."""
        if self.callback is None:
            return False
        ll.llama_set_abort_callback(ctx, self.callback, self.data)
        return True
