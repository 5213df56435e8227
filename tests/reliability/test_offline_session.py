"""A full session opens no socket to a non-loopback address.

Start (the window, with its engine process, opening a real structure and a project), load a file
(``logos encode``), generate into a project (``logos generate --project``: the CLI and its engine
process), look at it and export it (``logos project info``, ``logos project export``). Every step
runs as the user would run it, in its own process tree, and is watched three ways:

* the audit hook of tests/reliability/netguard (every Python process: connect, sendto, sendmsg,
  name lookups), with the log kept per step;
* ``strace -f`` (every process and thread, native code such as llama.cpp and Qt included) where
  strace works;
* a network namespace with no interface (``unshare -n``) where allowed, so the session also
  proves it needs no network at all.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.fixtures.netguard import read_net_log
from tests.fixtures.required import in_ci, missing
from tests.reliability.conftest import record
from tests.reliability.offline import strace_available, traced_addresses, unshare_available, wrap

pytestmark = pytest.mark.slow


def _run(cmd, tmp_path, step, env=None, timeout=600):
    import subprocess

    log = tmp_path / f"{step}.net.log"
    trace = tmp_path / f"{step}.strace" if strace_available() else None
    full = wrap(cmd, netns=unshare_available(), trace_file=trace)
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=dict(env or os.environ, LOGOS_NET_LOG=str(log)))
    hooks = read_net_log(log)
    traced = traced_addresses(trace.read_text(errors="replace")) if trace is not None else []
    return proc, hooks, traced


def test_a_full_session_opens_no_socket_to_the_network(tmp_path, test_data, tiny_llama_gguf):
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        missing("llama_cpp is not installed")
    if in_ci() and not strace_available():  # locally the session still runs, without the trace
        missing("strace is not installed (requirements/apt.txt): the session would run untraced")
    if in_ci() and not unshare_available():
        missing("unshare -n is not permitted here: the session would run with the network up")
    py = [sys.executable, "-m"]
    pdb = test_data / "structures" / "1hvr.pdb"
    project = tmp_path / "session.logos"
    steps = [
        ("load", py + ["engine", "encode", str(pdb)]),
        ("generate", py + ["engine", "generate", "--task", "molecule", "-n", "3", "--seed", "4", "--model",
                          str(tiny_llama_gguf), "--project", str(project), "--json", "--max-new-tokens", "32",
                          "--threads", "1", "--n-ctx", "512"]),
        ("store", py + ["engine", "project", "info", str(project), "--json"]),
        ("export-sdf", py + ["engine", "project", "export", str(project), "--format", "sdf", "-o",
                            str(tmp_path / "rows.sdf")]),
        ("export-csv", py + ["engine", "project", "export", str(project), "--format", "csv", "-o",
                            str(tmp_path / "rows.csv")]),
    ]
    if os.environ.get("DISPLAY"):
        steps.insert(0, ("start-gui", py + ["logos_desktop", str(pdb), str(project), "--model", str(tiny_llama_gguf),
                                             "--screenshot", str(tmp_path / "window.png")]))
    figures = {}
    problems = []
    for step, cmd in steps:
        if step == "start-gui" and not project.exists():
            cmd = [c for c in cmd if c != str(project)]
        proc, hooks, traced = _run(cmd, tmp_path, step)
        if proc.returncode != 0:
            problems.append(f"{step}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
        outside = [h for h in hooks if not h.get("local")] + [t for t in traced if not t["local"]]
        if outside:
            problems.append(f"{step}: reached for the network: {outside[:10]}")
        figures[step] = {"python_socket_events": len(hooks), "syscalls_traced": len(traced),
                         "non_loopback": len(outside),
                         "families": sorted({t["family"] for t in traced})}
    assert not problems, "\n".join(problems)
    import csv

    rows = list(csv.DictReader((tmp_path / "rows.csv").open()))
    assert len(rows) == 3, rows  # every generated row, valid or not (a tiny random model)
    assert (tmp_path / "rows.sdf").exists()  # the valid ones only: may be none
    if os.environ.get("DISPLAY"):
        assert (tmp_path / "window.png").stat().st_size > 10_000
    record("offline session", {"network_namespace": unshare_available(), "strace": strace_available(),
                               "steps": figures})
