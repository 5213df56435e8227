"""A process writing results is killed with SIGKILL mid-run: the file is sound and every row whose
add_result had returned is there, intact. Meanwhile another process reads each row as it lands."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.store import Project, ResultQuery

ROOT = Path(__file__).resolve().parents[3]

_WRITER = textwrap.dedent("""
    import sys
    from engine.store import Project
    path, start = sys.argv[1], int(sys.argv[2])
    with Project.open(path, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {"temperature": 1.2}, start)
        print(f"run {run}", flush=True)
        i = start
        while True:
            smiles = "C" * (1 + i % 40) + "O"
            rid = p.add_result(run, f"<MoleculeS>{smiles}<MoleculeE>", objects={"i": i}, smiles=smiles,
                               scores={"qed": (i % 100) / 100}, ppl=1.0 + i, valid=i % 7 != 0,
                               reasons=[] if i % 7 else [f"rule {i}"])
            if i % 5 == 0:  # a bulk write as well (80 rows: the bulk path, which drops and re-creates the
                # substring index's triggers inside its transaction), interrupted at any point of it
                p.add_results(run, [{"record": "x" * 1000, "objects": {"bulk": i, "k": k},
                                     "smiles": "C" * (1 + k % 40) + "N"} for k in range(80)])
            print(f"{rid} {i}", flush=True)
            i += 1
""")


def _run_and_kill(path: Path, start: int, n_lines: int) -> tuple[int, dict[int, int]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(start)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        first = proc.stdout.readline()
        assert first.startswith("run "), first
        run_id = int(first.split()[1])
        committed: dict[int, int] = {}
        with Project.open(path) as reader:  # the GUI's side: reads while the engine writes
            while len(committed) < n_lines:
                line = proc.stdout.readline()
                assert line, "the writer stopped early"
                rid, i = map(int, line.split())
                committed[rid] = i
                if len(committed) % 10 == 0:  # a row is visible to another process once add_result returned
                    assert reader.get_result(rid).objects == {"i": i}
        proc.send_signal(signal.SIGKILL)  # mid-run: the writer is in its loop, often inside a write
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return run_id, committed


def _check(path: Path, run_id: int, committed: dict[int, int]) -> None:
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()
    with Project.open(path) as p:
        rows = {r.id: r for r in p.query_results(ResultQuery(run_id=run_id, limit=None)).rows}
        for rid, i in committed.items():
            row = rows[rid]
            smiles = "C" * (1 + i % 40) + "O"
            assert row.record == f"<MoleculeS>{smiles}<MoleculeE>" and row.smiles == smiles
            assert row.objects == {"i": i} and row.scores == {"qed": (i % 100) / 100} and row.ppl == 1.0 + i
            assert row.valid == (i % 7 != 0) and row.reasons == ([] if i % 7 else [f"rule {i}"])
        # bulk writes are all-or-nothing: 80 rows each, never a part
        bulk = [r for r in rows.values() if r.objects and "bulk" in r.objects]
        per_batch: dict[int, int] = {}
        for r in bulk:
            per_batch[r.objects["bulk"]] = per_batch.get(r.objects["bulk"], 0) + 1
        assert per_batch and all(n == 80 for n in per_batch.values()), per_batch
        # the substring index and its triggers survived, and it answers like the scan
        with p.session() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").scalar() == 6
        every = p.query_results(ResultQuery(limit=None)).rows
        for pattern in ("CCCN", "CCCO", "CCCCCCCCCCCCCCCCCCCCN"):
            found = [r.id for r in p.query_results(ResultQuery(smiles_contains=pattern, limit=None)).rows]
            assert found == [r.id for r in every if pattern in (r.smiles or "")] and found
        run = p.get_run(run_id)
        assert run.status == "running"  # the run never finished; its rows are still there


@pytest.mark.parametrize("n_lines", [60])
def test_sigkill_mid_run_keeps_every_committed_row(tmp_path, n_lines):
    path = tmp_path / "crash.logos"
    run1, committed1 = _run_and_kill(path, 0, n_lines)
    _check(path, run1, committed1)
    # a second writer continues in the same file and is killed as well
    run2, committed2 = _run_and_kill(path, 10_000, n_lines)
    _check(path, run1, committed1)
    _check(path, run2, committed2)
