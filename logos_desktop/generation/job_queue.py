"""The job queue: one row per job with n of N, its rate (tokens/s for generation, ligands/min for
docking), ETA, Cancel and the failure reason.

``JobQueue`` is the state (fed by engine events through the bridge); ``QtJobQueue`` draws it.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

ACTIVE = ("queued", "running", "cancelling")


@dataclass
class Job:
    job: str
    task: str
    total: int
    command: str = ""  # the equivalent ``logos generate ...`` line
    status: str = "queued"  # queued | running | cancelling | finished | failed | cancelled
    done: int = 0
    tokens_per_s: float | None = None
    eta_s: float | None = None
    error: str | None = None
    valid: int = 0
    results: int = 0
    submitted: float = field(default_factory=time.time)
    kind: str = "generate"  # "generate": a job of the engine process; "dock": a `logos dock` process
    ligands_per_minute: float | None = None
    failed: int = 0  # docking: ligands that could not be docked
    info: str = ""  # what the job reported for the user (docking: how the receptor was prepared)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def progress_text(self) -> str:
        if self.kind == "dock":
            return self._docking_text()
        parts = [f"{self.done} of {self.total}"]
        if self.tokens_per_s is not None and self.status == "running":
            parts.append(f"{self.tokens_per_s:,.0f} tokens/s")
        if self.eta_s is not None and self.status == "running":
            parts.append(f"ETA {format_eta(self.eta_s)}")
        if self.results:
            parts.append(f"{self.valid} valid")
        return " · ".join(parts)


    def _docking_text(self) -> str:
        parts = [f"{self.done} of {self.total} ligands"]
        if self.ligands_per_minute and self.status == "running":
            parts.append(f"{self.ligands_per_minute:,.1f} ligands/min")
        if self.eta_s is not None and self.status == "running":
            parts.append(f"ETA {format_eta(self.eta_s)}")
        if self.failed:
            parts.append(f"{self.failed} not docked")
        return " · ".join(parts)


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


class JobQueue(QObject):
    """Jobs by id, in submission order. Updated only on the GUI thread (by the bridge's signals)."""

    jobAdded = Signal(str)
    jobChanged = Signal(str)
    cancelRequested = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs: dict[str, Job] = {}

    def add(self, job: Job) -> Job:
        self.jobs[job.job] = job
        self.jobAdded.emit(job.job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(str(job_id))

    def running(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.active]

    def _update(self, job_id, **changes) -> Job | None:
        job = self.get(job_id)
        if job is None:
            return None
        for k, v in changes.items():
            setattr(job, k, v)
        self.jobChanged.emit(job.job)
        return job

    # -- engine events ---------------------------------------------------------------------
    def on_progress(self, ev: dict) -> None:
        job = self.get(ev.get("job"))
        if job is None or not job.active:
            return
        self._update(job.job, status="running" if job.status == "queued" else job.status,
                     done=int(ev.get("done", job.done)), total=int(ev.get("total", job.total) or job.total),
                     tokens_per_s=ev.get("tokens_per_s"), eta_s=ev.get("eta_s"),
                     ligands_per_minute=ev.get("ligands_per_minute", job.ligands_per_minute),
                     failed=int(ev.get("failed", job.failed) or 0))

    def on_result(self, ev: dict) -> None:
        job = self.get(ev.get("job"))
        if job is None:
            return
        self._update(job.job, results=job.results + 1, valid=job.valid + (1 if ev.get("valid") else 0),
                     status="running" if job.status == "queued" else job.status)

    def on_finished(self, ev: dict) -> None:
        job = self.get(ev.get("job"))
        if job is None:
            return
        status = ev.get("status") or "finished"
        changes = {"status": status, "eta_s": None}
        if status == "finished":
            changes["done"] = job.total
        if ev.get("error"):
            changes["error"] = str(ev["error"])
        self._update(job.job, **changes)

    def on_error(self, ev: dict) -> None:
        job = self.get(ev.get("job")) if ev.get("job") is not None else None
        if job is not None:
            self._update(job.job, error=str(ev.get("message") or "error"))

    def set_info(self, job_id: str, text: str) -> None:
        self._update(job_id, info=text)

    def fail(self, job_id: str, reason: str) -> None:
        job = self.get(job_id)
        if job is not None and job.active:
            self._update(job.job, status="failed", error=reason, eta_s=None)

    def cancel(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is not None and job.active:
            self._update(job.job, status="cancelling")
            self.cancelRequested.emit(job.job)


class _JobRow(QFrame):
    def __init__(self, queue: JobQueue, job: Job) -> None:
        super().__init__()
        self.queue = queue
        self.job_id = job.job
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName(f"job-{job.job}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        top = QHBoxLayout()
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.status = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this job; samples already produced stay in the project")
        self.cancel_button.clicked.connect(lambda: self.queue.cancel(self.job_id))
        top.addWidget(self.title, 1)
        top.addWidget(self.status)
        top.addWidget(self.cancel_button)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(60)  # a long text is cut, not a row wider than the dock
        self.bar.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addLayout(top)
        outer.addWidget(self.bar)
        outer.addWidget(self.detail)
        self.refresh()

    def refresh(self) -> None:
        job = self.queue.get(self.job_id)
        self.title.setText(f"<b>{job.task}</b> · job {job.job}" if job.kind != "dock" else f"<b>{job.task}</b>")
        self.title.setToolTip(job.command)
        colour = {"failed": "#b00020", "cancelled": "#8a6d00", "finished": "#1b7f3b"}.get(job.status, "#333")
        self.status.setText(f"<span style='color:{colour}'>{job.status}</span>")
        self.bar.setMaximum(max(job.total, 1))
        self.bar.setValue(min(job.done, job.total))
        self.bar.setFormat(job.progress_text())
        self.cancel_button.setEnabled(job.status in ("queued", "running"))
        self.cancel_button.setVisible(job.active)
        info = html.escape(job.info).replace("\n", "<br>") if job.info else ""
        if job.status == "failed":
            text = f"<span style='color:#b00020'>Failed: {html.escape(job.error or 'unknown reason')}</span>"
            self.detail.setText(text + (f"<br>{info}" if info else ""))
        elif job.error:
            self.detail.setText(html.escape(job.error) + (f"<br>{info}" if info else ""))
        else:
            self.detail.setText(info)
        self.detail.setVisible(bool(self.detail.text()))


class QtJobQueue(QWidget):
    """The job queue dock: newest job first."""

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.rows: dict[str, _JobRow] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel("No jobs yet. Choose a task in the Generate panel and press Run.")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        holder = QWidget()
        self.list_layout = QVBoxLayout(holder)
        self.list_layout.setContentsMargins(2, 2, 2, 2)
        self.list_layout.addWidget(self.empty)
        self.list_layout.addStretch(1)
        scroll.setWidget(holder)
        layout.addWidget(scroll)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        queue.jobAdded.connect(self._add)
        queue.jobChanged.connect(self._changed)
        for job_id in queue.jobs:
            self._add(job_id)

    def _add(self, job_id: str) -> None:
        row = _JobRow(self.queue, self.queue.get(job_id))
        self.rows[job_id] = row
        self.empty.hide()
        self.list_layout.insertWidget(0, row)

    def _changed(self, job_id: str) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            row.refresh()
