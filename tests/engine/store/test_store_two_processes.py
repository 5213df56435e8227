"""A second handle on a project in the same process (the GUI opens the file it already has open)
must not cost rows another process writes. POSIX drops all of a process's locks on a file when
any descriptor of it is closed; a plain open()/close() of the file (a header check) did that, so
the engine process's next close took the exclusive lock, checkpointed and deleted the WAL under
the GUI's open connections, and the GUI's view and its next write lost the engine's commits."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from engine.store import Project, ResultQuery

CHILD = textwrap.dedent("""
    import sys
    from engine.store import Project
    path, run = sys.argv[1], int(sys.argv[2])
    with Project.open(path) as p:      # an engine job opening and closing the project
        p.count_results()
    with Project.open(path) as p:
        p.add_result(run, "<MoleculeS>CCN<MoleculeE>", smiles="CCN")
""")


def test_a_second_open_in_this_process_loses_nothing_another_process_writes(filled_project):
    path, ids = filled_project
    gui = Project.open(path)
    try:
        before = gui.count_results()
        Project.open(path).close()  # another handle on the same file in this process
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(ids["run"])],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert gui.count_results() == before + 1  # the other process's row is seen
        gui.add_result(ids["run"], "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
    finally:
        gui.close()
    with Project.open(path) as p:
        smiles = [r.smiles for r in p.query_results(ResultQuery(limit=None)).rows]
    assert smiles.count("CCN") == 1 and len(smiles) == before + 2
