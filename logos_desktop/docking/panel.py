"""The Docking dock: the run's summary (the paper's mean −Vina beside the reference ligand's own
score), the pose shown in the 3D view with its checks and interactions, the histograms, the
chemical-space map and the docking settings."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from logos_desktop.docking.plots import QtChemicalSpace, QtHistograms
from logos_desktop.docking.runner import DockSettings
from logos_desktop.render.vtk_docking import SHORT, colour_of

RED = "#b00020"
GREEN = "#1b7f3b"


def _num(v) -> str:
    """A score as a chemist writes it: a real minus sign, two decimals."""
    if v is None:
        return "—"
    return f"{v:.2f}".replace("-", "−")


def summary_html(s: dict, run_label: str) -> str:
    """The rest of ``engine.docking.report.run_summary`` in words (the tiles show the three figures)."""
    line = (f"<b>{html.escape(run_label)}</b>: {s['n']} ligand{'s' if s['n'] != 1 else ''}, {s['n_valid']} valid, "
            f"<b>{s['n_docked']} docked</b>")
    if s.get("best_score") is not None:
        line += f" · best Vina {_num(s['best_score'])} kcal/mol (result {s['best_id']})"
        better = s.get("better_than_reference")
        if better is not None:
            line += (f" · {better} of {s['n_docked']} score better than "
                     f"{html.escape(str(s.get('reference_name') or 'the reference'))}")
    if s.get("reference_score") is None and s.get("reference_name"):
        line += f" · the reference {html.escape(str(s['reference_name']))} was not docked in this run"
    return line


class _Tile(QFrame):
    """A figure in large type with what it is below it."""

    def __init__(self, name: str, caption: str, colour: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setStyleSheet(f"#{name} {{ background: #f6f7f9; border: 1px solid #d0d4da; border-radius: 4px; }}")
        v = QVBoxLayout(self)
        v.setContentsMargins(6, 2, 6, 3)
        v.setSpacing(0)
        self.value = QLabel("—")
        self.value.setStyleSheet(f"font-size:17pt; font-weight:bold; color:{colour}")
        self.caption = QLabel(caption)
        self.caption.setStyleSheet("color:#333; font-size:8pt")
        self.caption.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setStyleSheet("color:#555; font-size:8pt")
        self.detail.setWordWrap(True)
        v.addWidget(self.value)
        v.addWidget(self.caption)
        v.addWidget(self.detail)

    def set(self, value: str, detail: str) -> None:
        self.value.setText(value)
        self.detail.setText(detail)


class QtDockingPictures(QWidget):
    """The run's pictures in a window of their own: four histograms beside the chemical-space map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Docking — pictures of the run")
        self.setObjectName("docking-pictures-window")
        self.resize(1400, 900)
        v = QVBoxLayout(self)
        self.title = QLabel("")
        self.title.setStyleSheet("font-size:11pt; font-weight:bold")
        self.title.setWordWrap(True)
        v.addWidget(self.title)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.histograms = QtHistograms()
        split.addWidget(self.histograms)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        head = QLabel("<b>Chemical space</b> (t-SNE of Morgan fingerprints; PCA for a handful)")
        self.map = QtChemicalSpace()
        self.map_status = QLabel("")
        self.map_status.setStyleSheet("color:#555")
        self.map_status.setWordWrap(True)
        rl.addWidget(head)
        rl.addWidget(self.map, 1)
        rl.addWidget(self.map_status)
        split.addWidget(right)
        split.setSizes([700, 700])
        v.addWidget(split, 1)

    def set_title(self, text: str) -> None:
        self.title.setText(html.escape(text))


