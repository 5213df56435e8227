"""The job queue: n of N, tokens/s, ETA, Cancel, and the reason of a failed job."""

from __future__ import annotations

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from logos_desktop.generation.job_queue import Job, JobQueue, QtJobQueue, format_eta  # noqa: E402


def test_progress_cancel_and_failure_are_shown(qtbot):
    queue = JobQueue()
    widget = QtJobQueue(queue)
    qtbot.addWidget(widget)
    assert widget.empty.isVisibleTo(widget)
    queue.add(Job("j1", "ligand", 10, command="logos generate --task ligand -n 10"))
    row = widget.rows["j1"]
    assert row.bar.format() == "0 of 10"
    assert row.cancel_button.isEnabled()

    queue.on_progress({"type": "progress", "job": "j1", "done": 3, "total": 10, "tokens_per_s": 812.4,
                       "eta_s": 75})
    assert row.bar.value() == 3
    assert row.bar.format() == "3 of 10 · 812 tokens/s · ETA 1 min 15 s"
    queue.on_result({"type": "result", "job": "j1", "valid": True})
    queue.on_result({"type": "result", "job": "j1", "valid": False})
    assert row.bar.format().endswith("1 valid")

    cancelled = []
    queue.cancelRequested.connect(cancelled.append)
    row.cancel_button.click()
    assert cancelled == ["j1"]
    assert "cancelling" in row.status.text()
    assert not row.cancel_button.isEnabled()
    queue.on_finished({"type": "finished", "job": "j1", "status": "cancelled"})
    assert "cancelled" in row.status.text()
    assert not row.cancel_button.isVisibleTo(widget)

    queue.add(Job("j2", "molecule", 5))
    queue.on_progress({"job": "j2", "done": 2, "total": 5})
    queue.fail("j2", "the engine process stopped unexpectedly (exit code -9)")
    row2 = widget.rows["j2"]
    assert "failed" in row2.status.text()
    assert "exit code -9" in row2.detail.text()
    assert row2.detail.isVisibleTo(widget)
    # a late event for a failed job changes nothing
    queue.on_progress({"job": "j2", "done": 4, "total": 5})
    assert row2.bar.value() == 2

    queue.add(Job("j3", "molecule", 4))
    queue.on_finished({"job": "j3", "status": "finished"})
    assert widget.rows["j3"].bar.value() == 4
    assert [j.job for j in queue.running()] == []


def test_eta_format():
    assert format_eta(0) == "0 s"
    assert format_eta(59.6) == "1 min 00 s"
    assert format_eta(3725) == "1 h 02 min"
