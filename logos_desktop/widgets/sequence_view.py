"""Sequences as a reader sees them: monospace, wrapped in blocks of ten with the residue number at
the start of each line, pocket residues marked. ``QtSequenceView`` is the 2D view's page for
protein, antibody and binding-site results; ``sequence_pixmap`` draws the same for a table cell.

The chains come from ``engine.grammar.pictures`` (``{"name", "sequence", "marked", "labels"}``);
nothing here decides what a pocket residue is."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import QTextBrowser

POCKET = QColor("#f28c28")  # the pocket's orange in the 3D view
POCKET_TEXT = QColor("#ffffff")
BLOCK = 10


def _mono(point_size: float | None = None) -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if point_size is not None:
        font.setPointSizeF(point_size)
    return font


def sequence_html(chains: list[dict], title: str = "", per_line: int = 50) -> str:
    """The chains as HTML: a header per chain, numbered lines of ``per_line`` residues in blocks of
    ten, pocket residues on an orange ground, then the list of pocket residues."""
    per_line = max(BLOCK, per_line - per_line % BLOCK)
    parts = [f"<p><b>{escape(title)}</b></p>"] if title else []
    for ch in chains:
        seq, marked = ch.get("sequence", ""), set(ch.get("marked") or ())
        # residue numbers of the file where known (a structure), else positions from 1
        numbers = ch.get("numbers") if len(ch.get("numbers") or ()) == len(seq) else range(1, len(seq) + 1)
        width = max((len(str(n)) for n in numbers), default=1)
        head = f"<b>{escape(ch.get('name', 'Sequence'))}</b> ({len(seq)} residues"
        head += f", {len(marked)} pocket residue{'s' if len(marked) != 1 else ''} marked)" if marked else ")"
        lines = []
        for start in range(0, len(seq), per_line):
            cells = []
            for i in range(start, min(start + per_line, len(seq))):
                if i > start and (i - start) % BLOCK == 0:
                    cells.append(" ")
                c = escape(seq[i])
                if i in marked:
                    c = (f'<span style="background-color:{POCKET.name()};color:{POCKET_TEXT.name()};'
                         f'font-weight:bold">{c}</span>')
                cells.append(c)
            num = f'<span style="color:#888888">{str(numbers[start]).rjust(width)}</span>'
            lines.append(num + "  " + "".join(cells))
        parts.append(f"<p>{head}</p><pre style=\"margin-top:0\">" + "\n".join(lines) + "</pre>")
        if marked:
            labels = ch.get("labels") or [f"{seq[i]}{numbers[i]}" for i in sorted(marked)]
            parts.append("<p><b>Pocket residues</b>: " + escape(", ".join(labels)) + "</p>")
    return "".join(parts)


class QtSequenceView(QTextBrowser):
    """Read-only, wraps to its width (whole blocks of ten), keeps the chains it shows."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("sequence-view")
        self.setFont(_mono())
        self.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)  # headers wrap; <pre> lines do not
        self.chains: list[dict] = []
        self.title = ""
        self.per_line = 50

    def set_chains(self, chains: list[dict], title: str = "") -> None:
        self.chains, self.title = list(chains), title
        self._render()

    def _fit(self) -> int:
        """Residues per line that fit the width: whole blocks of ten after the number column."""
        fm = QFontMetrics(self.font())
        longest = max((len(c.get("sequence", "")) for c in self.chains), default=1)
        chars = max(1, (self.viewport().width() - 16) // max(1, fm.horizontalAdvance("M")))
        chars -= len(str(longest)) + 2
        return max(BLOCK, (chars + 1) // (BLOCK + 1) * BLOCK)

    def _render(self) -> None:
        self.per_line = self._fit()
        self.setHtml(sequence_html(self.chains, self.title, self.per_line))

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if self.chains and self._fit() != self.per_line:
            self._render()


def sequence_pixmap(chains: list[dict], size: QSize) -> QPixmap:
    """A table-cell picture of the chains: the first residues of each, wrapped, pocket residues
    on orange, a thin rule between chains."""
    dpr = 2.0
    pix = QPixmap(int(size.width() * dpr), int(size.height() * dpr))
    pix.setDevicePixelRatio(dpr)
    pix.fill(Qt.GlobalColor.white)
    p = QPainter(pix)
    font = _mono()
    font.setPixelSize(8)
    p.setFont(font)
    fm = QFontMetrics(font)
    cw, lh = max(1, fm.horizontalAdvance("M")), fm.height()
    cols = max(1, (size.width() - 4) // cw)
    rows_left = max(1, (size.height() - 2) // lh)
    marks = [(ch, set(ch.get("marked") or ())) for ch in chains]
    track = any(m for _c, m in marks)  # a bar of the whole length with the pocket's positions
    if track:
        rows_left = max(1, (size.height() - 2 - 6 * len(chains)) // lh)
    y = 1
    for k, ch in enumerate(chains):
        if rows_left <= 0:
            break
        if k:
            p.setPen(QColor("#bbbbbb"))
            p.drawLine(2, y, size.width() - 2, y)
            y += 1
        seq, marked = ch.get("sequence", ""), set(ch.get("marked") or ())
        # each chain gets its share of the lines (at least one)
        share = max(1, rows_left // (len(chains) - k)) if len(chains) > 1 else rows_left
        for r in range(share):
            start = r * cols
            if start >= len(seq):
                break
            for j, c in enumerate(seq[start:start + cols]):
                x = 2 + j * cw
                if start + j in marked:
                    p.fillRect(QRect(x, y, cw, lh), POCKET)
                    p.setPen(POCKET_TEXT)
                else:
                    p.setPen(QColor("#202020"))
                p.drawText(QRect(x, y, cw, lh), Qt.AlignmentFlag.AlignCenter, c)
            y += lh
            rows_left -= 1
    if track:
        y = size.height() - 6 * len(chains)
        for ch, marked in marks:
            n = max(1, len(ch.get("sequence", "")))
            p.fillRect(QRect(2, y + 1, size.width() - 4, 3), QColor("#d0d0d0"))
            for i in marked:
                p.fillRect(QRect(2 + int(i * (size.width() - 5) / n), y, 2, 5), POCKET)
            y += 6
    p.end()
    return pix
