"""2D thumbnails of generated molecules (RDKit depiction → PNG → QPixmap), cached by SMILES."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QSize
from PySide6.QtGui import QPixmap

THUMB_SIZE = QSize(96, 72)


def drawable_mol(smiles: str):
    """An RDKit molecule to draw from ``smiles``: sanitised when it can be, else as written (a
    picture of what is there; the validity badge says why it fails); None when it cannot be read."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles, sanitize=True)
    if mol is None:
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is not None:
            mol.UpdatePropertyCache(strict=False)
    return mol


def depict_png(smiles: str, width: int, height: int) -> bytes | None:
    """PNG bytes of a 2D depiction of ``smiles``; None when RDKit cannot parse it."""
    from rdkit import RDLogger
    from rdkit.Chem import rdDepictor
    from rdkit.Chem.Draw import rdMolDraw2D

    RDLogger.DisableLog("rdApp.*")
    try:
        mol = drawable_mol(smiles)
        if mol is None:
            return None
        rdDepictor.Compute2DCoords(mol)
        drawer = rdMolDraw2D.MolDraw2DCairo(width, height)
        opts = drawer.drawOptions()
        opts.clearBackground = True
        opts.padding = 0.05
        drawer.DrawMolecule(mol)
        drawer.FinishDrawing()
        return drawer.GetDrawingText()
    except Exception:  # noqa: BLE001 - a molecule RDKit cannot draw gets no thumbnail, not a crash
        return None
    finally:
        RDLogger.EnableLog("rdApp.*")


class ThumbnailCache:
    """A bounded LRU cache of pixmaps; only rows the view actually paints get depicted."""

    def __init__(self, size: QSize = THUMB_SIZE, capacity: int = 2000) -> None:
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap | None] = OrderedDict()

    def get(self, smiles: str | None) -> QPixmap | None:
        if not smiles:
            return None
        if smiles in self._cache:
            self._cache.move_to_end(smiles)
            return self._cache[smiles]
        png = depict_png(smiles, self.size.width(), self.size.height())
        pix = None
        if png:
            pix = QPixmap()
            if not pix.loadFromData(png, "PNG"):
                pix = None
        self._cache[smiles] = pix
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return pix

    def clear(self) -> None:
        self._cache.clear()
