"""One LOGOS Desktop window per user: a second launch hands its files to the running window.

Opening a ``.pdb`` or a ``.logos`` project from the file manager starts ``logos-desktop FILE``.
When a window is already open, that launch connects to it over a local socket
(``QLocalServer``/``QLocalSocket``: a Unix socket in ``$XDG_RUNTIME_DIR`` or the temp folder,
readable by this user only; a named pipe on Windows), sends the absolute paths, waits for the
window's answer and exits 0; the running window opens the files through its usual open code and
comes to the front. Without a running window the launch becomes the one that listens.

The socket is keyed by the user and the data directory (``LOGOS_DATA_DIR``), so a launch with
another data directory (the tests each have their own) never joins a window of the user's.
``--new-window``, ``LOGOS_NEW_WINDOW=1`` and ``--screenshot`` runs neither join nor listen.

The message is one line of JSON, ``{"app": "logos-desktop", "protocol": 1, "paths": [...]}``,
answered by ``ok PID``. On macOS, files opened from the Finder arrive as ``QFileOpenEvent`` s
(untested there); :class:`Application` and :meth:`SingleInstance.watch_file_open_events`
hand them to the same handler.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, QDir, QEvent, QLockFile, QObject, QTimer, QUrl
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication

APP = "logos-desktop"
PROTOCOL = 1
MAX_MESSAGE = 1 << 20          # bytes; a longer message is refused
CONNECT_TIMEOUT_MS = 1000
ANSWER_TIMEOUT_MS = 10000      # the running window answers from its event loop
LOCK_TIMEOUT_MS = 5000

Handler = Callable[[list[str]], None]


def new_window_requested() -> bool:
    """``LOGOS_NEW_WINDOW`` set to anything but 0/empty: start a separate window."""
    return os.environ.get("LOGOS_NEW_WINDOW", "").strip().lower() not in ("", "0", "false", "no", "off")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in the environment or the password database
        return str(os.getuid()) if hasattr(os, "getuid") else "user"


def server_name(data_dir: Path | None = None) -> str:
    """The socket's name for this user and data directory."""
    if data_dir is None:
        from engine import paths

        data_dir = paths.data_dir()
    key = f"{_user()}\0{Path(data_dir).expanduser().resolve()}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    if sys.platform == "win32":
        return f"{APP}-{digest}"  # a named pipe; the user is part of the digest
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        full = os.path.join(runtime, f"{APP}-{digest}.sock")
        if len(full.encode()) < 100:  # sun_path holds 108 bytes
            return full
    return f"{APP}-{os.getuid()}-{digest}"  # Qt puts it in the temp folder


def absolute_paths(paths: Iterable[str], cwd: str | None = None) -> list[str]:
    """Paths as the running window must see them: absolute, ``file://`` URLs made local."""
    cwd = cwd or os.getcwd()
    out = []
    for p in paths:
        p = str(p)
        if p.startswith("file:"):
            p = QUrl(p).toLocalFile() or p
        out.append(os.path.normpath(os.path.join(cwd, os.path.expanduser(p))))
    return out


