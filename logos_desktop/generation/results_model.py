"""The results table: a Qt table model that pages lazily through the project store.

Rows are never all copied into Qt: the model knows the total from a count query and fetches
pages of ``PAGE`` rows on demand (only the rows a view paints are ever read). Sorting, the
validity/task/run filters and the text search are passed down to the store query.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from logos_desktop.generation.results_source import ResultFilter, ResultRow, ResultSource
from logos_desktop.generation.thumbnails import THUMB_SIZE, ThumbnailCache

PAGE = 200
MAX_PAGES = 50  # pages kept in memory (LRU); a 100k-row project is never held whole
PICTURES_KEPT = 500  # drawn pictures of non-molecule rows kept (LRU)


@dataclass(frozen=True)
class Column:
    key: str  # store sort key ("" = not sortable)
    title: str
    tip: str = ""


COLUMNS = [
    Column("", "Structure", "2D depiction (RDKit); a material's metal node and linkers, a sequence with its "
                            "pocket residues, a retrosynthesis's reaction"),
    Column("id", "#", "result id in the project"),
    Column("smiles", "SMILES / sequence", "canonical SMILES, sequence or material record"),
    Column("valid", "Valid", "validity checks; the tooltip lists the failed rules"),
    Column("score:qed", "QED", "quantitative estimate of drug-likeness"),
    Column("score:sa", "SA", "synthetic accessibility (1 easy … 10 hard)"),
    Column("score:vina", "Vina", "AutoDock Vina score of the best docked pose, kcal/mol (lower binds better)"),
    Column("score:posebusters_ok", "PoseBusters",
           "PoseBusters plausibility checks of the best docked pose; the tooltip lists the failed checks"),
    Column("", "Scores", "every score the task computed"),
    Column("ppl", "Perplexity", "perplexity of the generated text under the model"),
    Column("task", "Task"),
    Column("run_id", "Run"),
    Column("created_at", "Time"),
    Column("", "Tags"),
    Column("record", "Record", "the record exactly as the model wrote it"),
]
COL = {c.title: i for i, c in enumerate(COLUMNS)}

_GREEN = QColor("#1b7f3b")
_RED = QColor("#b00020")
_GREY = QColor("#777777")

# scores shown in their own columns (not repeated in "Scores")
OWN_COLUMNS = {"qed", "sa", "sa_score", "vina", "posebusters_ok"}


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def posebusters_verdict(row: ResultRow) -> bool | None:
    """The stored PoseBusters verdict of a docked row: True (passes), False (fails), None (not checked)."""
    v = (row.scores or {}).get("posebusters_ok")
    if v is None or isinstance(v, str):
        return None
    return bool(v)


def _score(row: ResultRow, *names: str):
    scores = row.scores or {}
    for n in names:
        if n in scores:
            return scores[n]
    return None


class ResultsTableModel(QAbstractTableModel):
    """Rows of the current project that match ``filter``, sorted by ``sort_key``."""

    countChanged = Signal(int)

    def __init__(self, source: ResultSource | None = None, parent=None) -> None:
        super().__init__(parent)
        self.source = source
        self.filter = ResultFilter()
        self.sort_key = "id"
        self.descending = False
        self._total = 0
        self._pages: OrderedDict[int, list[ResultRow]] = OrderedDict()
        self.thumbs = ThumbnailCache()
        self._pictures: OrderedDict[str, object] = OrderedDict()  # record -> QPixmap | None
        self._parts: OrderedDict[str, dict | None] = OrderedDict()  # record -> engine picture
        self.page_queries = 0  # how many page queries ran (tests check that paging is lazy)
        self._reload()

    # -- data source ------------------------------------------------------------------------
    def set_source(self, source: ResultSource | None) -> None:
        self.beginResetModel()
        self.source = source
        self._reload()
        self.endResetModel()
        self.countChanged.emit(self._total)

    def set_filter(self, **changes) -> None:
        new = replace(self.filter, **changes)
        if new == self.filter:
            return
        self.beginResetModel()
        self.filter = new
        self._reload()
        self.endResetModel()
        self.countChanged.emit(self._total)

    def _forget(self) -> None:
        forget = getattr(self.source, "forget", None)
        if forget is not None:
            forget()

    def _reload(self) -> None:
        self._forget()
        self._pages.clear()
        self._total = self.source.count(self.filter) if self.source is not None else 0

    def refresh(self) -> None:
        """New rows may have been written (by the engine process): pick them up.

        With the default order (oldest first, no text search) new rows land at the end, so they
        are appended without disturbing the selection; otherwise the model is reset.
        """
        if self.source is None:
            return
        self._forget()
        total = self.source.count(self.filter)
        if total == self._total:
            return
        if total > self._total and self.sort_key == "id" and not self.descending:
            last_page = (self._total - 1) // PAGE if self._total else 0
            self._pages.pop(last_page, None)
            self.beginInsertRows(QModelIndex(), self._total, total - 1)
            self._total = total
            self.endInsertRows()
        else:
            self.beginResetModel()
            self._pages.clear()
            self._total = total
            self.endResetModel()
        self.countChanged.emit(self._total)

    def reload_rows(self) -> None:
        """Rows changed in place (tags, notes, docking scores): read them again, keeping the selection."""
        self._forget()
        self._pages.clear()
        if self._total:
            self.dataChanged.emit(self.index(0, 0), self.index(self._total - 1, len(COLUMNS) - 1))

    def row(self, r: int) -> ResultRow | None:
        if self.source is None or not 0 <= r < self._total:
            return None
        page_no = r // PAGE
        page = self._pages.get(page_no)
        if page is None:
            page = self.source.fetch(self.filter, self.sort_key, self.descending, page_no * PAGE, PAGE)
            self.page_queries += 1
            self._pages[page_no] = page
            if len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        i = r - page_no * PAGE
        return page[i] if i < len(page) else None

    def row_of_id(self, result_id: int) -> int | None:
        for page_no, page in self._pages.items():
            for i, row in enumerate(page):
                if row.id == result_id:
                    return page_no * PAGE + i
        return None

    def locate(self, result_id: int, max_rows: int = 20000) -> int | None:
        """The table row of ``result_id``: from the pages already read, else reading pages in order
        (at most ``max_rows`` rows); None when it is not among them."""
        found = self.row_of_id(result_id)
        if found is not None:
            return found
        for start in range(0, min(self._total, max_rows), PAGE):
            row = self.row(start)  # reads the page
            if row is None:
                break
            found = self.row_of_id(result_id)
            if found is not None:
                return found
        return None

    @property
    def total(self) -> int:
        return self._total

    # -- Qt model API -----------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self._total

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal:
            col = COLUMNS[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return col.title
            if role == Qt.ItemDataRole.ToolTipRole:
                return col.tip + ("" if col.key else " (not sortable)")
        elif role == Qt.ItemDataRole.DisplayRole:
            return str(section + 1)
        return None

    def flags(self, index):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        key = COLUMNS[column].key
        if not key:
            return
        descending = order == Qt.SortOrder.DescendingOrder
        if (key, descending) == (self.sort_key, self.descending):
            return
        self.layoutAboutToBeChanged.emit()
        self.sort_key, self.descending = key, descending
        self._pages.clear()
        self.layoutChanged.emit()

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.row(index.row())
        if row is None:
            return None
        title = COLUMNS[index.column()].title
        if role == Qt.ItemDataRole.UserRole:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, title)
        if role == Qt.ItemDataRole.DecorationRole and title == "Structure":
            # only rows that passed validation are drawn: a failed row's text may parse partly
            if not row.valid:
                return None
            return self.thumbs.get(row.smiles) if row.smiles else self.picture(row)
        if role == Qt.ItemDataRole.SizeHintRole and title == "Structure":
            return QSize(THUMB_SIZE.width() + 4, THUMB_SIZE.height() + 4)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, title)
        if role == Qt.ItemDataRole.ForegroundRole and title == "Valid":
            return QBrush(_GREEN if row.valid else _RED)
        if role == Qt.ItemDataRole.ForegroundRole and title == "PoseBusters":
            verdict = posebusters_verdict(row)
            return QBrush(_GREY if verdict is None else _GREEN if verdict else _RED)
        if role == Qt.ItemDataRole.FontRole and title in ("Valid", "PoseBusters"):
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.TextAlignmentRole and title in ("QED", "SA", "Vina", "Perplexity", "#", "Run"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def picture(self, row: ResultRow):
        """The thumbnail of a row that is not a molecule: its material, sequence or reaction as the
        engine decodes it (``engine.grammar.pictures``), drawn once and kept by record."""
        key = row.record or f"#{row.id}"
        if key in self._pictures:
            self._pictures.move_to_end(key)
            return self._pictures[key]
        from logos_desktop.widgets.qt_view2d import picture_pixmap

        try:
            pix = picture_pixmap(self.parts(row), THUMB_SIZE, small=True)
        except Exception:  # noqa: BLE001 - a row the engine cannot decode gets no picture, not a crash
            pix = None
        self._pictures[key] = pix
        if len(self._pictures) > PICTURES_KEPT:
            self._pictures.popitem(last=False)
        return pix

    def parts(self, row: ResultRow) -> dict | None:
        """What the engine says the row is made of (``engine.grammar.pictures``), kept by record."""
        key = row.record or f"#{row.id}"
        if key in self._parts:
            self._parts.move_to_end(key)
            return self._parts[key]
        from logos_desktop.generation.preview import row_picture

        try:
            found = row_picture(row)
        except Exception:  # noqa: BLE001
            found = None
        self._parts[key] = found
        if len(self._parts) > PICTURES_KEPT:
            self._parts.popitem(last=False)
        return found

    def _text(self, row: ResultRow) -> str:
        """SMILES or sequence; a material as its node and linkers, a retrosynthesis as its reaction."""
        if row.smiles or row.sequence:
            return row.text
        parts = self.parts(row) if row.valid else None
        if parts and parts.get("kind") == "material":
            return f"{parts.get('metal') or '?'} + " + ".".join(parts.get("linkers") or [])
        if parts and parts.get("kind") == "reaction":
            return ".".join(parts.get("reactants") or []) + ">>" + ".".join(parts.get("products") or [])
        return row.text

    def _display(self, row: ResultRow, title: str):
        if title == "#":
            return str(row.id)
        if title == "SMILES / sequence":
            return self._text(row)
        if title == "Valid":
            if row.valid:
                return "✔ valid"
            first = row.reasons[0] if row.reasons else "invalid"
            return f"✘ {first}" + (f" (+{len(row.reasons) - 1})" if len(row.reasons) > 1 else "")
        if title == "QED":
            return _fmt(_score(row, "qed", "QED"))
        if title == "SA":
            return _fmt(_score(row, "sa", "sa_score", "SA"))
        if title == "Vina":
            return _fmt(_score(row, "vina"))
        if title == "PoseBusters":
            if _score(row, "vina") is None:
                return ""
            verdict = posebusters_verdict(row)
            return "– not checked" if verdict is None else "✔ passes" if verdict else "✘ fails"
        if title == "Scores":
            return ", ".join(f"{k} {_fmt(v)}" for k, v in (row.scores or {}).items()
                             if k.lower() not in OWN_COLUMNS and not isinstance(v, (dict, list)))
        if title == "Perplexity":
            return _fmt(row.ppl)
        if title == "Task":
            return row.task or ""
        if title == "Run":
            return str(row.run_id) if row.run_id is not None else ""
        if title == "Time":
            return row.created_text()
        if title == "Tags":
            return ", ".join(row.tags)
        if title == "Record":
            return row.record
        return ""

    def _tooltip(self, row: ResultRow, title: str):
        if title == "Valid":
            if row.valid:
                return "Passed every validity check" + (
                    "" if not row.reasons else ":\n" + "\n".join(row.reasons))
            return "Failed:\n" + ("\n".join(f"• {r}" for r in row.reasons) or "• (no reason given)")
        if title in ("SMILES / sequence", "Record"):
            return row.record
        if title == "Scores":
            return "\n".join(f"{k}: {_fmt(v, 3)}" for k, v in (row.scores or {}).items())
        if title == "Vina" and _score(row, "vina") is not None:
            rmsd = _score(row, "vina_rmsd")
            return (f"Vina score of the best pose: {_fmt(_score(row, 'vina'), 3)} kcal/mol"
                    + (f"\nRMSD to the reference ligand: {_fmt(rmsd, 2)} Å" if rmsd is not None else "")
                    + "\nClick the row to see the pose in the pocket.")
        if title == "PoseBusters" and _score(row, "vina") is not None:
            return self._checks_tooltip(row)
        return None

    def _checks_tooltip(self, row: ResultRow) -> str:
        """The failed checks of the best pose, read from the store when the tooltip is shown."""
        verdict = posebusters_verdict(row)
        checks = None
        best_pose = getattr(self.source, "best_pose", None)
        if best_pose is not None:
            try:
                pose = best_pose(row.id)
            except Exception:  # noqa: BLE001 - the badge still says pass/fail
                pose = None
            checks = getattr(pose, "checks", None) if pose is not None else None
        if verdict is None and not checks:
            return "PoseBusters did not check this pose"
        n = (checks or {}).get("n_checks")
        failures = (checks or {}).get("failures") or []
        if verdict and not failures:
            return f"The best pose passes every PoseBusters check{f' ({n})' if n else ''}"
        lines = [f"• {f.get('reason') or f.get('check')}" + (f" ({f.get('check')})" if f.get("reason") else "")
                 for f in failures]
        head = f"The best pose fails {len(failures)} of {n} PoseBusters checks:" if n and failures else \
            "The best pose fails PoseBusters' checks" + (":" if lines else " (the reasons are not stored)")
        return "\n".join([head, *lines])

