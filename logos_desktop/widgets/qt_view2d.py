"""2D view: RDKit depiction of the current molecule (atom indices on demand, selection
highlighted); for proteins the chain sequences, for crystals the formula and lattice.

A result that is not a molecule is shown with ``show_result(picture, title)`` (the parts come from
``engine.grammar.pictures``): a material as its linkers drawn by RDKit beside the metal node's
formula, a sequence result in a sequence view with the pocket residues marked, a retrosynthesis
as its reaction. The workspace's next change of current object or selection replaces it."""

from __future__ import annotations

import re

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QCheckBox, QLabel, QStackedWidget, QTextEdit, QVBoxLayout, QWidget

from logos_desktop.generation.thumbnails import drawable_mol
from logos_desktop.widgets.sequence_view import QtSequenceView, sequence_pixmap

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_COUNT = re.compile(r"(?<=[A-Za-z)\]])(\d+)")


def formula_text(node: str) -> str:
    """A node formula as written (``Cu2(CO2)4``) with its counts as subscripts (``Cu₂(CO₂)₄``)."""
    return _COUNT.sub(lambda m: m.group(1).translate(_SUB), node or "")


def linkers_png(smiles: list[str], width: int, height: int, legends: bool = True) -> bytes | None:
    """PNG of the linkers side by side (RDKit grid, one panel each); None when none can be read."""
    from rdkit import RDLogger
    from rdkit.Chem import rdDepictor
    from rdkit.Chem.Draw import rdMolDraw2D

    RDLogger.DisableLog("rdApp.*")
    try:
        mols = [m for m in map(drawable_mol, smiles) if m is not None]
        if not mols:
            return None
        n = len(mols)
        cols = n if width >= height * n * 0.6 or n == 1 else max(1, min(n, round((n * width / height) ** 0.5)))
        rows = -(-n // cols)
        pw, ph = max(20, width // cols), max(20, height // rows)
        for m in mols:
            rdDepictor.Compute2DCoords(m)
        drawer = rdMolDraw2D.MolDraw2DCairo(pw * cols, ph * rows, pw, ph)
        opts = drawer.drawOptions()
        opts.clearBackground = True
        opts.padding = 0.08
        if not legends:
            opts.legendFraction = 0.0
        names = [f"linker {i}" for i in range(1, n + 1)] if legends else [""] * n
        drawer.DrawMolecules(mols, legends=names)
        drawer.FinishDrawing()
        return drawer.GetDrawingText()
    except Exception:  # noqa: BLE001 - an undrawable linker leaves the formula alone, never a crash
        return None
    finally:
        RDLogger.EnableLog("rdApp.*")


def reaction_png(reactants: list[str], products: list[str], width: int, height: int) -> bytes | None:
    """PNG of ``reactants >> products`` (RDKit reaction depiction); None when it cannot be drawn."""
    from rdkit import RDLogger
    from rdkit.Chem import rdChemReactions
    from rdkit.Chem.Draw import rdMolDraw2D

    RDLogger.DisableLog("rdApp.*")
    try:
        rxn = rdChemReactions.ReactionFromSmarts(".".join(reactants) + ">>" + ".".join(products), useSmiles=True)
        drawer = rdMolDraw2D.MolDraw2DCairo(width, height)
        drawer.drawOptions().clearBackground = True
        drawer.drawOptions().padding = 0.04
        drawer.DrawReaction(rxn)
        drawer.FinishDrawing()
        return drawer.GetDrawingText()
    except Exception:  # noqa: BLE001
        return None
    finally:
        RDLogger.EnableLog("rdApp.*")


def _png_pixmap(png: bytes | None) -> QPixmap | None:
    if not png:
        return None
    pix = QPixmap()
    return pix if pix.loadFromData(png, "PNG") else None


def material_pixmap(picture: dict, width: int, height: int, small: bool = False) -> QPixmap:
    """The metal node's formula in a box beside (``small``: above) its linkers drawn by RDKit."""
    dpr = 2.0 if small else 1.0
    pix = QPixmap(int(width * dpr), int(height * dpr))
    pix.setDevicePixelRatio(dpr)
    pix.fill(Qt.GlobalColor.white)
    formula = formula_text(picture.get("metal") or "?")
    metals = ", ".join(picture.get("metals") or [])
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    if small:  # a table cell: the formula on a strip above the linkers
        font.setPixelSize(11)
        font.setBold(True)
        p.setFont(font)
        strip = 15
        p.fillRect(QRect(0, 0, width, strip), QColor("#e8eef8"))
        p.setPen(QColor("#1d3557"))
        p.drawText(QRect(2, 0, width - 4, strip), Qt.AlignmentFlag.AlignCenter, formula)
        body = QRect(0, strip, width, height - strip)
        png = linkers_png(picture.get("linkers") or [], int(body.width() * dpr), int(body.height() * dpr),
                          legends=False)
    else:
        probe = QFont()
        probe.setPointSizeF(13)
        probe.setBold(True)
        # wide enough for the formula at 13 pt where it can be (at most half the picture)
        box_w = int(max(110, min(QFontMetrics(probe).horizontalAdvance(formula) + 28, width // 2)))
        box = QRectF(8, 8, box_w - 16, height - 16)
        p.setPen(QPen(QColor("#5e81ac"), 1.5))
        p.setBrush(QColor("#eef3fb"))
        p.drawRoundedRect(box, 8, 8)
        p.setPen(QColor("#555555"))
        font.setPointSizeF(9)
        p.setFont(font)
        p.drawText(box.adjusted(6, 8, -6, 0), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                   "metal node")
        font.setBold(True)
        size = 16.0
        while True:  # the largest size (16 pt down to 7 pt) at which the formula fits the box
            font.setPointSizeF(size)
            if size <= 7 or QFontMetrics(font).horizontalAdvance(formula) <= box.width() - 12:
                break
            size -= 0.5
        p.setFont(font)
        p.setPen(QColor("#1d3557"))
        p.drawText(box.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, formula)
        if metals:
            font.setPointSizeF(9)
            font.setBold(False)
            p.setFont(font)
            p.setPen(QColor("#555555"))
            p.drawText(box.adjusted(6, 0, -6, -8), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                       f"metal{'s' if ',' in metals else ''}: {metals}")
        body = QRect(box_w, 0, width - box_w, height)
        png = linkers_png(picture.get("linkers") or [], body.width(), body.height())
    linkers = _png_pixmap(png)
    if linkers is not None:
        linkers.setDevicePixelRatio(dpr)
        p.drawPixmap(body.topLeft(), linkers)
    else:
        p.setPen(QColor("#b00020"))
        p.drawText(body, Qt.AlignmentFlag.AlignCenter, "no linker to draw")
    p.end()
    return pix


def picture_pixmap(picture: dict | None, size: QSize, small: bool = True) -> QPixmap | None:
    """A drawing of a result's picture (``engine.grammar.pictures``): material, sequence or
    reaction; None for molecules (drawn from their SMILES elsewhere) and for nothing to draw."""
    if not picture:
        return None
    kind = picture.get("kind")
    if kind == "material":
        return material_pixmap(picture, size.width(), size.height(), small=small)
    if kind == "sequence" and picture.get("chains"):
        return sequence_pixmap(picture["chains"], size)
    if kind == "reaction" and picture.get("reactants"):
        dpr = 2.0 if small else 1.0
        pix = _png_pixmap(reaction_png(picture["reactants"], picture.get("products") or [],
                                       int(size.width() * dpr), int(size.height() * dpr)))
        if pix is not None:
            pix.setDevicePixelRatio(dpr)
        return pix
    return None


def depict_png(mol, width: int = 380, height: int = 320, indices: bool = False, highlight=()) -> bytes:
    """PNG bytes of an RDKit 2D depiction (new 2D coordinates; the 3D conformer is untouched)."""
    from rdkit import Chem
    from rdkit.Chem import rdDepictor
    from rdkit.Chem.Draw import rdMolDraw2D

    m = Chem.Mol(mol)  # hydrogens kept, so indices match the 3D view and the edits
    m.RemoveAllConformers()
    rdDepictor.SetPreferCoordGen(True)
    rdDepictor.Compute2DCoords(m)
    drawer = rdMolDraw2D.MolDraw2DCairo(width, height)
    opts = drawer.drawOptions()
    opts.addAtomIndices = indices
    opts.clearBackground = True
    hl = [i for i in highlight if i < m.GetNumAtoms()]
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, m, highlightAtoms=hl)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


class QtView2D(QWidget):
    def __init__(self, workspace, parent=None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self._space_groups: dict = {}  # id(crystal) -> (crystal, text): spglib is slow on big cells
        self.indices = QCheckBox("Atom indices")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 180)
        self.text = QTextEdit()
        self.text.setReadOnly(True)
        self.sequence = QtSequenceView()
        self.result_title = QLabel()
        self.result_title.setObjectName("result-title")
        self.result_title.setWordWrap(True)
        self.result_title.hide()
        self.result: tuple[dict, str] | None = None  # (picture, title) of the result shown, if any
        self.stack = QStackedWidget()
        self.stack.addWidget(self.image)
        self.stack.addWidget(self.text)
        self.stack.addWidget(self.sequence)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.result_title)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.indices)
        self.indices.toggled.connect(self._redraw)
        from PySide6.QtCore import QTimer

        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(150)
        self._resize_timer.timeout.connect(self._redraw)
        workspace.currentChanged.connect(self.refresh)
        workspace.itemChanged.connect(self._changed)
        workspace.selectionChanged.connect(self.refresh)
        self.refresh()

    def _changed(self, item_id: int) -> None:
        cur = self.workspace.current()
        if cur is not None and cur.id == item_id:
            self.refresh()

    # -- a result that is not a workspace object ----------------------------------------------
    def show_result(self, picture: dict, title: str = "") -> None:
        """Draw a result's picture (material, sequence, reaction) until the workspace moves on."""
        self.result = (picture, title)
        self._redraw()

    def _draw_result(self) -> None:
        picture, title = self.result
        kind = picture.get("kind")
        self.result_title.setText(title)
        self.result_title.show()
        if kind == "sequence":
            self.sequence.set_chains(picture.get("chains") or [])
            self.stack.setCurrentWidget(self.sequence)
            return
        size = self.stack.size()
        pix = picture_pixmap(picture, QSize(max(260, size.width() - 4), max(180, size.height() - 4)), small=False)
        if pix is None:
            self._show_text(f"<b>{title}</b><br>nothing to draw for this {kind or 'result'}")
            return
        self.image.setPixmap(pix)
        self.stack.setCurrentWidget(self.image)

    def _redraw(self, *_args) -> None:
        if self.result is not None:
            self._draw_result()
        else:
            self._draw_current()

    def refresh(self, *_args) -> None:
        """The workspace changed (current object, selection): show its current object."""
        self.result = None
        self._draw_current()

    def _draw_current(self) -> None:
        self.result_title.hide()
        item = self.workspace.current()
        if item is None:
            self._show_text("<i>Nothing selected. Drop a file on the window or use File › Open.</i>")
            return
        obj = item.obj
        if obj.mol is not None:
            hl = [a for i, a in self.workspace.selection if i == item.id]
            size = self.stack.size()
            try:
                png = depict_png(obj.mol, max(200, size.width() - 4), max(150, size.height() - 4),
                                 indices=self.indices.isChecked(), highlight=hl)
            except Exception as exc:  # noqa: BLE001 - a depiction failure is shown, never raised
                self._show_text(f"<b>{obj.name}</b><br>2D depiction failed: {exc}")
                return
            pix = QPixmap()
            pix.loadFromData(png, "PNG")
            self.image.setPixmap(pix)
            self.stack.setCurrentWidget(self.image)
            return
        if obj.crystal is not None:
            s = obj.crystal
            lat = s.lattice
            cached = self._space_groups.get(id(s))
            if cached is not None and cached[0] is s:
                sg_text = cached[1]
            else:
                try:
                    sg = s.get_space_group_info(symprec=0.1)
                    sg_text = f"{sg[0]} (No. {sg[1]})"
                except Exception:  # noqa: BLE001
                    sg_text = "not determined"
                self._space_groups[id(s)] = (s, sg_text)
            self._show_text(
                f"<b>{obj.name}</b><br>Formula: {s.composition.reduced_formula} ({len(s)} sites)<br>"
                f"a={lat.a:.3f} b={lat.b:.3f} c={lat.c:.3f} Å<br>α={lat.alpha:.2f} β={lat.beta:.2f} "
                f"γ={lat.gamma:.2f}°<br>Space group: {sg_text}<br>Volume: {lat.volume:.1f} Å³")
            return
        chains = self._chains(item)
        if chains:  # proteins and sequences: the sequence view, the marked pocket on orange
            self.sequence.set_chains(chains, f"{obj.name} ({obj.kind})")
            self.stack.setCurrentWidget(self.sequence)
            return
        self._show_text(f"<b>{obj.name}</b> ({obj.kind})")

    @staticmethod
    def _chains(item) -> list[dict]:
        """The object's chains for the sequence view: amino-acid chains with the residue numbers of
        the file (``engine.tasks.protein_input``) and the residues of the marked pocket; other chains
        (nucleic acids) as ``chain_sequences`` reads them; a FASTA sequence as it is."""
        obj = item.obj
        if obj.structure is None:
            return [{"name": obj.name, "sequence": obj.sequence, "marked": [], "labels": []}] if obj.sequence else []
        from engine.structures.atoms import chain_sequences
        from engine.tasks.protein_input import chains as protein_chains

        pocket = {(str(c), str(n)) for c, n in item.pocket}
        table = protein_chains(obj.structure)
        out = []
        for name, seq in chain_sequences(obj.structure).items():
            residues = table.get(name)
            if residues is None or "".join(r.letter for r in residues) != seq:
                out.append({"name": f"Chain {name}", "sequence": seq, "marked": [], "labels": []})
                continue
            marked = [i for i, r in enumerate(residues)
                      if (r.chain, str(r.number)) in pocket or (r.chain, f"{r.number}{r.icode.strip()}") in pocket]
            out.append({"name": f"Chain {name}", "sequence": seq, "marked": marked,
                        "labels": [residues[i].label for i in marked], "numbers": [r.number for r in residues]})
        return out

    def resizeEvent(self, ev) -> None:  # redraw the depiction at the new size (debounced)
        super().resizeEvent(ev)
        item = self.workspace.current()
        if self.result is not None or (item is not None and item.obj.mol is not None):
            self._resize_timer.start()

    def _show_text(self, html: str) -> None:
        self.text.setHtml(html)
        self.stack.setCurrentWidget(self.text)
