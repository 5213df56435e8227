"""The offline guard itself: it must refuse and report, or the offline tests prove nothing.

Each test points ``LOGOS_NET_LOG`` at its own file for the attempt it makes on purpose, so the
suite-wide check (tests/fixtures/netguard.py) still sees a clean log for the test. The addresses
are from TEST-NET-1 (192.0.2.0/24, RFC 5737) and the ``.invalid`` TLD: nothing would answer even
if a packet left, and the guard refuses before one does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.fixtures.netguard import GUARD_DIR, read_net_log
from tests.fixtures.required import missing
from tests.reliability.offline import unshare_available

PROBE = textwrap.dedent("""
    import socket, sys, json
    out = {}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "ok"
        except PermissionError as exc:
            out[name] = "refused: " + str(exc)
        except OSError as exc:
            out[name] = "oserror: " + type(exc).__name__
    attempt("tcp", lambda: socket.create_connection(("192.0.2.1", 9), timeout=0.5))
    attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53)))
    attempt("dns", lambda: socket.getaddrinfo("update-server.invalid", 443))
    attempt("ipv6", lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 9)))
    attempt("loopback", lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.5))
    attempt("unix", lambda: socket.socket(socket.AF_UNIX).connect("/nonexistent-logos-socket"))
    print(json.dumps(out))
""")


def test_subprocesses_inherit_the_guard(tmp_path, monkeypatch):
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(GUARD_DIR)
    log = tmp_path / "probe.log"
    env = dict(os.environ, LOGOS_NET_LOG=str(log))
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for name in ("tcp", "udp", "dns", "ipv6"):
        assert out[name].startswith("refused: LOGOS test network guard"), (name, out[name])
    # loopback and AF_UNIX are not the network: let through (nothing listens: an OSError)
    assert out["loopback"].startswith("oserror") and out["unix"].startswith("oserror")
    entries = read_net_log(log)
    blocked = [e for e in entries if e["blocked"]]
    assert {e["event"] for e in blocked} == {"socket.connect", "socket.sendto", "socket.getaddrinfo"}
    assert len(blocked) == 4
    assert any(e["local"] and "127.0.0.1" in e["address"] for e in entries)


def test_a_grandchild_is_guarded_too(tmp_path):
    """The engine process is started by the CLI, which a test starts: two levels down."""
    log = tmp_path / "grandchild.log"
    inner = "import socket\ntry:\n socket.create_connection(('192.0.2.7', 80), timeout=0.5)\nexcept OSError as e:\n print(type(e).__name__)"
    outer = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {inner!r}])"
    proc = subprocess.run([sys.executable, "-c", outer], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, LOGOS_NET_LOG=str(log)))
    assert proc.stdout.strip() == "PermissionError"
    blocked = [e["address"] for e in read_net_log(log) if e["blocked"]]
    assert blocked and all("192.0.2.7" in a for a in blocked)  # refused at the name lookup already


def test_the_guard_also_runs_in_the_test_process(tmp_path, monkeypatch):
    """A socket that bypasses the socket.socket.connect patch of tests/conftest.py still meets the
    audit hook (it sits in the C socket module)."""
    import _socket

    log = tmp_path / "inproc.log"
    monkeypatch.setenv("LOGOS_NET_LOG", str(log))
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        with pytest.raises(PermissionError, match="network guard"):
            _socket.socket.connect(s, ("192.0.2.3", 9))
    finally:
        s.close()
    assert [e["blocked"] for e in read_net_log(log)] == [True]


def test_the_guard_fails_the_test_that_reaches_out(tmp_path):
    """A test that connects out fails even when the connect happens in a subprocess (a pytest
    run of its own, in a temporary folder, with the same plugin)."""
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(GUARD_DIR.parents[2])!r})\n"
        "pytest_plugins = ['tests.fixtures.netguard']\n")
    (tmp_path / "test_phones_home.py").write_text(
        "import subprocess, sys\n"
        "def test_phone_home():\n"
        "    subprocess.run([sys.executable, '-c', \"import socket\\ntry: socket.create_connection(('192.0.2.9', 443), "
        "timeout=0.5)\\nexcept OSError: pass\"])\n"
        "def test_stays_home():\n"
        "    subprocess.run([sys.executable, '-c', 'print(1)'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOGOS_NET_LOG", "PYTEST_ADDOPTS")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "2 passed, 1 error" in out, out  # the error is the guard failing test_phone_home
    assert "network attempt(s) to non-loopback addresses were refused" in out and "192.0.2.9" in out, out


def test_network_namespace_is_available_for_the_full_session_test():
    """tests/reliability/test_offline_session.py also runs a session in a network namespace
    with no interface but loopback (``unshare -n``); say here whether this machine allows it."""
    pass

    ok = unshare_available()
    if not ok:
        missing("unshare -n is not permitted here (needs root or user namespaces)")
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c",
                           "import socket\ntry:\n socket.create_connection(('192.0.2.1', 53), timeout=1)\n"
                           "except OSError as e:\n print(type(e).__name__, e.errno)"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, LOGOS_NET_GUARD="off"))
    # no route at all: ENETUNREACH (101), whatever the guard says
    assert "101" in proc.stdout, proc.stdout + proc.stderr


def test_strace_sees_a_connect_that_the_audit_hook_does_not(tmp_path):
    """The strace check of the session test must be able to fail: a connect made with the guard
    off (as native code would: no audit event) is found and marked non-loopback. It runs in a
    network namespace with no interface, so nothing leaves the machine."""
    from tests.reliability.offline import strace_available, traced_addresses, wrap

    if not (strace_available() and unshare_available()):
        missing("needs strace (requirements/apt.txt) and unshare -n")
    trace = tmp_path / "t.strace"
    code = ("import socket\nfor a in [('127.0.0.1', 9), ('192.0.2.5', 443)]:\n"
            " try: socket.create_connection(a, timeout=1)\n except OSError: pass")
    subprocess.run(wrap([sys.executable, "-c", code], netns=True, trace_file=trace), capture_output=True,
                   timeout=60, env=dict(os.environ, LOGOS_NET_GUARD="off"))
    seen = traced_addresses(trace.read_text())
    assert {(s["address"], s["local"]) for s in seen if s["family"] == "AF_INET"} == {
        ("127.0.0.1", True), ("192.0.2.5", False)}
