"""2D view: RDKit depiction of the current molecule (atom indices on demand, selection
highlighted); for proteins the chain sequences, for crystals the formula and lattice."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QCheckBox, QLabel, QStackedWidget, QTextEdit, QVBoxLayout, QWidget


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
        self.stack = QStackedWidget()
        self.stack.addWidget(self.image)
        self.stack.addWidget(self.text)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.indices)
        self.indices.toggled.connect(self.refresh)
        from PySide6.QtCore import QTimer

        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(150)
        self._resize_timer.timeout.connect(self.refresh)
        workspace.currentChanged.connect(self.refresh)
        workspace.itemChanged.connect(self._changed)
        workspace.selectionChanged.connect(self.refresh)
        self.refresh()

    def _changed(self, item_id: int) -> None:
        cur = self.workspace.current()
        if cur is not None and cur.id == item_id:
            self.refresh()

    def refresh(self, *_args) -> None:
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
        seqs = {}
        if obj.structure is not None:
            from engine.structures.atoms import chain_sequences

            seqs = chain_sequences(obj.structure)
        elif obj.sequence:
            seqs = {obj.name: obj.sequence}
        body = "".join(f"<p><b>{c}</b> ({len(s)} aa)<br><tt>{s}</tt></p>" for c, s in seqs.items())
        pocket = ""
        if item.pocket:
            pocket = "<p><b>Pocket residues</b>: " + ", ".join(f"{c}{n}" for c, n in sorted(item.pocket)) + "</p>"
        self._show_text(f"<b>{obj.name}</b> ({obj.kind}){body}{pocket}")

    def resizeEvent(self, ev) -> None:  # redraw the depiction at the new size (debounced)
        super().resizeEvent(ev)
        item = self.workspace.current()
        if item is not None and item.obj.mol is not None:
            self._resize_timer.start()

    def _show_text(self, html: str) -> None:
        self.text.setHtml(html)
        self.stack.setCurrentWidget(self.text)
