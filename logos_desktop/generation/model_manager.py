"""The model manager: the registry's GGUF files, import (copy or reference), convert and quantise
a Hugging Face folder, the memory estimate and GPU offload setting, the default model, Load.

Long work runs off the GUI thread: registry imports on a worker thread (engine.models is
headless), conversion and quantisation in a ``logos models convert`` subprocess (the GUI process
never calls llama.cpp). A model that fails to load leaves the previous one in place.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

COLUMNS = ["", "Name", "Architecture", "Quant", "Parameters", "Context", "Size", "LOGOS tags", "SHA-256", "File"]
_PCT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")


def human_bytes(n: int | None) -> str:
    if not n:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def human_count(n: int | None) -> str:
    if not n:
        return ""
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def estimate(path: str, backend: dict, n_gpu_layers) -> tuple[str, bool]:
    """(text, fits) of the memory plan for ``path`` on this machine (engine.runtime.planner)."""
    from engine.runtime.gguf_facts import read_facts
    from engine.runtime.planner import plan

    facts = read_facts(path)
    b = SimpleNamespace(backend=backend.get("backend", "CPU"), gpu_offload=bool(backend.get("gpu_offload")),
                        gpu_visible=bool(backend.get("gpu_visible")))
    p = plan(facts, b, n_gpu_layers=n_gpu_layers)
    lines = [p.summary(),
             f"weights {human_bytes(p.weights_bytes)} · KV cache {human_bytes(p.kv_bytes)} · "
             f"compute {human_bytes(p.compute_bytes)}"]
    lines += [f"· {r}" for r in p.reasons]
    if not p.fits:
        lines.insert(0, "DOES NOT FIT in the free memory")
    return "\n".join(lines), p.fits


class QtModelManager(QDialog):
    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Models")
        self.resize(1000, 620)
        self._jobs: queue.Queue = queue.Queue()
        self._busy = False
        self.error_box: QMessageBox | None = None  # the last import refusal shown (window-modal, not blocking)
        self.process: QProcess | None = None

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selected)

        buttons = QHBoxLayout()
        self.import_button = QPushButton("Import GGUF…")
        self.import_button.clicked.connect(self.import_dialog)
        self.copy_box = QCheckBox("copy into the registry")
        self.copy_box.setChecked(True)
        self.copy_box.setToolTip("Unchecked: the file stays where it is (e.g. a large file on a lab share)")
        self.convert_button = QPushButton("Convert Hugging Face folder…")
        self.convert_button.clicked.connect(self.convert_dialog)
        self.quant = QComboBox()
        self.quant.addItems(["Q8_0", "Q5_K_M", "Q4_K_M", "F16"])
        self.default_button = QPushButton("Set as default")
        self.default_button.clicked.connect(self.set_default)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove)
        for w in (self.import_button, self.copy_box, self.convert_button, QLabel("to"), self.quant):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.default_button)
        buttons.addWidget(self.remove_button)

        load_row = QHBoxLayout()
        self.offload = QComboBox()
        self.offload.addItem("GPU layers: automatic (as many as fit)", "auto")
        self.offload.addItem("CPU only", 0)
        self.offload.addItem("all layers on the GPU", -1)
        self.offload.addItem("this many layers:", "count")
        self.layers = QSpinBox()
        self.layers.setRange(0, 1000)
        self.layers.setEnabled(False)
        self.offload.currentIndexChanged.connect(self._offload_changed)
        self.layers.valueChanged.connect(self._selected)
        self.load_button = QPushButton("Load selected")
        self.load_button.clicked.connect(self.load_selected)
        load_row.addWidget(self.offload)
        load_row.addWidget(self.layers)
        load_row.addStretch(1)
        load_row.addWidget(self.load_button)

        self.estimate = QLabel("Select a model to see its memory estimate.")
        self.estimate.setObjectName("memory-estimate")
        self.estimate.setWordWrap(True)
        self.estimate.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # the selected model's card per task (engine.models.card: its GGUF keys, else the registry's
        # sidecar, else "unknown: no card"); every task's line and details in the tooltip
        self.card = QLabel("Select a model to see what it was trained for.")
        self.card.setObjectName("model-card")
        self.card.setWordWrap(True)
        self.card.setTextFormat(Qt.TextFormat.RichText)
        self.loaded = QLabel()
        self.progress = QProgressBar()
        self.progress.hide()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(90)
        self.log.hide()
        self.message = QLabel()
        self.message.setObjectName("model-message")
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.loaded)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(load_row)
        layout.addWidget(self.estimate)
        layout.addWidget(self.card)
        layout.addWidget(self.progress)
        layout.addWidget(self.log)
        layout.addWidget(self.message)

        self._timer = QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._drain)
        controller.bridge.modelLoaded.connect(lambda _ev: self.refresh())
        controller.bridge.modelLoadFailed.connect(self._load_failed)
        self.refresh()

    # -- registry ---------------------------------------------------------------------------
    def registry(self):
        from engine.models.registry import Registry

        return Registry()

    def refresh(self) -> None:
        try:
            reg = self.registry()
            entries = reg.list()
            default = reg.default()
        except Exception as exc:  # noqa: BLE001
            self.message.setText(f"<span style='color:#b00020'>The model registry cannot be read: {exc}</span>")
            entries, default = [], None
        from engine import paths

        bundled = [p for p in paths.bundled_models() if str(p) not in {e.path for e in entries}]
        self.entries = list(entries)
        selected = self.selected_path()
        self.table.setRowCount(len(entries) + len(bundled))
        loaded = self.controller.bridge._loaded[0] if self.controller.bridge._loaded else None
        for r, e in enumerate(entries):
            mark = ("★ " if default is not None and e.id == default.id else "") + ("●" if e.path == loaded else "")
            tags = "single tokens" if e.tags_single else (f"{len(e.tags_missing)} split" if e.tags_missing else "")
            vals = [mark.strip(), e.name or e.id, e.architecture, e.quant, human_count(e.n_params),
                    str(e.context_length or ""), human_bytes(e.size), tags, e.sha256[:12],
                    e.path + ("" if e.exists else "  (file missing)")]
            self._fill(r, vals, e.path, e.sha256)
        for i, p in enumerate(bundled):
            r = len(entries) + i
            arch = quant = params = ctx = tags = ""
            try:  # the header only (no hash): architecture, quantisation, parameters, tags
                from engine.modelfiles.gguf_info import inspect_gguf

                info = inspect_gguf(p, with_hash=False)
                arch, quant, params = info.architecture, info.quant, human_count(info.n_params)
                ctx = str(info.context_length or "")
                tags = "single tokens" if info.all_tags_single else ""
            except Exception as exc:  # noqa: BLE001 - shown in the row
                tags = f"unreadable: {exc}"
            self._fill(r, ["●" if str(p) == loaded else "", p.name + " (bundled demonstration)", arch, quant,
                           params, ctx, human_bytes(p.stat().st_size), tags, "", str(p)], str(p), "")
        self.table.resizeColumnsToContents()
        if selected:
            self.select_path(selected)
        self.loaded.setText(f"Loaded now: <b>{Path(loaded).name}</b>" if loaded else "No model loaded.")

    def _fill(self, row: int, values: list[str], path: str, sha: str) -> None:
        for c, v in enumerate(values):
            item = QTableWidgetItem(v)
            item.setData(Qt.ItemDataRole.UserRole, path)
            if c == 8 and sha:
                item.setToolTip(sha)
            self.table.setItem(row, c, item)

    def selected_path(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def select_path(self, path: str) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == str(path):
                self.table.selectRow(r)
                return

    def _entry_for(self, path: str):
        return next((e for e in getattr(self, "entries", []) if e.path == path), None)

    # -- estimate and load ------------------------------------------------------------------
    def n_gpu_layers(self):
        data = self.offload.currentData()
        return self.layers.value() if data == "count" else data

    def _offload_changed(self) -> None:
        self.layers.setEnabled(self.offload.currentData() == "count")
        self._selected()

    def _selected(self) -> None:
        path = self.selected_path()
        self.default_button.setEnabled(self._entry_for(path) is not None if path else False)
        self.remove_button.setEnabled(self._entry_for(path) is not None if path else False)
        self.load_button.setEnabled(bool(path))
        if not path:
            return
        self._show_card(path)
        try:
            text, fits = estimate(path, self.controller.bridge.backend, self.n_gpu_layers())
        except Exception as exc:  # noqa: BLE001 - ModelFileError names the file and why
            self.estimate.setText(f"<span style='color:#b00020'>{exc}</span>")
            return
        colour = "#1b7f3b" if fits else "#b00020"
        self.estimate.setText(f"<span style='color:{colour}'>Memory estimate:</span><br>" +
                              text.replace("\n", "<br>"))

    def _show_card(self, path: str) -> None:
        from engine.models.registry import card_for

        entry = self._entry_for(path)
        try:
            card = card_for(path, sha256=entry.sha256 if entry else None)
        except Exception as exc:  # noqa: BLE001 - a damaged card or sidecar: named, never raised into Qt
            self.card.setText(f"<span style='color:#b00020'>Card: {exc}</span>")
            self.card.setToolTip("")
            return
        marks = {"trained": ("#1b5e20", "✓"), "not_learnt": ("#b00020", "⚠"), "not_trained": ("#b00020", "✗"),
                 "unknown": ("#8a6d00", "?")}
        where = {"gguf": "card in the file", "sidecar": "card kept by the registry", "none": "no card"}[card.origin]
        parts = []
        for name, t in card.tasks.items():
            colour, mark = marks[t.status]
            parts.append(f"<span style='color:{colour}'>{mark} {name}</span>")
        self.card.setText(f"Tasks ({where}): " + " · ".join(parts))
        self.card.setToolTip("\n".join(f"{name}: {t.line()}" for name, t in card.tasks.items()))

    def load_selected(self) -> bool:
        path = self.selected_path()
        if not path:
            return False
        from engine.runtime.gguf_facts import read_facts

        try:
            read_facts(path)  # a truncated or foreign file is refused here; the engine keeps its model
        except Exception as exc:  # noqa: BLE001
            self.message.setText(f"<span style='color:#b00020'>Not loaded: {exc}. The current model "
                                 "stays loaded.</span>")
            return False
        layers = self.n_gpu_layers()
        self.controller.load_model(path, n_gpu_layers=layers)
        self.message.setText(f"Loading {Path(path).name}…")
        return True

    def _load_failed(self, path: str, reason: str) -> None:
        prev = self.controller.bridge._loaded[0] if self.controller.bridge._loaded else None
        keep = f" {Path(prev).name} stays loaded." if prev and prev != path else ""
        self.message.setText(f"<span style='color:#b00020'>Could not load {Path(path).name}: {reason}.{keep}</span>")

    def set_default(self) -> None:
        e = self._entry_for(self.selected_path() or "")
        if e is None:
            return
        try:
            self.registry().set_default(e.id)
        except Exception as exc:  # noqa: BLE001
            self.message.setText(f"<span style='color:#b00020'>{exc}</span>")
            return
        self.message.setText(f"{e.name or e.id} is now the default model (used at start-up and by the CLI).")
        self.refresh()

    def remove(self) -> None:
        e = self._entry_for(self.selected_path() or "")
        if e is None:
            return
        what = "and delete its copied file" if e.managed else "(the file itself stays where it is)"
        if QMessageBox.question(self, "Remove model", f"Remove {e.name or e.id} from the registry {what}?") \
                != QMessageBox.StandardButton.Yes:
            return
        self.registry().remove(e.id)
        self.refresh()

    # -- import (worker thread) -------------------------------------------------------------
    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf)")
        if path:
            self.import_file(path, copy=self.copy_box.isChecked())

    def import_file(self, path: str, copy: bool = True) -> None:
        if self._busy:
            self.message.setText("Another model operation is running.")
            return
        self._busy = True
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.show()
        self.message.setText(f"Importing {Path(path).name} (checking and hashing)…")

        def progress(stage: str, done: int, total: int) -> None:
            self._jobs.put(("progress", stage, done, total))

        def work():
            try:
                entry = self.registry().import_file(path, copy=copy, progress=progress)
                self._jobs.put(("imported", entry))
            except Exception as exc:  # noqa: BLE001 - shown in the dialog
                self._jobs.put(("failed", str(exc)))

        threading.Thread(target=work, name="model-import", daemon=True).start()
        self._timer.start()

    def _drain(self) -> None:
        while True:
            try:
                msg = self._jobs.get_nowait()
            except queue.Empty:
                return
            if msg[0] == "progress":
                _, stage, done, total = msg
                self.progress.setFormat(f"{stage} %p%")
                self.progress.setValue(int(100 * done / total) if total else 0)
            elif msg[0] == "log":
                self.log.appendPlainText(msg[1])
            elif msg[0] == "converted":
                _, src, dst, quant = msg
                self.log.appendPlainText(f"converted to {src}")
                self._quantize(src, dst, quant)
            elif msg[0] == "imported":
                self._busy = False
                self.progress.hide()
                self._timer.stop()
                e = msg[1]
                self.message.setText(f"Imported {e.name or e.id}: {e.architecture}, {e.quant}, "
                                     f"SHA-256 {e.sha256[:12]}…")
                self.refresh()
                self.select_path(e.path)
            elif msg[0] == "failed":
                self._busy = False
                self.progress.hide()
                self._timer.stop()
                self.message.setText(f"<span style='color:#b00020'>Refused: {msg[1]}</span>")
                self._show_refusal(msg[1])
                self.refresh()

    def _show_refusal(self, reason: str) -> None:
        """The import error in a message box (window-modal, not blocking the event loop): one line
        naming the file, the offset and the field; the registry and the loaded model are untouched."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Model not imported", f"The model was not imported.\n\n{reason}",
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.error_box = box
        box.open()

    # -- convert / quantise (subprocess) ----------------------------------------------------
    def convert_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hugging Face checkpoint folder")
        if not folder:
            return
        out, _ = QFileDialog.getSaveFileName(self, "Write GGUF to",
                                             str(Path(folder).with_suffix(f".{self.quant.currentText()}.gguf")),
                                             "GGUF (*.gguf)")
        if out:
            self.convert(folder, out, self.quant.currentText())

    def convert(self, hf_dir: str, out: str, quant: str) -> None:
        """Convert on a worker thread (engine.models.convert, with progress), then quantise in a
        ``logos models quantize`` subprocess (llama.cpp's quantiser never runs in the GUI process)
        and register the result."""
        if self._busy:
            self.message.setText("Another model operation is running.")
            return
        self._busy = True
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.show()
        self.log.clear()
        self.log.show()
        out_path = Path(out)
        direct = quant in ("F16", "F32", "BF16")
        first = out_path if direct else out_path.with_name(out_path.stem + ".f16-tmp.gguf")
        self.message.setText(f"Converting {hf_dir} → {first.name}…")

        def progress(stage: str, done: int, total: int) -> None:
            self._jobs.put(("progress", f"convert: {stage}", done, total))

        def work():
            from engine.models.convert import convert_hf_to_gguf

            try:
                res = convert_hf_to_gguf(hf_dir, first, progress=progress, outtype=quant.lower() if direct else "f16")
                for w in res.warnings:
                    self._jobs.put(("log", f"warning: {w}"))
                if direct:
                    entry = self.registry().import_file(first, copy=False, progress=progress)
                    self._jobs.put(("imported", entry))
                else:
                    self._jobs.put(("converted", str(first), str(out_path), quant))
            except Exception as exc:  # noqa: BLE001 - ModelFileError names the file and the field
                self._jobs.put(("failed", str(exc)))

        threading.Thread(target=work, name="model-convert", daemon=True).start()
        self._timer.start()

    def _quantize(self, src: str, dst: str, quant: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"quantising to {quant}…")
        self.message.setText(f"Quantising to {quant} with llama.cpp…")
        self.process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._convert_output)
        self.process.finished.connect(lambda code, _s: self._convert_finished(code, dst, src))
        args = ["-m", "engine", "models", "quantize", src, dst, "--quant", quant, "--register"]
        self.log.appendPlainText("logos " + " ".join(args[2:]))
        self.process.start(sys.executable, args)

    def _convert_output(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        for line in text.splitlines():
            if not line.strip():
                continue
            self.log.appendPlainText(line)
            m = _PCT.search(line)
            f = _FRACTION.search(line)
            if m:
                self.progress.setRange(0, 100)
                self.progress.setValue(int(float(m.group(1))))
                self.progress.setFormat(line.strip()[:60])
            elif f and int(f.group(2)):
                self.progress.setRange(0, 100)
                self.progress.setValue(int(100 * int(f.group(1)) / int(f.group(2))))
                self.progress.setFormat(line.strip()[:60])

    def _convert_finished(self, code: int, out: str, tmp: str | None = None) -> None:
        self._busy = False
        self.progress.hide()
        self._timer.stop()
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if code == 0:
            self.message.setText(f"Converted, quantised and registered {Path(out).name}.")
        else:
            last = self.log.toPlainText().strip().splitlines()[-1:] or [""]
            self.message.setText(f"<span style='color:#b00020'>Conversion failed (exit code {code}): "
                                 f"{last[0]}</span>")
        self.refresh()