class QtDockingPanel(QWidget):
    runChosen = Signal(int)  # run id
    poseStep = Signal(int)  # -1 previous, +1 next
    dockRequested = Signal()  # "Dock selected" (the same action as the results table's)
    settingsChanged = Signal(object)  # DockSettings

    def __init__(self, settings: DockSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        self.run_box = QComboBox()
        self.run_box.setObjectName("docking-run")
        self.run_box.setMinimumWidth(120)
        self.run_box.currentIndexChanged.connect(self._run_changed)
        top.addWidget(self.run_box, 1)
        self.pictures_button = QPushButton("Pictures…")
        self.pictures_button.setObjectName("docking-pictures")
        self.pictures_button.setToolTip("Histograms of Vina score, QED, SA and molecular weight, and the "
                                        "chemical-space map of the run's candidates beside the reference ligand")
        self.pictures_button.clicked.connect(self.show_pictures)
        top.addWidget(self.pictures_button)
        self.dock_button = QPushButton("Dock selected")
        self.dock_button.setToolTip("Dock the rows selected in the Results table into the pocket of their task")
        self.dock_button.clicked.connect(self.dockRequested.emit)
        top.addWidget(self.dock_button)
        layout.addLayout(top)
        tiles = QHBoxLayout()
        tiles.setSpacing(6)
        self.metric_tile = _Tile("tile-metric", "mean −Vina (the paper's metric)", "#1f4e79")
        self.reference_tile = _Tile("tile-reference", "−Vina of the reference ligand, docked the same way",
                                    "#7a1f1f")
        self.checks_tile = _Tile("tile-checks", "PoseBusters: best poses passing", "#2d5f2d")
        for t in (self.metric_tile, self.reference_tile, self.checks_tile):
            tiles.addWidget(t, 1)
        layout.addLayout(tiles)
        self.summary = QLabel("No docked results yet. Select rows in the Results table and press "
                              "<b>Dock selected</b>.")
        self.summary.setObjectName("docking-summary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.receptor = QLabel("")
        self.receptor.setObjectName("docking-receptor")
        self.receptor.setWordWrap(True)
        self.receptor.setStyleSheet("color:#444; font-size:9pt")
        self.receptor.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.receptor.hide()
        layout.addWidget(self.receptor)
        self.message = QLabel("")
        self.message.setObjectName("docking-message")
        self.message.setWordWrap(True)
        self.message.hide()
        layout.addWidget(self.message)

        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)
        self._build_pose_tab()
        self._build_settings_tab(settings or DockSettings())
        # the pictures of the run have their own window (they need room); the dock opens it
        self.pictures = QtDockingPictures(self)
        self.histograms = self.pictures.histograms
        self.map = self.pictures.map
        self.map_status = self.pictures.map_status

    # -- pose tab ---------------------------------------------------------------------------
    def _build_pose_tab(self) -> None:
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(2, 2, 2, 2)
        v.setSpacing(2)
        row = QHBoxLayout()
        self.prev_button = QPushButton("◀")
        self.prev_button.setToolTip("Previous pose")
        self.prev_button.setFixedWidth(34)
        self.prev_button.clicked.connect(lambda: self.poseStep.emit(-1))
        self.next_button = QPushButton("▶")
        self.next_button.setToolTip("Next pose")
        self.next_button.setFixedWidth(34)
        self.next_button.clicked.connect(lambda: self.poseStep.emit(+1))
        self.pose_title = QLabel("Click a docked result (a row with a Vina score) to see its pose in the pocket.")
        self.pose_title.setObjectName("pose-title")
        self.pose_title.setWordWrap(True)
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        row.addWidget(self.pose_title, 1)
        v.addLayout(row)
        self.checks = QLabel("")
        self.checks.setObjectName("pose-checks")
        self.checks.setWordWrap(True)
        v.addWidget(self.checks)
        self.interactions = QTableWidget(0, 3)
        self.interactions.setObjectName("pose-interactions")
        self.interactions.setHorizontalHeaderLabels(["Interaction", "Residue", "Distance (Å)"])
        self.interactions.verticalHeader().hide()
        self.interactions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.interactions.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.interactions.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.interactions.verticalHeader().setDefaultSectionSize(20)
        self.interactions.setMinimumHeight(46)
        self.interactions.setWordWrap(False)
        v.addWidget(self.interactions, 1)
        self.tabs.addTab(w, "Pose")
        self.pose_tab = w
        self.prev_button.setEnabled(False)
        self.next_button.setEnabled(False)

    def show_pose(self, result_id: int, pose, index: int, n: int, reference_name: str | None = None) -> None:
        rmsd = f" · RMSD {pose.rmsd:.2f} Å to {html.escape(reference_name or 'the reference')}" \
            if pose.rmsd is not None else ""
        self.pose_title.setText(f"<b>Result {result_id}</b> · pose {index + 1} of {n} · "
                                f"Vina <b>{_num(pose.score)}</b> kcal/mol{rmsd}")
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < n - 1)
        checks = pose.checks or {}
        fails = checks.get("failures") or []
        if checks.get("passed") is True:
            self.checks.setText(f"<span style='color:{GREEN}'>✔ passes every PoseBusters check "
                                f"({checks.get('n_checks', '?')})</span>")
        elif fails:
            items = "".join(f"<li>{html.escape(str(f.get('reason') or f.get('check')))}</li>" for f in fails)
            self.checks.setText(f"<span style='color:{RED}'>✘ fails {len(fails)} PoseBusters check"
                                f"{'s' if len(fails) != 1 else ''}:</span><ul style='margin:0'>{items}</ul>")
        else:
            self.checks.setText("PoseBusters did not check this pose")
        found = list(pose.interactions or [])
        self.interactions.setRowCount(len(found))
        for r, it in enumerate(found):
            colour = colour_of(it.get("type", ""))
            swatch = QTableWidgetItem(f"■ {it.get('label') or SHORT.get(it.get('type'), it.get('type'))}")
            from PySide6.QtGui import QBrush, QColor

            swatch.setForeground(QBrush(QColor.fromRgbF(*[c * 0.8 for c in colour])))
            self.interactions.setItem(r, 0, swatch)
            self.interactions.setItem(r, 1, QTableWidgetItem(str(it.get("residue") or "")))
            d = it.get("distance")
            self.interactions.setItem(r, 2, QTableWidgetItem("" if d is None else f"{float(d):.2f}"))
        if not found:
            self.interactions.setRowCount(0)

    def clear_pose(self, text: str | None = None) -> None:
        self.pose_title.setText(text or "Click a docked result (a row with a Vina score) to see its pose in the pocket.")
        self.checks.setText("")
        self.interactions.setRowCount(0)
        self.prev_button.setEnabled(False)
        self.next_button.setEnabled(False)

    # -- settings tab -----------------------------------------------------------------------
    def _build_settings_tab(self, s: DockSettings) -> None:
        w = QWidget()
        form = QFormLayout(w)
        self.exhaustiveness = QSpinBox()
        self.exhaustiveness.setRange(1, 64)
        self.exhaustiveness.setToolTip("How hard Vina searches each ligand (8 is Vina's default)")
        self.poses = QSpinBox()
        self.poses.setRange(1, 20)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.cpus = QSpinBox()
        self.cpus.setRange(0, 1024)
        self.cpus.setSpecialValueText("all")
        self.cpus.setToolTip("Worker processes on this computer (one ligand each); 'all' uses every CPU")
        self.scheduler = QLineEdit()
        self.scheduler.setObjectName("docking-scheduler")
        self.scheduler.setPlaceholderText("empty: this computer; or a Dask scheduler, e.g. tcp://10.0.0.5:8786")
        self.scheduler.setToolTip("Dock on a Dask cluster: the address of its scheduler (passed as --scheduler)")
        form.addRow("Exhaustiveness", self.exhaustiveness)
        form.addRow("Poses per ligand", self.poses)
        form.addRow("Seed", self.seed)
        form.addRow("CPUs", self.cpus)
        form.addRow("Dask scheduler", self.scheduler)
        self.redock = QCheckBox("dock it too, beside the candidates")
        self.redock.setObjectName("docking-redock")
        self.redock.setToolTip("Redock the complex's own ligand with the same settings: the paper compares "
                               "the candidates' mean −Vina with it, and its RMSD to the crystal pose checks "
                               "the set-up")
        form.addRow("Reference ligand", self.redock)
        note = QLabel("Docking runs as <tt>logos dock</tt> in its own process with these settings.")
        note.setWordWrap(True)
        note.setStyleSheet("color:#555")
        form.addRow(note)
        self.set_settings(s)
        scroll = QScrollArea()  # the form scrolls: it never makes the dock taller
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(w)
        for box in (self.exhaustiveness, self.poses, self.seed, self.cpus):
            box.valueChanged.connect(lambda _v: self.settingsChanged.emit(self.settings()))
        self.scheduler.editingFinished.connect(lambda: self.settingsChanged.emit(self.settings()))
        self.redock.toggled.connect(lambda _on: self.settingsChanged.emit(self.settings()))
        self.tabs.addTab(scroll, "Settings")
        self.settings_tab = scroll

    def set_settings(self, s: DockSettings) -> None:
        self.exhaustiveness.setValue(int(s.exhaustiveness))
        self.poses.setValue(int(s.poses))
        self.seed.setValue(int(s.seed))
        self.cpus.setValue(int(s.cpus or 0))
        self.scheduler.setText(s.scheduler or "")
        self.redock.setChecked(bool(s.redock))

    def settings(self) -> DockSettings:
        return DockSettings(exhaustiveness=self.exhaustiveness.value(), poses=self.poses.value(),
                            seed=self.seed.value(), cpus=self.cpus.value() or None,
                            scheduler=self.scheduler.text().strip(), redock=self.redock.isChecked())

    # -- runs and summary ---------------------------------------------------------------------
    def set_runs(self, runs: list[tuple[int, str]], current: int | None = None) -> None:
        """``runs``: (run id, label) of the runs with docked results."""
        keep = current if current is not None else self.run_box.currentData()
        self.run_box.blockSignals(True)
        self.run_box.clear()
        for rid, label in runs:
            self.run_box.addItem(label, rid)
        i = self.run_box.findData(keep)
        self.run_box.setCurrentIndex(i if i >= 0 else (0 if runs else -1))
        self.run_box.blockSignals(False)

    @property
    def run_id(self) -> int | None:
        return self.run_box.currentData()

    def choose_run(self, run_id: int) -> None:
        i = self.run_box.findData(run_id)
        if i >= 0 and i != self.run_box.currentIndex():
            self.run_box.setCurrentIndex(i)

    def _run_changed(self, _i: int) -> None:
        if self.run_box.currentData() is not None:
            self.runChosen.emit(int(self.run_box.currentData()))

    def show_summary(self, summary: dict | None, run_label: str = "") -> None:
        self.summary_data = summary
        if summary is None:
            self.summary.setText("No docked results yet. Select rows in the Results table and press "
                                 "<b>Dock selected</b>.")
            for t in (self.metric_tile, self.reference_tile, self.checks_tile):
                t.set("—", "")
            self.pictures.set_title("")
            return
        s = summary
        self.summary.setText(summary_html(s, run_label))
        self.metric_tile.set(_num(s.get("mean_neg_vina")),
                             f"kcal/mol over {s['n_docked']} valid docked sample{'s' if s['n_docked'] != 1 else ''}")
        if s.get("reference_neg_vina") is not None:
            rmsd = f" · RMSD {s['reference_rmsd']:.2f} Å" if s.get("reference_rmsd") is not None else ""
            self.reference_tile.set(_num(s["reference_neg_vina"]), f"kcal/mol, {s.get('reference_name')}{rmsd}")
        else:
            self.reference_tile.set("—", str(s.get("reference_name") or "no reference ligand"))
        if s.get("n_checked"):
            self.checks_tile.set(f"{s['n_posebusters_ok']}/{s['n_checked']}",
                                 f"{s['posebusters_share'] * 100:.0f} % pass every check")
        else:
            self.checks_tile.set("—", "not checked")
        self.pictures.set_title(f"{run_label}: {s['n_docked']} docked of {s['n_valid']} valid · mean −Vina "
                                f"{_num(s.get('mean_neg_vina'))} · reference {s.get('reference_name') or '—'} "
                                f"{_num(s.get('reference_neg_vina'))}")

    def show_pictures(self) -> None:
        self.pictures.show()
        self.pictures.raise_()
        self.pictures.activateWindow()

    def show_receptor(self, lines: list[str], name: str = "") -> None:
        if not lines:
            self.receptor.hide()
            return
        self.receptor.setText(f"<b>Receptor {html.escape(name)}</b>: " + "; ".join(html.escape(x) for x in lines))
        self.receptor.show()

    def show_message(self, text: str, error: bool = False) -> None:
        if not text:
            self.message.hide()
            return
        colour = RED if error else "#333"
        self.message.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>")
        self.message.show()


__all__ = ["QtDockingPanel", "summary_html"]
