"""The engine closes the project it opened for a job on every path (engine/process/jobs.py): when
storing the model, an input or the run fails, when the ``started`` event cannot be sent, when the
generation fails, and when it succeeds. A leaked handle keeps a WAL file and a lock on the user's
project."""

from __future__ import annotations

import threading

import pytest

from engine.process.jobs import run_job


class _Runtime:
    path = None

    def __init__(self, fail: bool = False):
        self.fail = fail

    def token_id(self, text):
        return None

    def describe(self):
        return {"backend": "fake"}

    def stream(self, *a, **kw):  # what engine/process/jobs.py calls: samples go to on_sample, none kept
        if self.fail:
            raise RuntimeError("generation failed")
        return None


@pytest.fixture
def closes(monkeypatch):
    from engine.store.project import Project

    opened, closed = [], []
    real_open, real_close = Project.open.__func__, Project.close

    def counting_open(cls, *a, **kw):
        p = real_open(cls, *a, **kw)
        opened.append(p)
        return p

    def counting_close(self):
        closed.append(self)
        return real_close(self)

    monkeypatch.setattr(Project, "open", classmethod(counting_open))
    monkeypatch.setattr(Project, "close", counting_close)
    return opened, closed


def _boom(*a, **kw):
    raise RuntimeError("disk full")


@pytest.mark.parametrize("where", ["add_model", "add_input", "start_run", "emit", "generate", "none"])
def test_project_closed_on_every_path(tmp_path, monkeypatch, closes, where):
    from engine.store.project import Project

    opened, closed = closes
    rt = _Runtime(fail=where == "generate")
    req = {"id": 7, "task": "molecule", "n": 1, "seed": 1, "project": str(tmp_path / "p.logos")}
    if where == "add_model":
        model = tmp_path / "m.gguf"
        model.write_bytes(b"GGUF")
        rt.path = model
        monkeypatch.setattr(Project, "add_model", _boom)
    elif where == "add_input":
        import engine.process.jobs as jobs
        from engine.tasks.base import InputRecord

        real_get_task = jobs.get_task

        class WithInput:  # the molecule task with one stored input
            def __init__(self, task):
                self._task = task

            def __getattr__(self, name):
                return getattr(self._task, name)

            def build_prompt(self, inputs, options):
                prompt = self._task.build_prompt(inputs, options)
                prompt.inputs = [InputRecord(data=b"CCO", fmt="smi", name="ethanol")]
                return prompt

        monkeypatch.setattr(jobs, "get_task", lambda name: WithInput(real_get_task(name)))
        monkeypatch.setattr(Project, "add_input", _boom)
    elif where == "start_run":
        monkeypatch.setattr(Project, "start_run", _boom)

    def emit(ev):
        if where == "emit" and ev.get("type") == "started":
            raise BrokenPipeError("client gone")

    if where == "none":
        run_job(rt, req, emit, threading.Event())
    else:
        with pytest.raises(Exception):
            run_job(rt, req, emit, threading.Event())
    assert len(opened) == 1 and closed == opened, (where, len(opened), len(closed))
