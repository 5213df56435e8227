"""Drop files onto a real MainWindow, batch by batch, in a process of its own; write what happened.

``python -m tests.reliability.gui_drop_worker LIST.json OUT.json KEEPER [BATCH]``: LIST.json holds
file paths. Needs a display (Xvfb). For each file, exactly one of: it loaded (``Workspace.loaded``)
or a message joined the window's error log (``Workspace.failed``). After every drop the window must
be visible and the KEEPER structure (opened first) untouched. A crash of this process (the reason
it runs apart from pytest) is seen by the caller with its exit signal and faulthandler output.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    faulthandler.enable()
    files = [Path(p) for p in json.loads(Path(argv[0]).read_text())]
    out = Path(argv[1])
    keeper_path = Path(argv[2])
    batch = int(argv[3]) if len(argv) > 3 else 25
    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from logos_desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow(start_engine=False)
    win.resize(900, 600)
    win.show()
    app.processEvents()
    ws = win.workspace
    loaded: dict[str, int] = {}
    failed: dict[str, list[str]] = {}
    ws.loaded.connect(lambda path, n: loaded.__setitem__(os.path.basename(path), n))
    ws.failed.connect(lambda name, msg: failed.setdefault(os.path.basename(name), []).append(msg))
    keeper = win.open_paths([keeper_path])[0]
    keeper_atoms = keeper.summary()["atoms"]
    keeper_xyz = keeper.table().xyz.copy()
    loaded.clear()
    problems: list[str] = []
    t0 = time.monotonic()
    for start in range(0, len(files), batch):
        chunk = files[start:start + batch]
        md = QMimeData()
        md.setUrls([QUrl.fromLocalFile(str(p)) for p in chunk])
        at = QPoint(win.width() // 2, win.height() // 2)
        args = (Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        enter = QDragEnterEvent(at, *args)
        QApplication.sendEvent(win, enter)
        if not enter.isAccepted():
            problems.append("the window refused the drag")
            break
        drop = QDropEvent(at.toPointF(), *args)
        QApplication.sendEvent(win, drop)
        if not drop.isAccepted():  # Qt routes a Drop only during a real drag: hand it over as Qt would
            win.dropEvent(drop)
        names = {p.name for p in chunk}
        deadline = time.monotonic() + 600
        while not all(n in loaded or n in failed for n in names):
            app.processEvents()
            time.sleep(0.005)
            if time.monotonic() > deadline:
                problems.append(f"batch at {start}: not every file answered within 600 s (hang)")
                break
        app.processEvents()
        if not win.isVisible():
            problems.append(f"batch at {start}: the window is gone")
        if ws.item(keeper.id) is not keeper or keeper.summary()["atoms"] != keeper_atoms:
            problems.append(f"batch at {start}: the structure loaded first changed or vanished")
        # clear what this batch added (one update, as a "close all but" would)
        ws.blockSignals(True)
        for item in list(ws.items()):
            if item.id != keeper.id:
                ws.remove(item.id)
        ws.blockSignals(False)
        ws.itemsChanged.emit()
        ws.set_current(keeper.id)
        app.processEvents()
    if not (keeper.table().xyz == keeper_xyz).all():
        problems.append("the first structure's coordinates changed")
    result = {"files": {p.name: {"loaded": loaded.get(p.name), "messages": failed.get(p.name, [])} for p in files},
              "error_log": len(win.error_log), "problems": problems, "window_visible": win.isVisible(),
              "seconds": round(time.monotonic() - t0, 1)}
    win.close()
    app.processEvents()
    out.write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter finalisation: with PySide6 6.12.0 its garbage collection aborts on the
    # refcounts above (bool_dealloc); that defect has its own xfail test, not this one
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
