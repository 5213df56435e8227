"""The engine process's stderr for a user's errors: one line each ("[engine] ..."), never a
Python traceback (tracebacks are kept for bugs in the engine). Real process, real requests."""

from __future__ import annotations

import time

import pytest

from engine.process.client import EngineClient, EngineError


def test_user_errors_log_one_line_each_and_no_traceback(tmp_path):
    c = EngineClient()
    c.start()
    try:
        bad_json = "this is not json"
        c.proc.stdin.write(bad_json + "\n")
        c.proc.stdin.flush()
        c.wait_for(lambda e: e["type"] == "error", 10)
        rid = c.send("submit", task="molecule", temprature=2)             # unknown field
        c.wait_for(lambda e: e.get("id") == rid and e["type"] == "error", 10)
        rid = c.send("submit", task="molecule", sampling={"temperature": "hot"})  # wrong type
        c.wait_for(lambda e: e.get("id") == rid and e["type"] == "error", 10)
        job = c.submit("molecule", n=1)                                   # no model loaded yet
        events = list(c.iter_job(job, timeout=30))
        assert events[-1]["status"] == "failed"
        assert any(e["type"] == "error" and e["message"] == "no model loaded: send load_model first"
                   for e in events)
        missing = tmp_path / "nothing.gguf"
        with pytest.raises(EngineError, match="nothing.gguf: file not found"):
            c.load_model_wait(str(missing))                               # model file refused
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"GGUF" + b"\0" * 100)
        with pytest.raises(EngineError, match="broken.gguf"):
            c.load_model_wait(str(broken))
        assert c.status()["type"] == "status"
        time.sleep(0.3)  # the stderr reader catches up
        lines = [ln for ln in c.stderr_tail.splitlines() if ln.strip()]
    finally:
        c.close()
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    assert len(lines) == 6, text  # one line per refused request, nothing else
    assert all(ln.startswith("[engine] ") for ln in lines), text
    assert "not JSON" in lines[0] and bad_json in lines[0]
    assert "unknown field(s) temprature" in lines[1]
    assert "temperature" in lines[2]
    assert lines[3] == f"[engine] submit {job!r}: no model loaded: send load_model first"
    assert lines[4].endswith(f"{missing}: file not found")
    assert str(broken) in lines[5]


def test_what_counts_as_a_users_error():
    from engine.modelfiles.errors import ModelFileError
    from engine.process.server import NoModelLoaded, _is_user_error
    from engine.runtime.planner import PlanError
    from engine.store.errors import ProjectError
    from engine.tasks.base import TaskInputError

    for exc in (ModelFileError("/x.gguf", "file not found"), PlanError("does not fit"),
                TaskInputError("bad input"), ProjectError("/p.logos", "locked"), NoModelLoaded("no model")):
        assert _is_user_error(exc), exc
    for exc in (TypeError("bug"), KeyError("bug"), AttributeError("bug"), AssertionError(),
                ZeroDivisionError(), RuntimeError("bug")):
        assert not _is_user_error(exc), exc
