"""The Generate panel: task picker, inputs from the selection, parameters, Show prompt, Run.

Everything task-specific (which inputs, options schema, default sampling, prompt) comes from the
engine's task registry through ``TaskCatalog``; this panel only draws it.
"""

from __future__ import annotations

import html
import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from logos_desktop.generation.options_form import OptionsForm
from logos_desktop.generation.task_catalog import GenerationRequest, TaskCatalog, TaskInput
from logos_desktop.widgets.qt_elided import QtElidedLabel


class PromptDialog(QDialog):
    """Shows the exact prompt the engine will send; the user may edit it."""

    def __init__(self, prompt: str, stop: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Prompt")
        self.resize(720, 360)
        self.stop = stop
        layout = QVBoxLayout(self)
        info = QLabel("This is the exact text sent to the model" + (f"; each sample stops at "
                      f"<tt>{html.escape(stop)}</tt>" if stop else "") + ". Edit it to change what is generated; the edited prompt is "
                      "stored with every row of the run.")
        info.setWordWrap(True)
        self.editor = QPlainTextEdit(prompt)
        self.editor.setObjectName("prompt-editor")
        font = self.editor.font()
        font.setFamily("monospace")
        self.editor.setFont(font)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.Reset)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.original = prompt
        buttons.button(QDialogButtonBox.StandardButton.Reset).clicked.connect(
            lambda: self.editor.setPlainText(self.original))
        layout.addWidget(info)
        layout.addWidget(self.editor, 1)
        layout.addWidget(buttons)

    def prompt(self) -> str:
        return self.editor.toPlainText()


