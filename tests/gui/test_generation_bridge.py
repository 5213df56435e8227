"""The engine bridge with a real engine process: start, events as Qt signals on the GUI thread,
a crash reported and followed by a restart, a model that fails to load."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)

from logos_desktop.engine_bridge import EngineBridge  # noqa: E402


@pytest.fixture
def bridge(qtbot):
    b = EngineBridge()
    states = []
    b.stateChanged.connect(lambda s, m: states.append((s, m)))
    b.states = states
    yield b
    b.stop()


def test_start_then_crash_then_restart(qtbot, bridge):
    main = threading.get_ident()
    threads = []
    bridge.event.connect(lambda _ev: threads.append(threading.get_ident()))
    bridge.start()
    qtbot.waitUntil(lambda: bridge.state == "ready", timeout=60000)
    assert "backend" in bridge.backend  # the engine's BackendInfo from its hello
    pid = bridge.client.proc.pid

    bridge.request_status()
    with qtbot.waitSignal(bridge.status, timeout=20000) as st:
        pass
    assert st.args[0]["pid"] == pid

    os.kill(pid, signal.SIGKILL)  # the engine dies (as a llama.cpp crash would)
    qtbot.waitUntil(lambda: any(s == "crashed" for s, _ in bridge.states), timeout=20000)
    crashed = [m for s, m in bridge.states if s == "crashed"][0]
    assert "exit code -9" in crashed and "restarting" in crashed
    qtbot.waitUntil(lambda: bridge.state == "ready" and bridge.client.proc.pid != pid, timeout=60000)
    assert "restarted after a crash" in bridge.state_message
    assert set(threads) == {main}  # every signal was delivered on the GUI thread


def test_job_submitted_before_ready_runs_when_ready_and_fails_without_model(qtbot, bridge):
    bridge.start()
    job = bridge.submit("molecule", n=2, seed=1)  # sent once the engine says hello
    with qtbot.waitSignal(bridge.finished, timeout=60000,
                          check_params_cb=lambda ev: ev.get("job") == job) as fin:
        pass
    assert fin.args[0]["status"] == "failed"
    assert "no model loaded" in fin.args[0]["error"]
    assert job not in bridge.jobs_in_flight


def test_model_that_fails_to_load_is_reported(qtbot, bridge, tmp_path):
    bad = tmp_path / "half-copied.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)  # a truncated file
    bridge.start()
    qtbot.waitUntil(lambda: bridge.ready, timeout=60000)
    with qtbot.waitSignal(bridge.modelLoadFailed, timeout=60000) as failed:
        bridge.load_model(str(bad))
    assert failed.args[0] == str(bad)
    assert failed.args[1]
    assert bridge.model is None


def test_repeated_crashes_stop_the_restarts_until_asked(qtbot):
    from engine.process.client import EngineClient

    bridge = EngineBridge(client_factory=lambda: EngineClient(max_restarts=1))
    states = []
    bridge.stateChanged.connect(lambda s, m: states.append((s, m)))
    try:
        bridge.start()
        qtbot.waitUntil(lambda: bridge.ready, timeout=60000)
        first = bridge.client.proc.pid
        os.kill(first, signal.SIGKILL)
        qtbot.waitUntil(lambda: bridge.ready and bridge.client.proc.pid != first, timeout=60000)
        second = bridge.client.proc.pid
        os.kill(second, signal.SIGKILL)
        qtbot.waitUntil(lambda: "not restarted again" in bridge.state_message, timeout=20000)
        qtbot.wait(1500)
        assert bridge.state == "crashed" and not bridge.client.alive
        bridge.restart()  # Models > Restart engine
        qtbot.waitUntil(lambda: bridge.ready, timeout=60000)
        assert bridge.client.alive and bridge.client.proc.pid not in (first, second)
    finally:
        bridge.stop()


@pytest.mark.slow
def test_failed_load_leaves_the_previous_model_loaded(qtbot, bridge, tiny_llama_gguf, tmp_path):
    require_module("llama_cpp")
    bridge.start()
    with qtbot.waitSignal(bridge.modelLoaded, timeout=120000):
        bridge.load_model(str(tiny_llama_gguf))
    bad = tmp_path / "half.gguf"
    bad.write_bytes(tiny_llama_gguf.read_bytes()[: tiny_llama_gguf.stat().st_size // 3])
    with qtbot.waitSignal(bridge.modelLoadFailed, timeout=60000):
        bridge.load_model(str(bad))
    # the engine had to drop its model to try the new one; the bridge loads the previous one again
    with qtbot.waitSignal(bridge.modelLoaded, timeout=120000) as again:
        pass
    assert again.args[0]["path"] == str(tiny_llama_gguf)
    assert bridge.model["path"] == str(tiny_llama_gguf)
    job = bridge.submit("molecule", n=2, seed=3, sampling={"max_new_tokens": 8})
    with qtbot.waitSignal(bridge.finished, timeout=60000,
                          check_params_cb=lambda ev: ev.get("job") == job) as fin:
        pass
    assert fin.args[0]["status"] == "finished"
