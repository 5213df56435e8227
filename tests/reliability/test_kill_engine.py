"""The engine process killed with SIGKILL in the middle of a generation that stores into a project,
driven from the CLI (``logos generate --project``) and from the GUI's engine bridge: every row
the engine reported as stored (``result_id``) is in the project, ``PRAGMA integrity_check`` says
ok, and the next job runs and stores its rows."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.fixtures.required import missing
from tests.reliability.conftest import record

pytestmark = pytest.mark.slow


def _need_llama():
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        missing("llama_cpp is not installed")


def _engine_pids(parent_pid: int) -> list[int]:
    import psutil

    try:
        kids = psutil.Process(parent_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [k.pid for k in kids if "engine" in " ".join(k.cmdline())]


def _check_store(path, reported_ids) -> dict:
    """Raw SQLite, independent of engine.store: integrity, and every reported row present."""
    con = sqlite3.connect(str(path))
    try:
        integrity = [r[0] for r in con.execute("PRAGMA integrity_check")]
        ids = {r[0] for r in con.execute("SELECT id FROM results")}
        runs = {r[0]: r[1] for r in con.execute("SELECT id, status FROM runs")}
    finally:
        con.close()
    assert integrity == ["ok"], integrity
    missing = sorted(set(reported_ids) - ids)
    assert not missing, f"rows reported as stored but missing after the kill: {missing}"
    return {"rows": len(ids), "runs": runs}


def _generate_cmd(model, project, n, seed):
    return [sys.executable, "-m", "engine", "generate", "--task", "molecule", "-n", str(n), "--seed", str(seed),
            "--model", str(model), "--project", str(project), "--json", "--max-new-tokens", "48",
            "--threads", "1", "--n-ctx", "1024"]


def test_sigkill_engine_mid_generation_from_the_cli(tmp_path, tiny_llama_gguf):
    _need_llama()
    project = tmp_path / "killed.logos"
    proc = subprocess.Popen(_generate_cmd(tiny_llama_gguf, project, 400, 11), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    reported: list[int] = []
    killed = None
    deadline = time.monotonic() + 300
    try:
        for line in proc.stdout:
            row = json.loads(line)
            if row.get("result_id") is not None:
                reported.append(row["result_id"])
            if len(reported) >= 5 and killed is None:
                pids = _engine_pids(proc.pid)
                assert pids, "no engine process under logos generate"
                os.kill(pids[0], signal.SIGKILL)  # mid-generation: rows are being written
                killed = pids[0]
            if time.monotonic() > deadline:
                break
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert killed is not None, f"the job ended before 5 rows: {stderr[-2000:]}"
    assert rc != 0, "logos generate must not report success after its engine was killed"
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "engine exited" in stderr or "exited" in stderr, stderr[-2000:]
    first = _check_store(project, reported)
    assert first["rows"] >= len(reported) >= 5
    # the run whose engine died is not left "running" forever: the CLI saw the engine exit
    assert list(first["runs"].values()) == ["failed"], first["runs"]
    # the next job runs and stores its rows in the same file
    again = subprocess.run(_generate_cmd(tiny_llama_gguf, project, 3, 12), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    new_ids = [json.loads(ln)["result_id"] for ln in again.stdout.splitlines() if ln.strip()]
    second = _check_store(project, reported + new_ids)
    assert second["rows"] == first["rows"] + 3
    record("SIGKILL engine from the CLI", {"rows_reported_before_kill": len(reported),
                                           "rows_in_store_after_kill": first["rows"],
                                           "integrity": "ok", "next_job_rows": len(new_ids),
                                           "killed_run_status": sorted(first["runs"].values())})


@pytest.mark.gui
def test_sigkill_engine_mid_generation_from_the_gui(qtbot, tmp_path, tiny_llama_gguf):
    _need_llama()
    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    from logos_desktop.engine_bridge import EngineBridge

    project = tmp_path / "gui-killed.logos"
    bridge = EngineBridge()
    results: list[dict] = []
    finished: list[dict] = []
    states: list[str] = []
    bridge.result.connect(lambda ev: results.append(ev))
    bridge.finished.connect(lambda ev: finished.append(ev))
    bridge.stateChanged.connect(lambda state, msg: states.append(state))
    bridge.start()
    qtbot.waitUntil(lambda: bridge.ready, timeout=120_000)
    bridge.load_model(str(tiny_llama_gguf), n_ctx=1024, n_threads=1)
    job = bridge.submit("molecule", n=400, seed=5, sampling={"max_new_tokens": 48}, project=str(project))
    qtbot.waitUntil(lambda: len([r for r in results if r.get("job") == job]) >= 5, timeout=300_000)
    engine_pid = bridge.client.proc.pid
    os.kill(engine_pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: any(f.get("job") == job for f in finished), timeout=60_000)
    fin = next(f for f in finished if f.get("job") == job)
    assert fin["status"] == "failed"
    reported = [r["result_id"] for r in results if r.get("job") == job and r.get("result_id") is not None]
    assert len(reported) >= 5
    qtbot.waitUntil(lambda: bridge.ready and bridge.client.proc.pid != engine_pid, timeout=120_000)
    first = _check_store(project, reported)
    # the next job, from the same window, on the restarted engine
    job2 = bridge.submit("molecule", n=3, seed=6, sampling={"max_new_tokens": 32}, project=str(project))
    qtbot.waitUntil(lambda: any(f.get("job") == job2 for f in finished), timeout=300_000)
    fin2 = next(f for f in finished if f.get("job") == job2)
    assert fin2["status"] == "finished", fin2
    new_ids = [r["result_id"] for r in results if r.get("job") == job2]
    second = _check_store(project, reported + new_ids)
    assert second["rows"] == first["rows"] + 3
    record("SIGKILL engine from the GUI", {"rows_reported_before_kill": len(reported),
                                           "rows_in_store_after_kill": first["rows"], "integrity": "ok",
                                           "states": states, "next_job_rows": len(new_ids)})
    bridge.stop()
