"""The pictures of a docking run (pyqtgraph): histograms of Vina score, QED, SA and molecular weight
with the reference ligand marked, and the chemical-space map where each candidate is a point that
selects its row when clicked. The numbers come from ``engine.docking.report``; this draws them."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

pg.setConfigOptions(antialias=True, background="w", foreground="k")

HISTOGRAMS = (("vina", "Vina score (kcal/mol)"), ("qed", "QED"), ("sa", "SA score"),
              ("mw", "Molecular weight (g/mol)"))
BAR = "#4c78a8"
REFERENCE = "#d62728"
UNDOCKED = (170, 170, 170, 200)


def _bins(values: np.ndarray, n: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, max(2, n) + 1)


class QtHistograms(pg.GraphicsLayoutWidget):
    """Four histograms side by side (2 × 2); the reference ligand as a red line on each."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.plots: dict[str, pg.PlotItem] = {}
        self.bars: dict[str, pg.BarGraphItem | None] = {}
        self.reference_lines: dict[str, pg.InfiniteLine] = {}
        for i, (key, title) in enumerate(HISTOGRAMS):
            p = self.addPlot(row=i // 2, col=i % 2)
            p.setLabel("bottom", title)
            p.setLabel("left", "ligands")
            p.showGrid(x=False, y=True, alpha=0.25)
            p.setMouseEnabled(x=False, y=False)
            p.hideButtons()
            for axis in ("bottom", "left"):
                p.getAxis(axis).enableAutoSIPrefix(False)  # QED 0.2-0.9, not "×0.001"
            self.plots[key] = p
            self.bars[key] = None
        self.counts: dict[str, int] = {}

    def set_data(self, values: dict, reference: dict | None = None, reference_name: str = "reference") -> None:
        reference = reference or {}
        for key, _title in HISTOGRAMS:
            p = self.plots[key]
            p.clear()
            self.reference_lines.pop(key, None)
            v = np.asarray(values.get(key, []), float)
            v = v[np.isfinite(v)]
            self.counts[key] = len(v)
            ref = reference.get(key)
            if len(v):
                edges = _bins(np.append(v, ref) if ref is not None else v, min(25, max(5, int(np.sqrt(len(v))) + 3)))
                counts, edges = np.histogram(v, bins=edges)
                width = edges[1] - edges[0]
                bars = pg.BarGraphItem(x=(edges[:-1] + edges[1:]) / 2, height=counts, width=width * 0.92,
                                       brush=BAR, pen=pg.mkPen("#2f4f6f", width=0.5))
                p.addItem(bars)
                self.bars[key] = bars
                p.enableAutoRange()
            else:
                self.bars[key] = None
                text = pg.TextItem("no values", color="#777", anchor=(0.5, 0.5))
                p.addItem(text)
                text.setPos(0.5, 0.5)
                p.setXRange(0, 1)
                p.setYRange(0, 1)
            if ref is not None:
                line = pg.InfiniteLine(pos=float(ref), angle=90, pen=pg.mkPen(REFERENCE, width=2,
                                                                               style=Qt.PenStyle.DashLine),
                                       label=reference_name, labelOpts={"position": 0.9, "color": REFERENCE,
                                                                        "fill": (255, 255, 255, 200)})
                p.addItem(line)
                self.reference_lines[key] = line
            p.setTitle(f"n = {len(v)}", size="9pt")


def _viridis():
    return pg.colormap.get("viridis")


class QtChemicalSpace(pg.PlotWidget):
    """The candidates as points (coloured by Vina score, grey when not docked) and the reference
    ligand as a red star. A click on a point emits its result id."""

    pointClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setLabel("bottom", "map axis 1")
        self.setLabel("left", "map axis 2")
        self.getPlotItem().hideButtons()
        self.scatter = pg.ScatterPlotItem(size=11, hoverable=True, hoverSize=15,
                                          hoverPen=pg.mkPen("k", width=2), tip=self._tip)
        self.scatter.sigClicked.connect(self._clicked)
        self.addItem(self.scatter)
        self.reference = pg.ScatterPlotItem(size=22, symbol="star", brush=pg.mkBrush(REFERENCE),
                                            pen=pg.mkPen("#7a0000", width=1))
        self.addItem(self.reference)
        self.reference_label = pg.TextItem("", color=REFERENCE, anchor=(0, 1))
        self.addItem(self.reference_label)
        self.highlight = pg.ScatterPlotItem(size=20, brush=None, pen=pg.mkPen("#ff7f0e", width=3))
        self.addItem(self.highlight)
        self.legend = pg.TextItem("", color="#333", anchor=(0, 0))
        self.legend.setParentItem(self.getPlotItem().getViewBox())
        self.legend.setPos(4, 2)
        self.ids: np.ndarray = np.zeros(0, int)
        self.xy: np.ndarray = np.zeros((0, 2))
        self.vina: np.ndarray = np.zeros(0)
        self._smiles: dict[int, str] = {}

    def _tip(self, x, y, data):
        rid = int(data)
        i = int(np.flatnonzero(self.ids == rid)[0]) if rid in self.ids else None
        vina = self.vina[i] if i is not None else np.nan
        score = f"\nVina {vina:.2f} kcal/mol" if np.isfinite(vina) else "\nnot docked"
        return f"result {rid}{score}\n{self._smiles.get(rid, '')}"

    def clear_points(self, message: str = "") -> None:
        self.scatter.setData([])
        self.reference.setData([])
        self.reference_label.setText("")
        self.highlight.setData([])
        self.ids = np.zeros(0, int)
        self.xy = np.zeros((0, 2))
        self.legend.setText(message)

    def set_points(self, xy: np.ndarray, ids, vina, smiles=None, reference_xy=None,
                   reference_name: str = "reference") -> None:
        """``xy`` (n, 2) with NaN rows for molecules that could not be placed; ``vina`` NaN where
        a candidate was not docked."""
        xy = np.asarray(xy, float).reshape(-1, 2)
        ids = np.asarray(ids, int)
        vina = np.asarray(vina, float)
        ok = np.isfinite(xy).all(axis=1)
        self.xy, self.ids, self.vina = xy[ok], ids[ok], vina[ok]
        self._smiles = {int(i): s for i, s in zip(ids, smiles or []) if s}
        docked = np.isfinite(self.vina)
        brushes = [pg.mkBrush(*UNDOCKED)] * len(self.ids)
        if docked.any():
            lo, hi = float(np.nanmin(self.vina)), float(np.nanmax(self.vina))
            cmap = _viridis()
            for k in np.flatnonzero(docked):
                t = 0.5 if hi - lo < 1e-9 else (hi - self.vina[k]) / (hi - lo)  # best (lowest) = bright
                brushes[k] = pg.mkBrush(cmap.map(float(t), mode="qcolor"))
            self.legend.setText(f"{len(self.ids)} candidates · colour: Vina {lo:.1f} (yellow, best) … "
                                f"{hi:.1f} (purple) kcal/mol · grey: not docked".replace("-", "−"))
        else:
            self.legend.setText(f"{len(self.ids)} candidates (none docked yet)")
        self.scatter.setData(pos=self.xy, data=self.ids, brush=brushes, pen=pg.mkPen("#333", width=0.6))
        if reference_xy is not None and np.isfinite(reference_xy).all():
            self.reference.setData(pos=[tuple(reference_xy)])
            self.reference_label.setText(reference_name)
            self.reference_label.setPos(float(reference_xy[0]), float(reference_xy[1]))
        else:
            self.reference.setData([])
            self.reference_label.setText("")
        self.highlight.setData([])
        self.autoRange(padding=0.12)

    def mark(self, result_id: int | None) -> None:
        """Ring the point of ``result_id`` (the row selected in the table)."""
        if result_id is None or result_id not in self.ids:
            self.highlight.setData([])
            return
        k = int(np.flatnonzero(self.ids == result_id)[0])
        self.highlight.setData(pos=[tuple(self.xy[k])])

    def point_position(self, result_id: int) -> QPointF | None:
        """Where the point of ``result_id`` is drawn, in viewport pixels (for tests and tours)."""
        if result_id not in self.ids:
            return None
        k = int(np.flatnonzero(self.ids == result_id)[0])
        scene = self.getPlotItem().getViewBox().mapViewToScene(QPointF(*map(float, self.xy[k])))
        return self.mapFromScene(scene).toPointF()

    def _clicked(self, _item, points, *_args) -> None:
        if len(points):
            self.pointClicked.emit(int(points[0].data()))


__all__ = ["HISTOGRAMS", "QtChemicalSpace", "QtHistograms"]
