"""A long session: the workspace (model + tree view) survives thousands of open/close cycles.

Found by the GUI drop fuzz: with PySide6 6.12.0 on CPython 3.11, Qt calls from Python (e.g.
``QTreeWidgetItem.setData``, ``flags()``, ``QTreeWidget.clear``/``setCurrentItem``, signals that
carry ``None``) each drop a reference to ``None``/``True``/``False`` that they never took. CPython
3.11 does not make these objects immortal (3.12 does), so their count runs down and the process
aborts with "Fatal Python error: none_dealloc (or bool_dealloc): deallocating None" after a few
hundred add/remove cycles of one small molecule in a bare workspace. A lab workstation that stays
open for weeks will hit it. PySide6 6.11.3 does not leak: requirements/lock.txt pins it. The cycles
run in a subprocess so an abort is observed, not suffered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.reliability.conftest import record

CYCLES = 3000

SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from engine.structures import io
    from logos_desktop.widgets.qt_workspace_tree import QtWorkspaceTree
    from logos_desktop.workspace import Workspace
    obj = io.read_file(sys.argv[1])[0]
    ws = Workspace()
    tree = QtWorkspaceTree(ws)
    tree.show()
    start = sys.getrefcount(None)
    for i in range(int(sys.argv[2])):
        item = ws.add_objects([obj])[0]
        ws.remove(item.id)
        app.processEvents()
    print("cycles", sys.argv[2], "None refcount change", sys.getrefcount(None) - start)
""")


def test_workspace_survives_thousands_of_open_close_cycles(test_data):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(test_data / "structures" / "1ia1_ligand.sdf"),
                           str(CYCLES)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    fatal = next((ln for ln in proc.stderr.splitlines() if "Fatal Python error" in ln), "")
    record("GUI long session", {"cycles_asked": CYCLES, "returncode": proc.returncode, "fatal": fatal,
                                "stdout": proc.stdout.strip()})
    assert proc.returncode == 0, f"the workspace process died ({proc.returncode}): {fatal}"
    assert proc.stdout.startswith("cycles")
