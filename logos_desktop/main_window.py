"""The main window: menus, the workspace, and a status bar that says what the engine is doing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QTimer, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QTextEdit


class MainWindow(QMainWindow):
    DEFAULT_SIZE = (1400, 900)

    def __init__(self, model: str | None = None, start_engine: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("LOGOS Desktop")
        self.resize(*self.DEFAULT_SIZE)
        self.model_path = model
        self.backend_text = "engine: starting…"
        self._backend_ready = False
        self._build_menus()
        self._build_central()
        self._build_status_bar()
        self._probe: QProcess | None = None
        if start_engine:
            self.probe_backend()
        else:
            self._set_backend("engine: not started (--no-engine)")

    # -- layout -------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.menus = {}
        for title in ("&File", "&Edit", "&View", "&Generate", "&Models", "&Help"):
            self.menus[title.replace("&", "")] = bar.addMenu(title)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.menus["File"].addAction(quit_action)
        about = QAction("&About LOGOS Desktop", self)
        about.triggered.connect(self.show_about)
        self.menus["Help"].addAction(about)

    def _build_central(self) -> None:
        # The workspace (tree, 3D and 2D views) replaces this placeholder-free empty state.
        empty = QTextEdit()
        empty.setReadOnly(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setHtml(
            "<h2>Workspace is empty</h2><p>Drop structure files here (SDF, MOL, MOL2, XYZ, SMILES, "
            "PDB, mmCIF, CIF, POSCAR, FASTA) or use File &gt; Open.</p>"
        )
        self.setCentralWidget(empty)

    def _build_status_bar(self) -> None:
        self.model_label = QLabel(self._model_text())
        self.backend_label = QLabel(self.backend_text)
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.backend_label)

    def _model_text(self) -> str:
        from engine import paths

        if self.model_path:
            return f"model: {Path(self.model_path).name}"
        bundled = paths.bundled_models()
        if bundled:
            return f"model: {bundled[0].name} (demonstration)"
        return "model: none — the demonstration model is not bundled yet"

    # -- engine backend probe -----------------------------------------------------------------
    def probe_backend(self) -> None:
        """Ask a separate engine process which llama.cpp build it runs (the GUI never loads it)."""
        self._probe = QProcess(self)
        self._probe.finished.connect(self._probe_finished)
        self._probe.errorOccurred.connect(lambda _err: self._set_backend("engine: failed to start"))
        self._probe.start(sys.executable, ["-m", "engine", "doctor", "--json"])

    def _probe_finished(self, code: int, _status) -> None:
        raw = bytes(self._probe.readAllStandardOutput()).decode(errors="replace")
        try:
            ll = json.loads(raw)["llama_cpp"]
        except (ValueError, KeyError):
            self._set_backend(f"engine: unavailable (exit {code})")
            return
        if not ll.get("available"):
            self._set_backend("engine: llama.cpp missing")
            return
        gpu = "GPU visible" if ll.get("gpu_visible") else "no GPU"
        self._set_backend(f"engine: {ll.get('backend')} ({gpu})")

    def _set_backend(self, text: str) -> None:
        self.backend_text = text
        self.backend_label.setText(text)
        self._backend_ready = True

    # -- actions ------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        QMessageBox.information(self, "Open", "\n".join(paths))

    def show_about(self) -> None:
        from engine import __version__

        QMessageBox.about(self, "About LOGOS Desktop", f"LOGOS Desktop {__version__}")

    def save_screenshot_when_ready(self, out: str, app: QApplication, timeout_ms: int = 20000) -> int:
        """Wait until the window has settled (engine probe answered or timed out), save, exit."""
        waited = 0
        while not self._backend_ready and waited < timeout_ms:
            app.processEvents()
            QTimer.singleShot(50, lambda: None)
            app.processEvents()
            self.thread().msleep(50)
            waited += 50
        for _ in range(10):
            app.processEvents()
        image = self.grab().toImage()
        ok = image.save(out)
        print(f"screenshot {'saved to' if ok else 'FAILED:'} {out}")
        self.close()
        return 0 if ok else 1
