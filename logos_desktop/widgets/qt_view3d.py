"""The 3D view: VTK in a ``QVTKRenderWindowInteractor``, drawing every visible workspace item.

* Multisampling is off (it costs ~115 ms a frame on software OpenGL); FXAA is switched on only
  when the OpenGL renderer is a hardware one.
* While the user drags, each layer's cheap stand-in replaces its full detail; the full detail
  comes back when the drag ends.
* A click (press and release without moving) picks the nearest atom along the view ray; Shift +
  drag draws a rubber band and selects the atoms inside it.
* ``grab_image()`` reads the render window itself (``QWidget.grab`` returns noise for GL widgets).
* While the workspace is empty a placeholder (the first-run welcome, ``set_welcome``) takes the
  render window's place; it comes back, sized and fitted, with the first object.
* ``show_note(text)``: one line above the scene (e.g. a result that has no 3D coordinates); the next
  object loaded clears it.
"""

from __future__ import annotations

import time

import numpy as np
import vtkmodules.qt

vtkmodules.qt.PyQtImpl = "PySide6"

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QLabel, QRubberBand, QVBoxLayout, QWidget  # noqa: E402
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor  # noqa: E402
from vtkmodules.util.numpy_support import vtk_to_numpy  # noqa: E402
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera  # noqa: E402
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkWindowToImageFilter  # noqa: E402

import vtkmodules.vtkRenderingOpenGL2  # noqa: E402,F401  (registers the OpenGL back end)
import vtkmodules.vtkRenderingFreeType  # noqa: E402,F401  (text for labels)

from logos_desktop.render.vtk_common import SELECTION, Layer, label_actor, segments_actor, sphere_actor  # noqa: E402

BACKGROUND = (0.08, 0.09, 0.12)
SOFTWARE_GL = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer")
LABEL_LIMIT = 600


def build_layer(item) -> Layer:
    from logos_desktop.render.vtk_crystal import build_crystal
    from logos_desktop.render.vtk_molecule import build_molecule
    from logos_desktop.render.vtk_protein import build_protein

    table = item.view_table()
    if item.obj.structure is not None:
        from logos_desktop.render.vtk_protein import secondary_structure

        sse = secondary_structure(item.obj.structure) if item.style == "tube" else None
        return build_protein(table, item.style, item.pocket, sse=sse,
                             ligand_opacity=getattr(item, "ligand_opacity", 1.0))
    if item.obj.crystal is not None:
        return build_crystal(table, item.style)
    return build_molecule(table, item.style)


class _Interactor(QVTKRenderWindowInteractor):
    """Adds click-to-pick and Shift+drag rubber-band selection to VTK's own mouse handling."""

    clicked = Signal(QPoint, object)
    boxed = Signal(QRect, object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._press: QPoint | None = None
        self._band: QRubberBand | None = None
        self._banding = False

    def mousePressEvent(self, ev):
        self._press = ev.position().toPoint()
        if ev.button() == Qt.MouseButton.LeftButton and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._banding = True
            if self._band is None:
                self._band = QRubberBand(QRubberBand.Shape.Rectangle, self)
            self._band.setGeometry(QRect(self._press, QSize()))
            self._band.show()
            return
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev):
        if self._banding and self._band is not None and self._press is not None:
            self._band.setGeometry(QRect(self._press, ev.position().toPoint()).normalized())
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev):
        pos = ev.position().toPoint()
        if self._banding:
            self._banding = False
            if self._band is not None:
                self._band.hide()
            if self._press is not None:
                self.boxed.emit(QRect(self._press, pos).normalized(), ev.modifiers())
            self._press = None
            return
        super().mouseReleaseEvent(ev)
        if (ev.button() == Qt.MouseButton.LeftButton and self._press is not None
                and (pos - self._press).manhattanLength() <= 3):
            self.clicked.emit(pos, ev.modifiers())
        self._press = None


