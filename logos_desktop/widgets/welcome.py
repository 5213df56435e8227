"""The first-run welcome shown in the 3D view's place while the workspace is empty: "Open an
example" buttons for the structures the project ships (``engine.paths.examples()``) and one line
per task saying what it needs as input (read from the task catalogue, never listed here)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame, QGridLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget,
)

# the order of the buttons; an example of another kind is shown after these
KIND_ORDER = ("complex", "molecule", "material")

STYLE = """
QWidget#welcome { background: #14171f; }
QLabel { color: #d8dce6; background: transparent; }
QLabel#welcome-title { font-size: 20px; font-weight: 600; color: #ffffff; }
QLabel#welcome-heading { font-size: 14px; font-weight: 600; color: #ffffff; margin-top: 10px; }
QPushButton { text-align: left; padding: 10px 14px; border: 1px solid #3b4252; border-radius: 6px;
              background: #222734; color: #e5e9f0; }
QPushButton:hover { background: #2e3547; border-color: #5e81ac; }
QPushButton:pressed { background: #3b4252; }
"""


def task_hints(catalog=None) -> list[tuple[str, str, str]]:
    """(task id, task title, what it needs) for every task of the catalogue, in its order."""
    from logos_desktop.generation.task_catalog import WHAT_TO_SELECT, TaskCatalog

    catalog = catalog or TaskCatalog()
    out = []
    for name in catalog.names():
        kind = catalog.input_kind(name)
        if kind is None:
            what = (catalog.description(name) or "Samples from scratch").rstrip(".")
            need = "No input needed: " + what[:1].lower() + what[1:]
        else:
            need = WHAT_TO_SELECT.get(kind, f"needs a {kind}")
            need = need[:1].upper() + need[1:]
        out.append((name, catalog.label(name), need))
    return out


class QtWelcome(QWidget):
    """Emits ``exampleRequested(path)``; the window opens it as File › Open would."""

    exampleRequested = Signal(str)

    def __init__(self, examples: list[dict] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        if examples is None:
            from engine import paths

            examples = paths.examples()
        order = {k: i for i, k in enumerate(KIND_ORDER)}
        self.examples = sorted(examples, key=lambda e: order.get(e.get("kind"), len(order)))
        self.buttons: dict[str, QPushButton] = {}

        inner = QWidget()
        inner.setObjectName("welcome")
        inner.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        col = QVBoxLayout(inner)
        col.setContentsMargins(36, 28, 36, 28)
        col.setSpacing(8)
        title = QLabel("Welcome to LOGOS Desktop")
        title.setObjectName("welcome-title")
        col.addWidget(title)
        intro = QLabel("Drop structure files on the window, use File › Open, paste SMILES or FASTA "
                       "(Ctrl+Shift+V), or start from an example:")
        intro.setWordWrap(True)
        col.addWidget(intro)

        row = QVBoxLayout()
        row.setSpacing(6)
        for ex in self.examples:
            b = QPushButton(f"Open an example: {ex.get('title', ex['file'])}  ·  {ex.get('detail', ex['file'])}")
            b.setObjectName(f"example-{ex.get('kind', ex['file'])}")
            b.setToolTip(str(ex["path"]))
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            b.clicked.connect(lambda _=False, p=str(ex["path"]): self.exampleRequested.emit(p))
            self.buttons[ex.get("kind", ex["file"])] = b
            row.addWidget(b)
        if not self.examples:
            missing = QLabel("<i>The examples are not installed (resources/examples).</i>")
            row.addWidget(missing)
        col.addLayout(row)

        heading = QLabel("What each task needs (Generate panel, left)")
        heading.setObjectName("welcome-heading")
        col.addWidget(heading)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        self.hints: dict[str, str] = {}
        for r, (name, label, need) in enumerate(task_hints()):
            name_label = QLabel(f"<b>{escape(label)}</b>")
            name_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            need_label = QLabel(escape(need) + ".")
            need_label.setWordWrap(True)
            need_label.setObjectName(f"hint-{name}")
            grid.addWidget(name_label, r, 0)
            grid.addWidget(need_label, r, 1)
            self.hints[name] = need
        grid.setColumnStretch(1, 1)
        col.addLayout(grid)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)

    def example_path(self, kind: str) -> Path | None:
        for ex in self.examples:
            if ex.get("kind") == kind:
                return Path(ex["path"])
        return None
