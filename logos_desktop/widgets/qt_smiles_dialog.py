"""Edit SMILES with a live 2D preview; OK only when the SMILES parses and sanitises."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout

from logos_desktop.widgets.qt_view2d import depict_png


class QtSmilesDialog(QDialog):
    def __init__(self, mol=None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit SMILES")
        self.edit = QLineEdit()
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(320, 260)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("SMILES:"))
        lay.addWidget(self.edit)
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)
        self.edit.textChanged.connect(self._update)
        if mol is not None:
            from rdkit import Chem

            self.edit.setText(Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False)))
        self._update(self.edit.text())

    def smiles(self) -> str:
        return self.edit.text().strip()

    def is_valid(self) -> bool:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()

    def _update(self, text: str) -> None:
        from engine.structures.edits import EditError, preview_smiles

        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            mol = preview_smiles(text)
        except EditError as exc:
            self.preview.clear()
            self.status.setText(f"<span style='color:#c0392b'>{exc}</span>")
            ok.setEnabled(False)
            return
        pix = QPixmap()
        pix.loadFromData(depict_png(mol, 320, 260), "PNG")
        self.preview.setPixmap(pix)
        self.status.setText(f"{mol.GetNumAtoms()} heavy atoms")
        ok.setEnabled(True)