class SingleInstance(QObject):
    """The client side (:meth:`hand_over`) and the server side (:meth:`listen`) in one object."""

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self.server: QLocalServer | None = None
        self.answer = ""               # what the running window answered (hand_over)
        self._handler: Handler | None = None
        self._pending: list[list[str]] = []
        self._buffers: dict[QLocalSocket, QByteArray] = {}

    # -- client ------------------------------------------------------------------------------
    def _lock_path(self) -> str:
        if os.path.isabs(self.name):
            return self.name + ".lock"
        return os.path.join(QDir.tempPath(), self.name + ".lock")

    def start(self, paths: list[str], join: bool = True) -> str:
        """Hand ``paths`` to a running window, else listen. Returns ``"handed"`` (this launch
        should exit 0), ``"listening"`` (this launch is the window), or ``"alone"`` (a window
        exists but did not answer, or the socket could not be made: open a window that does not
        listen; the reason is printed). ``join=False``: never hand over; listen when no window does."""
        lock = QLockFile(self._lock_path())
        lock.setStaleLockTime(30000)
        locked = lock.tryLock(LOCK_TIMEOUT_MS)  # two launches at once: one decides at a time
        try:
            if not join:
                return "alone" if self.someone_listens() else ("listening" if self.listen() else "alone")
            result = self.hand_over(paths)
            if result is True:
                return "handed"
            if result is None:  # a window holds the socket but did not answer
                return "alone"
            return "listening" if self.listen() else "alone"
        finally:
            if locked:
                lock.unlock()

    def someone_listens(self) -> bool:
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        sock.abort()
        return True

    def hand_over(self, paths: list[str]) -> bool | None:
        """True: the running window took the paths; False: no window listens; None: one is
        there but did not answer in time."""
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        message = json.dumps({"app": APP, "protocol": PROTOCOL, "paths": list(paths)}) + "\n"
        sock.write(QByteArray(message.encode("utf-8", "surrogateescape")))
        sock.flush()
        data = b""
        while b"\n" not in data:
            if not sock.waitForReadyRead(ANSWER_TIMEOUT_MS):
                print(f"logos-desktop: the running LOGOS Desktop window did not answer within "
                      f"{ANSWER_TIMEOUT_MS // 1000} s ({sock.errorString()}); opening a separate window",
                      file=sys.stderr)
                sock.abort()
                return None
            data += bytes(sock.readAll().data())
        self.answer = data.split(b"\n", 1)[0].decode("utf-8", "replace")
        sock.disconnectFromServer()
        return self.answer.startswith("ok")

    # -- server ------------------------------------------------------------------------------
    def listen(self) -> bool:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # a socket left by a window that crashed: nobody answered hand_over, so remove it
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                print(f"logos-desktop: files opened later will start new windows: cannot listen on "
                      f"{self.name}: {server.errorString()}", file=sys.stderr)
                return False
        server.newConnection.connect(self._accept)
        self.server = server
        return True

    def set_handler(self, handler: Handler) -> None:
        """``handler(paths)`` opens the files; what arrived before it was set is handed over now."""
        self._handler = handler
        pending, self._pending = self._pending, []
        for paths in pending:
            QTimer.singleShot(0, lambda paths=paths: handler(paths))

    def _deliver(self, paths: list[str]) -> None:
        if self._handler is None:
            self._pending.append(paths)
        else:
            # after this event: the answer goes out before the (possibly long) loading starts
            QTimer.singleShot(0, lambda: self._handler(paths))

    def _accept(self) -> None:
        while self.server is not None and self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            self._buffers[sock] = QByteArray()
            sock.readyRead.connect(lambda sock=sock: self._read(sock))
            sock.disconnected.connect(lambda sock=sock: self._drop(sock))
            QTimer.singleShot(ANSWER_TIMEOUT_MS, lambda sock=sock: self._drop(sock, abort=True))

    def _drop(self, sock: QLocalSocket, abort: bool = False) -> None:
        if self._buffers.pop(sock, None) is not None:
            if abort:
                sock.abort()
            sock.deleteLater()

    def _read(self, sock: QLocalSocket) -> None:
        buf = self._buffers.get(sock)
        if buf is None:
            return
        buf.append(sock.readAll())
        raw = bytes(buf.data())
        if b"\n" not in raw:
            if len(raw) > MAX_MESSAGE:
                self._reply(sock, "error: message too long")
            return
        line = raw.split(b"\n", 1)[0]
        try:
            msg = json.loads(line.decode("utf-8", "surrogateescape"))
            if not isinstance(msg, dict) or msg.get("app") != APP:
                raise ValueError("not a LOGOS Desktop message")
            if msg.get("protocol") != PROTOCOL:
                raise ValueError(f"protocol {msg.get('protocol')!r}, this window speaks {PROTOCOL}")
            paths = msg.get("paths")
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ValueError("'paths' must be a list of strings")
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            print(f"logos-desktop: ignored a message from another launch: {exc}", file=sys.stderr)
            self._reply(sock, f"error: {exc}")
            return
        self._reply(sock, f"ok {os.getpid()}")
        self._deliver(paths)

    def _reply(self, sock: QLocalSocket, text: str) -> None:
        sock.write(QByteArray((text.replace("\n", " ") + "\n").encode()))
        sock.flush()
        sock.disconnectFromServer()

    # -- macOS: Finder's "open document" events (untested) ------------------------------------
    def watch_file_open_events(self, app) -> None:
        """Files opened from the Finder come as QFileOpenEvent on the application, not in argv."""
        if isinstance(app, Application):
            app.on_file_open = lambda path: self._deliver([path])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()  # removes the socket file
            self.server = None


class Application(QApplication):
    """The QApplication, plus macOS's open-document events (QFileOpenEvent, sent to the
    application object only; untested on macOS) passed to ``on_file_open(path)``."""

    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv)
        self.on_file_open: Callable[[str], None] | None = None

    def event(self, ev) -> bool:
        if ev.type() == QEvent.Type.FileOpen and self.on_file_open is not None:
            path = ev.file() or ev.url().toLocalFile()
            if path:
                self.on_file_open(path)
                return True
        return super().event(ev)