class QtGeneratePanel(QWidget):
    runRequested = Signal(object)  # GenerationRequest
    # the ligand task's pocket: (object, ligand spec, cutoff Å or None, picked in the task options);
    # the controller has the workspace mark it, so the pocket shown is the pocket sent
    pocketChanged = Signal(object, str, object, bool)

    def __init__(self, catalog: TaskCatalog, selection_provider, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.selection_provider = selection_provider
        self.current_input: TaskInput | None = None
        self.input_problem: str | None = None
        self.prompt_override: str | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        layout = QVBoxLayout(body)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        top = QFormLayout()
        self.task = QComboBox()
        self.task.setObjectName("task-picker")
        for name in catalog.names():
            self.task.addItem(catalog.label(name), name)
        self.task.currentIndexChanged.connect(self._task_changed)
        top.addRow("Task", self.task)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color:#555")
        top.addRow(self.description)
        # what the loaded model can do for this task: the line of its card (engine.models.card),
        # exactly as the engine sent it with model_loaded; the details are in the tooltip
        self.capability = QLabel()
        self.capability.setObjectName("task-capability")
        self.capability.setWordWrap(True)
        self.capability.setTextFormat(Qt.TextFormat.RichText)
        top.addRow(self.capability)
        self.model_event: dict | None = None
        layout.addLayout(top)

        box = QGroupBox("Input (from the selection)")
        bl = QVBoxLayout(box)
        self.input_label = QLabel()
        self.input_label.setObjectName("input-label")
        self.input_label.setWordWrap(True)
        self.input_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        refresh = QPushButton("Use current selection")
        refresh.setObjectName("use-selection")
        refresh.setToolTip("Take the task's input from what is selected in the workspace now "
                           "(a result shown in the views included)")
        refresh.clicked.connect(self.refresh_inputs)
        self.use_selection_button = refresh
        bl.addWidget(self.input_label)
        bl.addWidget(refresh, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(box)

        samp = QGroupBox("Samples and sampling")
        sl = QFormLayout(samp)
        sl.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.n = QSpinBox()
        self.n.setObjectName("samples")
        self.n.setRange(1, 10000)
        sl.addRow("Samples (N)", self.n)
        seed_row = QHBoxLayout()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(1234)
        self.random_seed = QCheckBox("random")
        self.random_seed.setToolTip("draw a new seed after each run")
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        sl.addRow("Seed", seed_row)
        self.sampling = OptionsForm()
        sl.addRow(self.sampling)
        layout.addWidget(samp)

        opts = QGroupBox("Task options")
        ol = QVBoxLayout(opts)
        self.options = OptionsForm()
        self.options.changed.connect(self._options_changed)
        self._schema = None
        ol.addWidget(self.options)
        self.dock_after = QCheckBox("Dock valid results when done")
        self.dock_after.setObjectName("dock-after")
        self.dock_after.setToolTip("Dock this run's valid ligands into the same pocket with AutoDock Vina "
                                   "(logos dock, in its own process; Docking › Docking settings apply)")
        ol.addWidget(self.dock_after)
        self.options_box = opts
        layout.addWidget(opts)
        layout.addStretch(1)

        self.message = QLabel()
        self.message.setObjectName("generate-message")
        self.message.setWordWrap(True)
        # the equivalent command line: one elided line (a pocket of many residues makes it long;
        # it never widens the dock), the full text in the tooltip and behind Copy
        self.command = QtElidedLabel()
        self.command.setObjectName("command-line")
        self.command.setStyleSheet("color:#555; font-family:monospace; font-size:9pt")
        self.copy_command_button = QPushButton("Copy")
        self.copy_command_button.setObjectName("copy-command")
        self.copy_command_button.setToolTip("Copy the equivalent logos generate command")
        self.copy_command_button.clicked.connect(self.copy_command)
        command_row = QHBoxLayout()
        command_row.addWidget(self.command, 1)
        command_row.addWidget(self.copy_command_button)
        buttons = QHBoxLayout()
        self.show_prompt_button = QPushButton("Show prompt…")
        self.show_prompt_button.clicked.connect(self.show_prompt)
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("run-button")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        buttons.addWidget(self.show_prompt_button)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        outer.addWidget(self.message)
        outer.addLayout(command_row)
        outer.addLayout(buttons)
        if self.task.count():
            self._task_changed()

    # -- state ------------------------------------------------------------------------------
    @property
    def task_name(self) -> str | None:
        return self.task.currentData()

    def set_task(self, name: str) -> None:
        i = self.task.findData(name)
        if i < 0:
            raise KeyError(name)
        self.task.setCurrentIndex(i)

    def _task_changed(self, *_args) -> None:
        name = self.task_name
        if name is None:
            return
        self.prompt_override = None
        self.description.setText(self.catalog.description(name))
        self._update_capability()
        self.n.setValue(self.catalog.default_n(name))
        self.sampling.set_schema(self.catalog.sampling_schema(name))
        schema = self._schema = self.catalog.options_schema(name, self.selection_provider())
        self.options.set_schema(schema)
        pocket = self.catalog.input_kind(name) == "pocket"
        self.dock_after.setVisible(pocket)
        self.options_box.setVisible(bool(self.options.editors) or pocket)
        self.refresh_inputs()

    def set_model(self, model_loaded: dict | None) -> None:
        """The engine's ``model_loaded`` event (with the model's ``card``), or None when no model is
        loaded; the line next to the task follows it."""
        self.model_event = dict(model_loaded) if model_loaded else None
        self._update_capability()

    def capability_entry(self, task: str | None = None) -> dict | None:
        """The card's entry for ``task`` (default: the selected one) as the engine sent it."""
        task = task or self.task_name
        card = (self.model_event or {}).get("card") or {}
        return (card.get("tasks") or {}).get(task) if task else None

    def _update_capability(self) -> None:
        if self.model_event is None:
            self.capability.setText("<span style='color:#777'>model: not loaded yet</span>")
            self.capability.setToolTip("")
            return
        from pathlib import Path

        model = Path(str(self.model_event.get("path") or "remote model")).name
        entry = self.capability_entry()
        if entry is None:
            line, status, details = "unknown: the engine sent no card for this task", "unknown", []
        else:
            line, status = str(entry.get("line", "")), str(entry.get("status", "unknown"))
            details = [str(d) for d in entry.get("details") or []]
        colour, mark = _STATUS_STYLE.get(status, _STATUS_STYLE["unknown"])
        self.capability.setText(f"<span style='color:{colour}'>{mark} <b>{html.escape(model)}</b>: "
                                f"{html.escape(line)}</span>")
        self.capability.setToolTip("\n".join([f"{model} — {status.replace('_', ' ')}", *details]))

    def capability_text(self) -> str:
        """The line shown next to the task, as plain text."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.capability.text())
        return doc.toPlainText()

    def refresh_inputs(self) -> None:
        name = self.task_name
        if name is None:
            return
        self.prompt_override = None
        sel = self.selection_provider()
        self.current_input, self.input_problem = self.catalog.inputs_from_selection(name, sel)
        if self.input_problem:
            self.input_label.setText(f"<span style='color:#b00020'>{self.input_problem}</span>")
        elif self.current_input is None or not self.current_input.needed:
            self.input_label.setText("No input needed: this task generates from scratch.")
        else:
            self.input_label.setText(self.current_input.description)
        self.message.setText("")
        schema = self.catalog.options_schema(name, sel)  # the ligand choice follows the structure
        if schema != self._schema:
            self._schema = schema
            self.options.set_schema(schema, self.options.values())
        self._follow_pocket()
        self._update_command()

    def _follow_pocket(self, picked: str | None = None) -> None:
        """A pocket around a ligand: the ligand choice shows it and the workspace marks it (or the
        ligand ``picked`` in the task options, which the input then follows)."""
        got = self.catalog.pocket_of_input(self.current_input)
        if got is None:
            return
        obj, spec = got
        _kind, combo = self.options.editors.get("ligand", (None, None))
        if combo is not None and picked is None and combo.currentData() != spec:
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(spec)))
            combo.blockSignals(False)
        self.pocketChanged.emit(obj, picked or spec, self.options.values().get("cutoff"), picked is not None)

    def _options_changed(self) -> None:
        got = self.catalog.pocket_of_input(self.current_input)
        picked = self.options.values().get("ligand")
        self._follow_pocket(picked if got is not None and picked and picked != got[1] else None)
        self._update_command()

    def request(self) -> GenerationRequest | None:
        name = self.task_name
        if name is None:
            return None
        if self.input_problem:
            return None
        seed = self.seed.value()
        defaults = self.catalog.sampling_defaults(name)
        sampling = {k: v for k, v in self.sampling.values().items() if defaults.get(k) != v}
        return GenerationRequest(task=name, input=self.current_input, options=self.options.values(),
                                 n=self.n.value(), seed=seed, sampling=sampling,
                                 prompt=self.prompt_override,
                                 dock_after=self.dock_after.isChecked() and self.dock_after.isVisibleTo(self))

    def _update_command(self) -> None:
        req = self.request()
        self.command.set_full_text(req.command_line() if req else "")
        self.copy_command_button.setEnabled(bool(self.command.full_text()))

    def command_line_text(self) -> str:
        """The full equivalent command line (the label shows it elided)."""
        return self.command.full_text()

    def copy_command(self) -> None:
        from PySide6.QtWidgets import QApplication

        QApplication.clipboard().setText(self.command.full_text())
        self.message.setText("Command line copied.")

    # -- actions ----------------------------------------------------------------------------
    def show_prompt(self) -> None:
        self.refresh_inputs_keep_prompt()
        if self.input_problem:
            self.message.setText(f"<span style='color:#b00020'>{self.input_problem}</span>")
            return
        req = self.request()
        try:
            prompt = self.prompt_override or self.catalog.build_prompt(req)
        except Exception as exc:  # noqa: BLE001 - a bad input is explained, never raised into Qt
            self.message.setText(f"<span style='color:#b00020'>Cannot build the prompt: {exc}</span>")
            return
        dlg = PromptDialog(prompt, self.catalog.stop(req), self)
        self.prompt_dialog = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.set_prompt_override(dlg.prompt(), original=prompt)

    def set_prompt_override(self, text: str, original: str | None = None) -> None:
        self.prompt_override = None if original is not None and text == original else text
        self.message.setText("Using your edited prompt." if self.prompt_override else "")
        self._update_command()

    def refresh_inputs_keep_prompt(self) -> None:
        """Re-read the selection; an edited prompt is kept only while the input stays the same."""
        keep = self.prompt_override
        before = _input_key(self.current_input)
        self.refresh_inputs()
        if keep is not None and _input_key(self.current_input) == before:
            self.prompt_override = keep
            self.message.setText("Using your edited prompt.")
            self._update_command()
        elif keep is not None:
            self.message.setText("The selection changed: the edited prompt was dropped.")

    def run(self) -> GenerationRequest | None:
        self.refresh_inputs_keep_prompt()
        if self.input_problem:
            self.message.setText(f"<span style='color:#b00020'>Cannot run {self.catalog.label(self.task_name)}: "
                                 f"{self.input_problem}</span>")
            return None
        req = self.request()
        if req is None:
            return None
        self._update_command()
        self.message.setText(f"Queued {req.n} samples of {self.catalog.label(req.task)}.")
        self.runRequested.emit(req)
        if self.random_seed.isChecked():
            self.seed.setValue(random.randint(0, 2**31 - 1))
        return req


# card status -> (colour, mark) of the line next to the task
_STATUS_STYLE = {
    "trained": ("#1b5e20", "✓"),
    "not_learnt": ("#b00020", "⚠"),
    "not_trained": ("#b00020", "⚠"),
    "unknown": ("#8a6d00", "?"),
}


def _input_key(inp: TaskInput | None):
    if inp is None:
        return None
    return (repr(sorted(inp.payload.items())), repr(sorted(inp.options.items())))
