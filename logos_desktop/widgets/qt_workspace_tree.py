"""The workspace tree: one row per loaded object (name, kind, atoms, residues, sites)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QTreeWidget, QTreeWidgetItem

COLUMNS = ("Name", "Kind", "Atoms", "Residues", "Sites")
STYLES = {
    "molecule": ("ball-and-stick", "sticks", "spacefill"),
    "crystal": ("ball-and-stick", "sticks", "spacefill"),
    "protein": ("trace", "tube", "sticks", "spacefill"),
    "complex": ("trace", "tube", "sticks", "spacefill"),
    "sequence": (),
}


class QtWorkspaceTree(QTreeWidget):
    removeRequested = Signal(int)

    def __init__(self, workspace, parent=None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self._rows: dict[int, QTreeWidgetItem] = {}
        self._syncing = False
        workspace.itemsChanged.connect(self.sync)
        workspace.itemChanged.connect(self._update_row)
        workspace.currentChanged.connect(self._select_current)
        self.currentItemChanged.connect(self._current_row_changed)
        self.itemChanged.connect(self._check_changed)

    def row_texts(self) -> list[list[str]]:
        """The visible text of every row (for tests and accessibility)."""
        return [[self.topLevelItem(r).text(c) for c in range(len(COLUMNS))] for r in range(self.topLevelItemCount())]

    def sync(self) -> None:
        self._syncing = True
        self.clear()
        self._rows = {}
        for item in self.workspace.items():
            row = QTreeWidgetItem()
            row.setData(0, Qt.ItemDataRole.UserRole, item.id)
            row.setFlags(row.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            self._fill(row, item)
            self.addTopLevelItem(row)
            self._rows[item.id] = row
        for c in range(len(COLUMNS)):
            self.resizeColumnToContents(c)
        self._syncing = False
        self._select_current(self.workspace.current().id if self.workspace.current() else -1)

    def _fill(self, row: QTreeWidgetItem, item) -> None:
        s = item.summary()
        row.setText(0, item.name)
        row.setText(1, item.kind)
        for col, key in ((2, "atoms"), (3, "residues"), (4, "sites")):
            row.setText(col, f"{s.get(key, 0):,}" if s.get(key) else "–")
            row.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.setCheckState(0, Qt.CheckState.Checked if item.visible else Qt.CheckState.Unchecked)
        src = str(item.obj.source) if item.obj.source else "pasted text"
        tip = f"{src} ({item.obj.fmt}); shown as {item.style}"
        if item.obj.warnings:
            tip += "\n" + "\n".join(f"• {w}" for w in item.obj.warnings[:12])
        row.setToolTip(0, tip)

    def _update_row(self, item_id: int) -> None:
        row, item = self._rows.get(item_id), self.workspace.item(item_id)
        if row is not None and item is not None:
            self._syncing = True
            self._fill(row, item)
            self._syncing = False

    def _select_current(self, item_id: int) -> None:
        row = self._rows.get(item_id)
        if row is not None and self.currentItem() is not row:
            self._syncing = True
            self.setCurrentItem(row)
            self._syncing = False

    def _current_row_changed(self, row, _prev) -> None:
        if row is not None and not self._syncing:
            self.workspace.set_current(row.data(0, Qt.ItemDataRole.UserRole))

    def _check_changed(self, row, column) -> None:
        if column == 0 and not self._syncing:
            self.workspace.set_visible(row.data(0, Qt.ItemDataRole.UserRole),
                                       row.checkState(0) == Qt.CheckState.Checked)

    def _menu(self, pos) -> None:
        row = self.itemAt(pos)
        if row is None:
            return
        item = self.workspace.item(row.data(0, Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        for style in STYLES.get(item.kind, ()):
            act = QAction(f"Show as {style}", menu, checkable=True, checked=item.style == style)
            act.triggered.connect(lambda _=False, s=style, i=item.id: self.workspace.set_style(i, s))
            menu.addAction(act)
        menu.addSeparator()
        remove = menu.addAction("Remove from workspace")
        remove.triggered.connect(lambda: self.removeRequested.emit(item.id))
        menu.popup(self.viewport().mapToGlobal(pos))
