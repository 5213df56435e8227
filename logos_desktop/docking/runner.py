"""``logos dock … --events`` in its own process, its JSON lines turned into Qt signals.

The GUI never docks in its own process: ``DockingProcess`` starts ``python -m engine dock`` with
``QProcess`` in a new session (its own process group, so its worker processes can be stopped with
it), reads one JSON event per line from stdout and emits it. Cancel sends SIGINT to the group (the
command stops its workers and marks the docking cancelled), then SIGKILL to whatever is left after
``CANCEL_GRACE_MS``: nothing runs on a second after Cancel.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

CANCEL_GRACE_MS = 600
STDERR_KEEP = 8000  # characters of the command's stderr kept to explain a failure


@dataclass
class DockSettings:
    """What the user sets once (Docking settings): search effort, poses, seed, where it runs."""

    exhaustiveness: int = 8
    poses: int = 5
    seed: int = 0
    cpus: int | None = None  # None: the command's default (every usable CPU)
    scheduler: str = ""  # a Dask scheduler address (tcp://HOST:8786); empty: local worker processes
    redock: bool = True  # dock the reference ligand too: its score is shown beside the candidates'


@dataclass
class DockRequest:
    """One ``logos dock`` command: the receptor, the pocket, which stored results, the settings."""

    receptor: str  # the structure file (PDB or mmCIF) the ligand task used
    project: str
    ligand: str | None = None  # residue name of the reference ligand in the receptor file
    chain: str | None = None
    resnum: int | None = None
    pocket: list[str] = field(default_factory=list)  # "A:25", ... (residues chosen by hand)
    reference: str | None = None  # a ligand file beside a protein without its ligand
    results: list[int] = field(default_factory=list)
    run: int | None = None  # dock the valid results of this run
    redock: bool = True  # dock the reference ligand too (its score sits beside the candidates')
    settings: DockSettings = field(default_factory=DockSettings)
    label: str = ""  # what the job is called in the queue

    @property
    def total(self) -> int:
        return len(self.results)

    def arguments(self) -> list[str]:
        """The arguments after ``logos`` (the same the command line takes)."""
        args = ["dock", self.receptor]
        if self.ligand:
            args += ["--ligand", self.ligand]
            if self.chain:
                args += ["--chain", self.chain]
            if self.resnum is not None:
                args += ["--resnum", str(self.resnum)]
        elif self.pocket:
            args += ["--pocket", ",".join(self.pocket)]
        elif self.reference:
            args += ["--reference", self.reference]
        if self.results:
            args += ["--results", ",".join(str(int(i)) for i in self.results)]
        if self.run is not None:
            args += ["--run", str(int(self.run))]
        if self.redock and (self.ligand or self.reference):  # residues alone name no reference ligand
            args.append("--redock")
        s = self.settings
        args += ["--exhaustiveness", str(int(s.exhaustiveness)), "--poses", str(int(s.poses)),
                 "--seed", str(int(s.seed))]
        if s.cpus:
            args += ["--cpus", str(int(s.cpus))]
        if s.scheduler.strip():
            args += ["--scheduler", s.scheduler.strip()]
        args += ["--project", self.project, "--events"]
        return args

    def command_line(self) -> str:
        return "logos " + " ".join(shlex.quote(a) for a in self.arguments())


class DockingProcess(QObject):
    """One running ``logos dock`` command. Emits every event it prints; ``ended`` once, last."""

    event = Signal(dict)  # every JSON event, as printed
    ended = Signal(str, str)  # status (finished | cancelled | failed), reason ("" when finished)

    def __init__(self, request: DockRequest, parent: QObject | None = None,
                 program: list[str] | None = None) -> None:
        super().__init__(parent)
        self.request = request
        # the command: this interpreter running the engine package (what the `logos` script runs)
        self.program = program or [sys.executable, "-m", "engine"]
        self.process: QProcess | None = None
        self.status: str | None = None  # set from the "finished" event, or by cancel/failure
        self.events: list[dict] = []
        self._out = b""
        self._err = b""
        self._cancelled = False
        self._ended = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill_group)
        self.pid: int | None = None

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        p = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        p.setProcessEnvironment(env)
        if os.name == "posix":
            params = QProcess.UnixProcessParameters()
            params.flags = QProcess.UnixProcessFlag.CreateNewSession
            p.setUnixProcessParameters(params)
        p.readyReadStandardOutput.connect(self._read_out)
        p.readyReadStandardError.connect(self._read_err)
        p.finished.connect(self._finished)
        p.errorOccurred.connect(self._error)
        self.process = p
        p.start(self.program[0], [*self.program[1:], *self.request.arguments()])
        if p.waitForStarted(10000):
            self.pid = int(p.processId()) or None

    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        """Stop now: SIGINT to the command and its workers, SIGKILL after the grace period."""
        if self._ended:
            return
        self._cancelled = True
        if not self.running():
            self._end("cancelled", "")
            return
        self._signal_group(signal.SIGINT if os.name == "posix" else None)
        self._kill_timer.start(CANCEL_GRACE_MS)

    def _signal_group(self, sig) -> None:
        if os.name == "posix" and self.pid:
            try:
                os.killpg(self.pid, sig)
                return
            except (ProcessLookupError, PermissionError):
                return
        if self.process is not None:
            self.process.kill()

    def _kill_group(self) -> None:
        self._signal_group(signal.SIGKILL if os.name == "posix" else None)

    def wait(self, ms: int = 5000) -> bool:
        return self.process is None or self.process.waitForFinished(ms)

    # -- output ---------------------------------------------------------------------------------
    def _read_out(self) -> None:
        self._out += bytes(self.process.readAllStandardOutput())
        *lines, self._out = self._out.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace"))

    def _read_err(self) -> None:
        self._err = (self._err + bytes(self.process.readAllStandardError()))[-STDERR_KEEP:]

    def _line(self, line: str) -> None:
        line = line.strip()
        if not line.startswith("{"):
            return  # not an event (a library printing on stdout): ignored
        try:
            ev = json.loads(line)
        except ValueError:
            return
        if not isinstance(ev, dict) or "type" not in ev:
            return
        if ev["type"] == "finished":
            self.status = str(ev.get("status") or "finished")
        self.events.append(ev)
        self.event.emit(ev)

    def stderr_text(self) -> str:
        return self._err.decode("utf-8", "replace")

    def reason(self) -> str:
        """The command's own last words (``logos dock: error: …``), else the last stderr line."""
        lines = [ln.strip() for ln in self.stderr_text().splitlines() if ln.strip()]
        for ln in reversed(lines):
            if ln.startswith("logos") and "error" in ln:
                return ln
        return lines[-1] if lines else ""

    def _error(self, err) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self._end("failed", f"the docking command could not start ({self.process.errorString()})")

    def _finished(self, code: int, _status) -> None:
        self._kill_timer.stop()
        self._read_out()
        self._read_err()
        if self._out.strip():
            self._line(self._out.decode("utf-8", "replace"))
            self._out = b""
        if self._cancelled:
            self._signal_group(signal.SIGKILL if os.name == "posix" else None)  # no worker left behind
            self._end("cancelled", "")
        elif self.status is not None and code == 0:
            self._end(self.status, "")
        else:
            why = self.reason() or f"exit code {code}"
            self._end("failed", why)

    def _end(self, status: str, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.status = status
        self.ended.emit(status, reason)
