"""The training dialog: data (selected rows or files), base model, LoRA or full, steps; a live loss
curve; Cancel. Training runs as a subprocess (``logos train ...``): the GUI never imports torch.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

_TEXT_STEP = re.compile(r"\bstep\s*[=:]?\s*(\d+)(?:\s*/\s*(\d+))?.*?\bloss\s*[=:]?\s*([0-9.eE+-]+)", re.I)
_TEXT_VAL = re.compile(r"\bstep\s*(\d+)\b.*\bval(?:idation)?[_ ]loss\s*[=:]?\s*([0-9.eE+-]+)", re.I)
_TOKS = re.compile(r"([0-9.]+)\s*tok(?:ens)?/s", re.I)
_ETA_MIN = re.compile(r"ETA\s*([0-9.]+)\s*min", re.I)


def parse_progress(line: str) -> dict | None:
    """One progress line of ``logos train`` → {"step", "loss", "val_loss"?, "total"?, ...} or None.

    JSON lines (``--json``) are read as they are; plain text lines like
    ``step 120/1000 loss 2.314 ...`` are understood too.
    """
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            ev = json.loads(line)
        except ValueError:
            return None
        if isinstance(ev, dict) and ("loss" in ev or "val_loss" in ev or ev.get("type") in
                                     ("progress", "eval", "finished", "error", "exported", "registered")):
            return ev
        return None
    v = _TEXT_VAL.search(line)
    if v:  # "step 200  validation loss 2.91"
        return {"step": int(v.group(1)), "val_loss": float(v.group(2))}
    m = _TEXT_STEP.search(line)
    if m:  # "step 120/1000  loss 2.3140  5321 tok/s  ETA 3.2 min"
        out = {"step": int(m.group(1)), "loss": float(m.group(3))}
        if m.group(2):
            out["total"] = int(m.group(2))
        t = _TOKS.search(line)
        if t:
            out["tokens_per_s"] = float(t.group(1))
        e = _ETA_MIN.search(line)
        if e:
            out["eta_s"] = 60 * float(e.group(1))
        return out
    if line.endswith(".gguf") and not line.startswith(("step", " ")):
        return {"type": "exported", "gguf": line}
    return None


class QtTrainingDialog(QDialog):
    """Builds a ``logos train`` command from the form, runs it, plots the loss as it arrives."""

    modelRegistered = Signal(str)  # path of the new GGUF (registered in the model registry)
    trainingFinished = Signal(int)  # exit code

    def __init__(self, parent: QWidget | None = None, rows_file: str | None = None, n_rows: int = 0,
                 base_models: list[tuple[str, str]] | None = None, out_dir: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune a model")
        self.resize(760, 640)
        self.process: QProcess | None = None
        self.steps_seen: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self.new_model: str | None = None
        self.export_quant = "Q8_0"  # the trained model is exported as GGUF and registered
        self._buffer = b""

        form = QFormLayout()
        self.data_list = QListWidget()
        self.data_list.setMaximumHeight(70)
        if rows_file:
            self.data_list.addItem(rows_file)
        self.data_label = QLabel(f"{n_rows} selected row{'s' if n_rows != 1 else ''} from the project"
                                 if rows_file else "files of grammar text, SMILES, SDF or CSV")
        add = QPushButton("Add files…")
        add.clicked.connect(self._add_files)
        data_box = QVBoxLayout()
        data_box.addWidget(self.data_label)
        data_box.addWidget(self.data_list)
        data_box.addWidget(add, 0, Qt.AlignmentFlag.AlignLeft)
        form.addRow("Data", data_box)

        self.base = QComboBox()
        self.base.setEditable(True)
        for label, value in (base_models or []):
            self.base.addItem(label, value)
        self.base.addItem("scratch (a new small model)", "scratch")
        browse = QPushButton("Hugging Face folder…")
        browse.clicked.connect(self._browse_base)
        base_row = QHBoxLayout()
        base_row.addWidget(self.base, 1)
        base_row.addWidget(browse)
        form.addRow("Base model", base_row)

        self.lora = QCheckBox("LoRA adapter (otherwise full fine-tuning); needs a Hugging Face base")
        form.addRow("Method", self.lora)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(200)
        form.addRow("Steps", self.steps)
        self.out_dir = QLineEdit(out_dir or "")
        form.addRow("Output folder", self.out_dir)
        self.export = QCheckBox("export the result as GGUF (Q8_0) and register it in the model registry")
        self.export.setChecked(True)
        form.addRow("Model", self.export)

        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2), name="training loss")
        self.val_curve = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="o",
                                        symbolSize=6, name="validation loss")
        self.status = QLabel("Not started.")
        self.status.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMaximumHeight(110)

        buttons = QHBoxLayout()
        self.command_label = QLabel()
        self.command_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start training")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.log)
        layout.addWidget(self.command_label)
        layout.addLayout(buttons)

    # -- form -------------------------------------------------------------------------------
    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Training data")
        for f in files:
            self.data_list.addItem(f)

    def _browse_base(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hugging Face checkpoint folder")
        if folder:
            self.base.addItem(folder, folder)
            self.base.setCurrentIndex(self.base.count() - 1)

    def data_files(self) -> list[str]:
        return [self.data_list.item(i).text() for i in range(self.data_list.count())]

    def base_value(self) -> str:
        data = self.base.currentData()
        text = self.base.currentText()
        if data is not None and self.base.itemText(self.base.currentIndex()) == text:
            return str(data)
        return text

    def arguments(self) -> list[str]:
        args = ["train", "--base", self.base_value(), "--data", *self.data_files(),
                "--out", self.out_dir.text().strip(), "--steps", str(self.steps.value())]
        if self.export.isChecked():
            args += ["--export", self.export_quant]
        if self.lora.isChecked():
            args.append("--lora")
        return args

    def command_line(self) -> str:
        return "logos " + " ".join(shlex.quote(a) for a in self.arguments())

    # -- running ----------------------------------------------------------------------------
    def start(self) -> bool:
        problems = []
        if not self.data_files():
            problems.append("add training data (selected rows or files)")
        if not self.out_dir.text().strip():
            problems.append("choose an output folder")
        if self.lora.isChecked() and self.base_value() == "scratch":
            problems.append("LoRA adapts an existing model: choose a Hugging Face base folder, or untick LoRA")
        for f in self.data_files():
            if not Path(f).is_file():
                problems.append(f"data file not found: {f}")
        if problems:
            self.status.setText("<span style='color:#b00020'>Cannot start: " + "; ".join(problems) + "</span>")
            return False
        self.steps_seen.clear(); self.losses.clear(); self.val_steps.clear(); self.val_losses.clear()
        self.loss_curve.setData([], [])
        self.val_curve.setData([], [])
        self.new_model = None
        self.process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._process_error)
        self.command_label.setText(self.command_line())
        self.status.setText("Starting training…")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.process.start(sys.executable, ["-m", "engine", *self.arguments()])
        return True

    def cancel(self) -> None:
        """Like Ctrl-C on ``logos train``: stop after the current step and save a checkpoint."""
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.status.setText("Cancelling (the last checkpoint is kept)…")
            import os
            import signal

            pid = self.process.processId()
            if pid and hasattr(signal, "SIGINT") and os.name == "posix":
                os.kill(pid, signal.SIGINT)
            else:
                self.process.terminate()
            if not self.process.waitForFinished(60000):
                self.process.kill()

    def _read(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self.handle_line(raw.decode(errors="replace"))

    def handle_line(self, line: str) -> None:
        if line.strip():
            self.log.appendPlainText(line.rstrip())
        ev = parse_progress(line)
        if ev is None:
            return
        if ev.get("type") in ("exported", "registered", "finished") and (ev.get("gguf") or ev.get("model")):
            self.new_model = str(ev.get("gguf") or ev.get("model"))
            return
        if ev.get("type") == "error":
            self.status.setText(f"<span style='color:#b00020'>{ev.get('message')}</span>")
            return
        step = ev.get("step")
        if step is not None and ev.get("loss") is not None:
            self.steps_seen.append(int(step))
            self.losses.append(float(ev["loss"]))
            self.loss_curve.setData(self.steps_seen, self.losses)
        if step is not None and ev.get("val_loss") is not None:
            self.val_steps.append(int(step))
            self.val_losses.append(float(ev["val_loss"]))
            self.val_curve.setData(self.val_steps, self.val_losses)
        if step is not None:
            total = ev.get("total") or ev.get("steps") or self.steps.value()
            parts = [f"step {step} of {total}"]
            if ev.get("loss") is not None:
                parts.append(f"loss {float(ev['loss']):.3f}")
            if ev.get("tokens_per_s"):
                parts.append(f"{float(ev['tokens_per_s']):,.0f} tokens/s")
            if ev.get("eta_s") is not None:
                from logos_desktop.generation.job_queue import format_eta

                parts.append(f"ETA {format_eta(float(ev['eta_s']))}")
            self.status.setText(" · ".join(parts))

    def _process_error(self, _err) -> None:
        if self.process is not None:
            self.status.setText(f"<span style='color:#b00020'>Training could not run: "
                                f"{self.process.errorString()}</span>")

    def _finished(self, code: int, _status) -> None:
        self._read()
        if self._buffer:
            self.handle_line(self._buffer.decode(errors="replace"))
            self._buffer = b""
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if code == 0:
            msg = "Training finished."
            if self.new_model:
                msg += f" New model registered: {self.new_model} (choose it in Models > Manage models)."
                self.modelRegistered.emit(self.new_model)
            self.status.setText(msg)
        elif self.status.text().startswith("Cancelling"):
            self.status.setText(f"Cancelled (exit code {code}); the checkpoints written so far are kept.")
        else:
            last = self.log.toPlainText().strip().splitlines()[-1:] or [""]
            self.status.setText(f"<span style='color:#b00020'>Training failed (exit code {code}): "
                                f"{last[0]}</span>")
        self.trainingFinished.emit(code)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.cancel()
        super().closeEvent(event)
