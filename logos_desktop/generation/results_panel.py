"""The results dock: search, filters, the lazily paged table, and actions on the selected rows."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from logos_desktop.generation.results_model import COL, ResultsTableModel
from logos_desktop.generation.results_source import ResultRow
from logos_desktop.generation.thumbnails import THUMB_SIZE


class QtResultsPanel(QWidget):
    """Rows of the open project. Emits the selected rows; the controller acts on them."""

    selectionChanged = Signal(list)  # list[ResultRow]
    exportRequested = Signal(list)  # list[int] result ids ([] = every row that matches the filter)
    tagRequested = Signal(list)
    fineTuneRequested = Signal(list)
    dockRequested = Signal(list)  # list[int] result ids: dock them into their task's pocket
    keepRequested = Signal()  # keep the result shown in the views as an ordinary workspace object

    def __init__(self, model: ResultsTableModel | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model or ResultsTableModel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)

        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search SMILES, sequence or record…")
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self._apply_search)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.validity = QComboBox()
        self.validity.addItems(["All rows", "Valid only", "Invalid only"])
        self.validity.currentIndexChanged.connect(self._apply_validity)
        self.task_filter = QComboBox()
        self.task_filter.addItem("All tasks", None)
        self.task_filter.currentIndexChanged.connect(
            lambda _i: self.model.set_filter(task=self.task_filter.currentData()))
        self.run_filter = QComboBox()
        self.run_filter.setObjectName("run-filter")
        self.run_filter.setToolTip("Show the rows of one run")
        self.run_filter.addItem("All runs", None)
        self.run_filter.currentIndexChanged.connect(
            lambda _i: self.model.set_filter(run_id=self.run_filter.currentData()))
        self.count_label = QLabel()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.validity)
        bar.addWidget(self.task_filter)
        bar.addWidget(self.run_filter)
        bar.addWidget(self.count_label)
        layout.addLayout(bar)

        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.horizontalHeader().setSortIndicator(COL["#"], Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setIconSize(THUMB_SIZE)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        vh = self.view.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(THUMB_SIZE.height() + 6)
        hh = self.view.horizontalHeader()
        hh.setStretchLastSection(True)
        self._sorted_column = COL["#"]
        hh.sortIndicatorChanged.connect(self._sort_indicator_changed)
        for title, width in (("Structure", THUMB_SIZE.width() + 8), ("#", 48), ("SMILES / sequence", 230),
                             ("Valid", 150), ("QED", 52), ("SA", 52), ("Vina", 58), ("PoseBusters", 92),
                             ("Scores", 160),
                             ("Perplexity", 78), ("Task", 70), ("Run", 40), ("Time", 140), ("Tags", 80)):
            self.view.setColumnWidth(COL[title], width)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.context_menu: QMenu | None = None
        layout.addWidget(self.view, 1)

        actions = QHBoxLayout()
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export the selected rows (or all matching rows) to SDF, CSV, FASTA or CIF")
        self.export_button.clicked.connect(lambda: self.exportRequested.emit(self.selected_ids()))
        self.tag_button = QPushButton("Tag…")
        self.tag_button.clicked.connect(lambda: self.tagRequested.emit(self.selected_ids()))
        self.finetune_button = QPushButton("Fine-tune on these…")
        self.finetune_button.setToolTip("Open the training dialog with the selected rows as data")
        self.finetune_button.clicked.connect(lambda: self.fineTuneRequested.emit(self.selected_ids()))
        self.dock_button = QPushButton("Dock selected")
        self.dock_button.setObjectName("dock-selected")
        self.dock_button.setToolTip("Dock the selected results into the pocket of their ligand-design task "
                                    "(AutoDock Vina, in its own process); the scores and poses come back here")
        self.dock_button.clicked.connect(lambda: self.dockRequested.emit(self.selected_ids()))
        self.keep_button = QPushButton("Keep in workspace")
        self.keep_button.setObjectName("keep-result")
        self.keep_button.setToolTip("Keep the result shown in the views as a workspace object (the next "
                                    "result you click no longer replaces it)")
        self.keep_button.clicked.connect(self.keepRequested.emit)
        for b in (self.export_button, self.tag_button, self.dock_button, self.finetune_button, self.keep_button):
            actions.addWidget(b)
        actions.addStretch(1)
        layout.addLayout(actions)

        self.model.countChanged.connect(self._update_count)
        self.model.modelReset.connect(self._update_count)
        self.model.rowsInserted.connect(self._update_count)
        self._update_count()
        self._selection_changed()

    def set_tasks(self, tasks: list[str]) -> None:
        current = self.task_filter.currentData()
        self.task_filter.blockSignals(True)
        self.task_filter.clear()
        self.task_filter.addItem("All tasks", None)
        for t in tasks:
            self.task_filter.addItem(t, t)
        idx = self.task_filter.findData(current)
        self.task_filter.setCurrentIndex(max(idx, 0))
        self.task_filter.blockSignals(False)

    def set_runs(self, runs) -> None:
        """The run filter's choices: ``runs`` are the project's runs (``RunInfo``), newest first."""
        current = self.run_filter.currentData()
        self.run_filter.blockSignals(True)
        self.run_filter.clear()
        self.run_filter.addItem("All runs", None)
        for r in runs:
            n = f" · {r.n_results} rows" if r.n_results is not None else ""
            self.run_filter.addItem(f"run {r.id} · {r.task}{n}", r.id)
        idx = self.run_filter.findData(current)
        self.run_filter.setCurrentIndex(max(idx, 0))
        self.run_filter.blockSignals(False)
        if idx < 0 and current is not None:  # the run it showed is gone (another project)
            self.model.set_filter(run_id=None)

    def set_run_filter(self, run_id: int | None) -> None:
        self.run_filter.setCurrentIndex(max(self.run_filter.findData(run_id), 0))

    def sort_newest_run_first(self) -> None:
        self.view.horizontalHeader().setSortIndicator(COL["Run"], Qt.SortOrder.DescendingOrder)

    def _sort_indicator_changed(self, column: int, order) -> None:
        """A first click on the Run header sorts newest run first (Qt starts every column ascending)."""
        first_click = column != self._sorted_column
        self._sorted_column = column
        if first_click and column == COL["Run"] and order == Qt.SortOrder.AscendingOrder:
            QTimer.singleShot(0, self.sort_newest_run_first)

    def _apply_search(self) -> None:
        self.model.set_filter(text=self.search.text().strip())

    def _apply_validity(self, index: int) -> None:
        self.model.set_filter(valid={0: None, 1: True, 2: False}[index])

    def _update_count(self, *_args) -> None:
        n = self.model.total
        if self.model.source is None:
            self.count_label.setText("no project open")
        else:
            self.count_label.setText(f"{n:,} row{'s' if n != 1 else ''}")

    def selected_rows(self) -> list[ResultRow]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        out = []
        for r in rows:
            row = self.model.row(r)
            if row is not None:
                out.append(row)
        return out

    def selected_ids(self) -> list[int]:
        return [r.id for r in self.selected_rows()]

    def build_context_menu(self) -> QMenu:
        """The actions on the selected rows (right click on the table)."""
        menu = QMenu(self.view)
        ids = self.selected_ids()
        n = len(ids)
        dock = menu.addAction(f"Dock selected ({n})" if n else "Dock selected")
        dock.setObjectName("context-dock")
        dock.setEnabled(bool(n))
        dock.triggered.connect(lambda: self.dockRequested.emit(self.selected_ids()))
        menu.addSeparator()
        export = menu.addAction(self.export_button.text())
        export.triggered.connect(lambda: self.exportRequested.emit(self.selected_ids()))
        tag = menu.addAction("Tag…")
        tag.setEnabled(bool(n))
        tag.triggered.connect(lambda: self.tagRequested.emit(self.selected_ids()))
        tune = menu.addAction("Fine-tune on these…")
        tune.setEnabled(bool(n))
        tune.triggered.connect(lambda: self.fineTuneRequested.emit(self.selected_ids()))
        return menu

    def _context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isRowSelected(index.row(), index.parent()):
            self.view.selectRow(index.row())
        self.context_menu = self.build_context_menu()
        self.context_menu.popup(self.view.viewport().mapToGlobal(pos))

    def select_result(self, result_id: int, hint=QAbstractItemView.ScrollHint.PositionAtCenter) -> bool:
        """Select (and scroll to) the row of ``result_id``; False when no row of the table has it."""
        r = self.model.locate(result_id)
        if r is None:
            return False
        index = self.model.index(r, 0)
        self.view.selectionModel().select(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                          | QItemSelectionModel.SelectionFlag.Rows)
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.view.scrollTo(index, hint)
        return True

    def scroll_to_result(self, result_id: int) -> bool:
        """Scroll the row of ``result_id`` into view (the selection stays as it is)."""
        r = self.model.locate(result_id)
        if r is None:
            return False
        self.view.scrollTo(self.model.index(r, 1), QAbstractItemView.ScrollHint.PositionAtTop)
        return True

    def show_new_result(self, result_id: int) -> bool:
        """A new run's first row: selected and scrolled into view (a run filter that hides it is
        cleared first)."""
        if self.select_result(result_id, QAbstractItemView.ScrollHint.PositionAtTop):
            return True
        if self.run_filter.currentData() is not None:
            self.set_run_filter(None)
            return self.select_result(result_id, QAbstractItemView.ScrollHint.PositionAtTop)
        return False

    def _selection_changed(self, *_args) -> None:
        rows = self.selected_rows()
        self.tag_button.setEnabled(bool(rows))
        self.finetune_button.setEnabled(bool(rows))
        self.dock_button.setEnabled(bool(rows))
        self.keep_button.setEnabled(bool(rows))
        self.dock_button.setText(f"Dock {len(rows)} selected" if len(rows) > 1 else "Dock selected")
        self.export_button.setText(f"Export {len(rows)} selected…" if rows else "Export all…")
        self.selectionChanged.emit(rows)