class QtView3D(QWidget):
    atomClicked = Signal(int, int, object)  # item id (-1: background), atom index, modifiers
    atomsBoxed = Signal(list, object)       # [(item id, atom index)], modifiers
    frameRendered = Signal(float)           # seconds the last frame took

    def __init__(self, workspace, parent=None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.vtk_widget = _Interactor(self)
        self.note = QLabel()
        self.note.setObjectName("view3d-note")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("QLabel { background: #2b3040; color: #e5e9f0; padding: 5px 8px; }")
        self.note.hide()
        self.welcome: QWidget | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.note)
        lay.addWidget(self.vtk_widget, 1)
        self.render_window = self.vtk_widget.GetRenderWindow()
        self.render_window.SetMultiSamples(0)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*BACKGROUND)
        self.render_window.AddRenderer(self.renderer)
        self.interactor = self.render_window.GetInteractor()
        self.style = vtkInteractorStyleTrackballCamera()
        self.interactor.SetInteractorStyle(self.style)
        self.style.AddObserver("StartInteractionEvent", self._drag_started)
        self.style.AddObserver("EndInteractionEvent", self._drag_ended)
        self.layers: dict[int, Layer] = {}
        self.extras: dict[str, list] = {}  # named actors that are not workspace items (docking scene)
        self._overlay: list = []
        self._labels: list = []
        self.show_atom_labels = False
        self.show_residue_labels = False
        self.dragging = False
        self.software_gl: bool | None = None
        self.gl_renderer = ""
        self.last_frame_s = 0.0
        self._initialized = False
        self.vtk_widget.clicked.connect(self._on_click)
        self.vtk_widget.boxed.connect(self._on_box)
        workspace.itemsChanged.connect(self._items_changed)
        workspace.itemChanged.connect(self._item_changed)
        workspace.tableReady.connect(self._item_changed)
        workspace.selectionChanged.connect(self._selection_changed)

    # -- welcome placeholder and note ---------------------------------------------------------
    def set_welcome(self, widget: QWidget) -> None:
        """Show ``widget`` in the render window's place while there is nothing to draw."""
        self.welcome = widget
        self.layout().addWidget(widget, 1)
        self._update_welcome()

    def welcome_shown(self) -> bool:
        return self.welcome is not None and not self.welcome.isHidden()

    def _update_welcome(self) -> None:
        if self.welcome is None:
            return
        empty = not self.workspace.items() and not self.extras
        if empty == self.vtk_widget.isHidden() and empty == self.welcome_shown():
            return
        self.welcome.setVisible(empty)
        self.vtk_widget.setVisible(not empty)
        if not empty:  # the render window gets its size now, before the camera is fitted to it
            self.layout().activate()

    def show_note(self, text: str = "") -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    # -- scene --------------------------------------------------------------------------------
    def _items_changed(self) -> None:
        self._update_welcome()
        first = not self.layers
        current = {i.id for i in self.workspace.items()}
        for gone in set(self.layers) - current:
            self._remove_layer(gone)
        new = sorted(current - set(self.layers))
        if new:
            self.show_note("")
        for item_id in new:  # only new items are built
            self.rebuild(item_id)
        if first or len(self.layers) <= 1:
            self.reset_camera()
        elif new:
            self._follow(new)
        self.render()

    def _follow(self, new: list[int]) -> None:
        """The view follows what was loaded: a structure with its own frame is fitted on its own;
        objects laid beside the others (SMILES) and result previews bring the whole scene into view
        unless they are already on screen."""
        items = [self.workspace.item(i) for i in new if i in self.layers]
        if not items:
            return
        def passive(i) -> bool:  # shown beside the others, or a result preview (in its pocket or not)
            return getattr(i, "free_frame", False) or getattr(i.obj, "_logos_preview", False)

        if all(passive(i) for i in items):
            if not self._on_screen([i.id for i in items]):
                self.reset_camera()
        else:
            self.reset_camera([i.id for i in items if not passive(i)])

    def _on_screen(self, ids: list[int]) -> bool:
        w, h = self.render_window.GetSize()
        pts = [self.workspace.item(i).view_table().xyz for i in ids if len(self.workspace.item(i).view_table().xyz)]
        if not pts or w <= 1 or h <= 1:
            return True
        xy = self.project(np.vstack(pts))
        return bool((xy[:, 0] >= 0).all() and (xy[:, 0] <= w).all() and (xy[:, 1] >= 0).all()
                    and (xy[:, 1] <= h).all())

    def _item_changed(self, item_id: int) -> None:
        self.rebuild(item_id)
        self.render()

    def rebuild(self, item_id: int | None = None) -> None:
        """(Re)build the actors of one item, or of every item."""
        ids = [i.id for i in self.workspace.items()] if item_id is None else [item_id]
        if item_id is None:
            for gone in set(self.layers) - set(ids):
                self._remove_layer(gone)
        for i in ids:
            self._remove_layer(i)
            item = self.workspace.item(i)
            if item is None or not item.visible:
                continue
            layer = build_layer(item)
            for a in layer.actors:
                self.renderer.AddActor(a)
            for a in layer.standin or []:
                if a not in layer.actors:
                    a.VisibilityOff()
                    self.renderer.AddActor(a)
            self.layers[i] = layer
        self._update_overlay()

    def _remove_layer(self, item_id: int) -> None:
        layer = self.layers.pop(item_id, None)
        if layer is not None:
            for a in list(layer.actors) + list(layer.standin or []):
                self.renderer.RemoveActor(a)

    # -- extra actors (not workspace items) --------------------------------------------------------
    def set_extra(self, name: str, actors: list) -> None:
        """Show ``actors`` under ``name``, replacing what was shown under that name before."""
        for a in self.extras.pop(name, []):
            self.renderer.RemoveActor(a)
        if actors:
            self.extras[name] = list(actors)
            for a in actors:
                self.renderer.AddActor(a)
        self._update_welcome()

    def clear_extra(self, name: str) -> None:
        self.set_extra(name, [])

    def focus(self, xyz, radius: float, slab: bool = False, direction=None) -> None:
        """Look at the centre of ``xyz`` from the current direction, a sphere of ``radius`` Å filling
        most of the view (e.g. a docked pose in its pocket). ``slab``: what lies in front of that
        sphere is clipped away (until the view is turned), so a buried pocket is seen.
        ``direction``: look from there (a vector from the centre towards the camera) instead."""
        pts = np.asarray(xyz, float).reshape(-1, 3)
        if not len(pts):
            return
        centre = pts.mean(axis=0)
        cam = self.renderer.GetActiveCamera()
        if direction is None:
            direction = np.asarray(cam.GetPosition()) - np.asarray(cam.GetFocalPoint())
        direction = np.asarray(direction, float)
        n = np.linalg.norm(direction)
        direction = direction / n if n > 0 else np.array([0.0, 0.0, 1.0])
        angle = np.radians(cam.GetViewAngle()) / 2
        w, h = self.render_window.GetSize()
        aspect = min(1.0, (w / h) if w > 1 and h > 1 else 1.0)
        distance = radius / np.sin(angle) / max(aspect, 0.3)
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre + direction * distance))
        up = np.asarray(cam.GetViewUp(), float)
        if abs(float(up @ direction)) > 0.95:  # the old "up" lies along the new line of sight
            cam.SetViewUp(*np.cross(direction, [1.0, 0.0, 0.0] if abs(direction[0]) < 0.9 else [0.0, 1.0, 0.0]))
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()
        if slab:
            near, far = cam.GetClippingRange()
            cam.SetClippingRange(max(0.1, distance - radius), max(far, distance + radius))

    def reset_camera(self, ids: list[int] | None = None) -> None:
        """Fit the view to every item (``ids``: to those items only)."""
        layers = {i: layer for i, layer in self.layers.items() if ids is None or i in ids}
        # the bounding sphere leaves wide margins: zoom until the drawn atoms fill ~85% of the view
        pts = [self._fit_points(i, layer) for i, layer in layers.items() if len(layer.pickable)]
        for i in layers:
            cell = self.workspace.item(i).view_table().cell
            if cell is not None:  # the whole unit cell stays in view
                from logos_desktop.render.vtk_crystal import cell_outline

                pts.append(cell_outline(cell)[0])
        if ids is not None and pts:
            allp = np.vstack(pts).astype(float)
            lo, hi = allp.min(axis=0) - 2.0, allp.max(axis=0) + 2.0
            self.renderer.ResetCamera(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        else:
            self.renderer.ResetCamera()
        w, h = self.render_window.GetSize()
        if pts and w > 1 and h > 1:
            xy = self.project(np.vstack(pts))
            span = max((xy[:, 0].max() - xy[:, 0].min()) / w, (xy[:, 1].max() - xy[:, 1].min()) / h, 1e-3)
            self.renderer.GetActiveCamera().Zoom(min(3.0, max(0.5, 0.85 / span)))
        self.renderer.ResetCameraClippingRange()
        self.renderer.ResetCameraClippingRange()

    def _fit_points(self, item_id: int, layer) -> np.ndarray:
        """The points a fit keeps in view: every atom of the table (side chains stick out of a
        trace), at most ~4000 of them."""
        xyz = self.workspace.item(item_id).view_table().xyz
        if not len(xyz):
            xyz = xyz[layer.pickable]
        return xyz[:: max(1, len(xyz) // 4000)]

    def render(self) -> float:
        if self.welcome_shown():  # nothing to draw; the render window is hidden
            self.last_frame_s = 0.0
            return 0.0
        if not self._initialized and self.isVisible():
            self.vtk_widget.Initialize()
            self._initialized = True
        t0 = time.perf_counter()
        self.render_window.Render()
        self.last_frame_s = time.perf_counter() - t0
        if self.software_gl is None and self._initialized:
            self._detect_gl()
        self.frameRendered.emit(self.last_frame_s)
        return self.last_frame_s

    def _detect_gl(self) -> None:
        caps = (self.render_window.ReportCapabilities() or "").lower()
        line = next((ln for ln in caps.splitlines() if "renderer string" in ln), "")
        self.gl_renderer = line.split(":", 1)[-1].strip()
        self.software_gl = any(s in caps for s in SOFTWARE_GL)
        if not self.software_gl:
            self.renderer.UseFXAAOn()

    # -- drag level of detail -------------------------------------------------------------------
    def _drag_started(self, *_):
        self.dragging = True
        for layer in self.layers.values():
            if layer.standin:
                for a in layer.actors:
                    a.VisibilityOff()
                for a in layer.standin:
                    a.VisibilityOn()

    def _drag_ended(self, *_):
        self.dragging = False
        changed = False
        for layer in self.layers.values():
            if layer.standin:
                for a in layer.standin:
                    a.VisibilityOff()
                for a in layer.actors:
                    a.VisibilityOn()
                changed = True
        if changed:
            self.render()

    # -- selection, overlay, labels -------------------------------------------------------------
    def _selection_changed(self) -> None:
        self._update_overlay()
        self.render()

    def _update_overlay(self) -> None:
        for a in self._overlay + self._labels:
            self.renderer.RemoveActor(a)
        self._overlay, self._labels = [], []
        pos = []
        for item_id, idx in self.workspace.selection:
            item = self.workspace.item(item_id)
            if item is not None and item.visible and item_id in self.layers:
                pos.append(item.view_table().xyz[idx])
        if pos:
            pts = np.asarray(pos, np.float32)
            self._overlay.append(sphere_actor(pts, np.tile(SELECTION, (len(pts), 1)), 0.75, opacity=0.45))
            if 2 <= len(pts) <= 4:
                segs = np.column_stack([np.arange(len(pts) - 1), np.arange(1, len(pts))])
                self._overlay.append(segments_actor(pts, segs, np.tile(SELECTION, (len(segs), 1)), width=2.0))
        for a in self._overlay:
            self.renderer.AddActor(a)
        if self.show_atom_labels or self.show_residue_labels:
            self._labels = self._label_actors()
            for a in self._labels:
                self.renderer.AddActor(a)

    def _label_actors(self) -> list:
        pts, texts = [], []
        for item_id, layer in self.layers.items():
            item = self.workspace.item(item_id)
            table = item.view_table()
            idx = layer.pickable
            if self.show_atom_labels:
                for i in idx[:LABEL_LIMIT]:
                    pts.append(table.xyz[i])
                    texts.append(table.atom_names[i].strip())
            if self.show_residue_labels and item.obj.structure is not None:
                seen = set()
                names = table.atom_names
                for i in idx:
                    key = (table.chains[i], int(table.res_nums[i]))
                    if key in seen or (names[i].strip() not in ("CA", "P") and not table.hetero[i]):
                        continue
                    seen.add(key)
                    pts.append(table.xyz[i])
                    texts.append(f"{table.res_names[i]}{key[1]}{':' + key[0] if key[0] else ''}")
                    if len(seen) >= LABEL_LIMIT:
                        break
        if not pts:
            return []
        return [label_actor(pts, texts, size=12, shadow=True)]

    def set_labels(self, atoms: bool | None = None, residues: bool | None = None) -> None:
        if atoms is not None:
            self.show_atom_labels = atoms
        if residues is not None:
            self.show_residue_labels = residues
        self._update_overlay()
        self.render()

    # -- picking ------------------------------------------------------------------------------
    def _display(self, pos: QPoint) -> tuple[float, float]:
        r = self.vtk_widget.devicePixelRatioF()
        h = self.vtk_widget.height() * r
        return pos.x() * r, h - pos.y() * r - 1

    def _world(self, x: float, y: float, z: float) -> np.ndarray:
        self.renderer.SetDisplayPoint(x, y, z)
        self.renderer.DisplayToWorld()
        w = np.array(self.renderer.GetWorldPoint(), float)
        return w[:3] / (w[3] if w[3] else 1.0)

    def pick(self, pos: QPoint) -> tuple[int, int] | None:
        """The atom under ``pos`` (widget pixels): nearest to the viewer along the view ray."""
        x, y = self._display(pos)
        p0, p1 = self._world(x, y, 0.0), self._world(x, y, 1.0)
        d = p1 - p0
        d /= np.linalg.norm(d) or 1.0
        best = None
        for item_id, layer in self.layers.items():
            if not len(layer.pickable):
                continue
            xyz = self.workspace.item(item_id).view_table().xyz[layer.pickable].astype(float)
            rel = xyz - p0
            t = rel @ d
            dist = np.linalg.norm(rel - np.outer(t, d), axis=1)
            hit = np.flatnonzero(dist <= layer.pick_radii)
            if len(hit):
                k = hit[np.argmin(t[hit])]
                if best is None or t[k] < best[0]:
                    best = (t[k], item_id, int(layer.pickable[k]))
        return None if best is None else (best[1], best[2])

    def project(self, xyz) -> np.ndarray:
        """Display coordinates (VTK pixels, origin bottom-left) of world points."""
        cam = self.renderer.GetActiveCamera()
        m = cam.GetCompositeProjectionTransformMatrix(self.renderer.GetTiledAspectRatio(), -1, 1)
        mat = np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])
        h = np.column_stack([np.asarray(xyz, float), np.ones(len(xyz))]) @ mat.T
        ndc = h[:, :3] / h[:, 3:4]
        w, hgt = self.render_window.GetSize()
        return np.column_stack([(ndc[:, 0] + 1) * 0.5 * w, (ndc[:, 1] + 1) * 0.5 * hgt])

    def atoms_in_rect(self, rect: QRect) -> list[tuple[int, int]]:
        x0, y0 = self._display(rect.bottomLeft())
        x1, y1 = self._display(rect.topRight())
        out = []
        for item_id, layer in self.layers.items():
            if not len(layer.pickable):
                continue
            xy = self.project(self.workspace.item(item_id).view_table().xyz[layer.pickable])
            inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
            out += [(item_id, int(i)) for i in layer.pickable[inside]]
        return out

    def _on_click(self, pos: QPoint, modifiers) -> None:
        hit = self.pick(pos)
        self.atomClicked.emit(*(hit if hit else (-1, -1)), modifiers)

    def _on_box(self, rect: QRect, modifiers) -> None:
        self.atomsBoxed.emit(self.atoms_in_rect(rect), modifiers)

    # -- images -------------------------------------------------------------------------------
    def grab_image(self) -> QImage:
        """The rendered 3D scene as a QImage, read from the OpenGL back buffer."""
        self.render()
        f = vtkWindowToImageFilter()
        f.SetInput(self.render_window)
        f.SetInputBufferTypeToRGB()
        f.ReadFrontBufferOff()
        f.Update()
        img = f.GetOutput()
        w, h, _ = img.GetDimensions()
        arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)[::-1].copy()
        qimg = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        return qimg.copy()

    def image_array(self) -> np.ndarray:
        """(H, W, 3) uint8 pixels of the 3D view (for tests and exports)."""
        img = self.grab_image().convertToFormat(QImage.Format.Format_RGB888)
        ptr = img.constBits()
        arr = np.frombuffer(ptr, np.uint8, img.bytesPerLine() * img.height())
        return arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), img.width(), 3).copy()

    def closeEvent(self, ev):
        self.vtk_widget.Finalize()
        super().closeEvent(ev)
