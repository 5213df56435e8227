"""One window per user: a file opened from the file manager goes to the LOGOS Desktop window
already open (logos_desktop/single_instance.py, hooked in logos_desktop/app.py).

The end-to-end test starts a real first ``logos-desktop`` process on the test's display, then a
second ``logos-desktop FILE PROJECT`` exactly as the menu entry's ``Exec=... %F`` does, and reads
what the first did from its log line and from the recent lists it keeps (File › Recent).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.required import missing

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


def _logos_desktop() -> list[str]:
    """The installed entry point the menu entry runs (the venv's logos-desktop)."""
    script = Path(sys.executable).parent / "logos-desktop"
    if not script.is_file():
        missing(f"{script} is not installed (pip install -e . in the set-up)")
    return [str(script)]


def _socket_path(name: str) -> str:
    from PySide6.QtCore import QDir

    return name if os.path.isabs(name) else os.path.join(QDir.tempPath(), name)


def _env(**extra) -> dict:
    env = dict(os.environ, LIBGL_ALWAYS_SOFTWARE="1", **extra)
    env.pop("LOGOS_NEW_WINDOW", None)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        missing("no display: run the GUI tests under xvfb-run (installer/setup.sh test does)")
    env.setdefault("QT_QPA_PLATFORM", "xcb")
    return env


def test_a_second_launch_hands_its_files_to_the_running_window(qtbot, tmp_path, test_data):
    from engine import paths
    from engine.store.project import Project
    from logos_desktop.single_instance import SingleInstance, server_name

    data = paths.data_dir()
    work = tmp_path / "files"   # where the file manager runs the second launch: relative names
    work.mkdir()
    shutil.copy(test_data / "structures" / "1ia1_ligand.sdf", work / "ligand.sdf")
    Project.open(work / "study.logos", create=True).close()
    log_path = tmp_path / "first.log"
    name = server_name(data)
    probe = SingleInstance(name)

    with open(log_path, "w") as log:
        first = subprocess.Popen([*_logos_desktop(), "--no-engine"], cwd=tmp_path, env=_env(),
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        qtbot.waitUntil(lambda: probe.someone_listens() or first.poll() is not None, timeout=120000)
        assert first.poll() is None, log_path.read_text()[-3000:]

        t0 = time.monotonic()
        second = subprocess.run([*_logos_desktop(), "--no-engine", "ligand.sdf", "study.logos"], cwd=work,
                                env=_env(), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        assert second.returncode == 0, second.stderr[-3000:]
        assert "handed 2 files to the LOGOS Desktop window already open" in second.stdout
        assert f"(process {first.pid})" in second.stdout
        assert took < 30, f"the second launch took {took:.1f} s: it must not build a window"
        print(f"second launch handed its files over in {took:.2f} s")

        def first_line():
            return [line for line in log_path.read_text().splitlines() if "from another launch" in line]

        qtbot.waitUntil(lambda: bool(first_line()) or first.poll() is not None, timeout=120000)
        assert first.poll() is None, log_path.read_text()[-3000:]
        # the project became the window's project (its title names it), the structure was loaded
        assert first_line() == ["logos-desktop: opened from another launch: ligand.sdf, study.logos "
                                "(1 project, 1 object); window: study.logos — LOGOS Desktop"]
        # through the window's usual open code: both are on the user's recent lists now
        assert json.loads((data / "recent_files.json").read_text()) == [str((work / "ligand.sdf").resolve())]
        assert json.loads((data / "recent_projects.json").read_text()) == [str((work / "study.logos").resolve())]

        # a --screenshot run (as the tests and the README's pictures make) never joins the window
        out = tmp_path / "shot.png"
        shot = subprocess.run([*_logos_desktop(), "--no-engine", "--screenshot", str(out), "ligand.sdf"],
                              cwd=work, env=_env(), capture_output=True, text=True, timeout=180)
        assert shot.returncode == 0, shot.stderr[-3000:]
        assert "window already open" not in shot.stdout
        assert out.is_file() and out.stat().st_size > 10000
        assert len(first_line()) == 1
        assert probe.someone_listens() and first.poll() is None  # the first window still listens
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(30)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait(30)
        from PySide6.QtNetwork import QLocalServer

        QLocalServer.removeServer(name)  # a terminated process leaves its socket file


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_a_stale_socket_is_taken_over_and_bad_messages_are_refused(qtbot, tmp_path):
    """A window that crashed leaves its socket file: the next launch listens in its place. A
    message that is not LOGOS Desktop's gets an error answer and opens nothing."""
    from logos_desktop.single_instance import SingleInstance, server_name

    name = server_name(tmp_path / "data")
    path = _socket_path(name)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)   # bound, never listening, then gone: what a killed process leaves
    dead.close()
    assert os.path.exists(path)

    inst = SingleInstance(name)
    assert inst.start([], join=True) == "listening"
    received: list[list[str]] = []
    inst.set_handler(received.append)
    try:
        answers: dict[str, str] = {}

        def send(key: str, payload: bytes) -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(20)
                s.connect(path)
                s.sendall(payload)
                answers[key] = s.makefile().readline().strip()

        messages = {
            "garbage": b"hello\n",
            "other app": json.dumps({"app": "other", "protocol": 1, "paths": ["/x"]}).encode() + b"\n",
            "bad paths": json.dumps({"app": "logos-desktop", "protocol": 1, "paths": "/x"}).encode() + b"\n",
            "good": json.dumps({"app": "logos-desktop", "protocol": 1, "paths": ["/tmp/a.pdb"]}).encode() + b"\n",
        }
        for key, payload in messages.items():
            t = threading.Thread(target=send, args=(key, payload))
            t.start()
            qtbot.waitUntil(lambda key=key: key in answers, timeout=20000)
            t.join()
        assert answers["garbage"].startswith("error:")
        assert answers["other app"] == "error: not a LOGOS Desktop message"
        assert answers["bad paths"] == "error: 'paths' must be a list of strings"
        assert answers["good"] == f"ok {os.getpid()}"
        qtbot.waitUntil(lambda: bool(received), timeout=5000)
        assert received == [["/tmp/a.pdb"]]
        # a launch that asks for another model never hands over, and does not listen twice
        assert SingleInstance(name).start(["/tmp/b.pdb"], join=False) == "alone"
    finally:
        inst.close()
    assert not os.path.exists(path)  # a window that closes removes its socket


def test_paths_are_made_absolute_for_the_running_window(tmp_path):
    from logos_desktop.single_instance import absolute_paths

    assert absolute_paths(["a.pdb", "../b.logos", (tmp_path / "c.sdf").as_uri()], cwd=str(tmp_path / "x")) == [
        str(tmp_path / "x" / "a.pdb"), str(tmp_path / "b.logos"), str(tmp_path / "c.sdf")]


def test_the_socket_is_per_user_and_data_directory(tmp_path, monkeypatch):
    from logos_desktop.single_instance import server_name

    a, b = server_name(tmp_path / "one"), server_name(tmp_path / "two")
    assert a != b and server_name(tmp_path / "one") == a
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.setenv("LOGNAME", "someone-else")
    assert server_name(tmp_path / "one") != a
