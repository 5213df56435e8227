"""VTK building blocks shared by the molecule, protein and crystal renderers.

Spheres are impostors (``vtkOpenGLSphereMapper``: one vertex per atom, a radius array, direct RGB
colours) so that space-filling 100k atoms stays cheap on software OpenGL; bonds are half-bond
segments coloured by their atom, drawn as tubes for small structures and as lines for big ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkTubeFilter
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper
from vtkmodules.vtkRenderingOpenGL2 import vtkOpenGLSphereMapper

TUBE_LIMIT = 6000  # bonds above this are drawn as lines, not tube meshes

CHAIN_PALETTE = np.array([  # no orange or green: those mark pocket and ligand carbons
    (0.35, 0.60, 0.95), (0.78, 0.62, 0.98), (0.40, 0.82, 0.85), (0.92, 0.55, 0.78),
    (0.60, 0.70, 0.85), (0.55, 0.45, 0.90), (0.85, 0.80, 0.95), (0.35, 0.50, 0.70),
])
POCKET_CARBON = (1.0, 0.55, 0.10)
LIGAND_CARBON = (0.20, 0.90, 0.35)
SELECTION = (1.0, 0.95, 0.1)


@lru_cache(maxsize=1)
def _element_tables():
    from vtkmodules.vtkDomainsChemistry import vtkPeriodicTable

    table = vtkPeriodicTable()
    n = table.GetNumberOfElements() + 1
    rgb = np.zeros((n, 3), float)
    vdw = np.zeros(n, float)
    cov = np.zeros(n, float)
    for z in range(n):
        c = [0.0, 0.0, 0.0]
        table.GetDefaultRGBTuple(z, c)
        rgb[z] = c
        vdw[z] = table.GetVDWRadius(z)
        cov[z] = table.GetCovalentRadius(z)
    rgb[0] = (0.9, 0.2, 0.9)  # unknown element: magenta
    vdw[0], cov[0] = 1.5, 0.8
    return rgb, vdw, cov


def _z(atomic_numbers) -> np.ndarray:
    rgb, _, _ = _element_tables()
    z = np.asarray(atomic_numbers, int)
    return np.where((z > 0) & (z < len(rgb)), z, 0)


def element_colors(atomic_numbers) -> np.ndarray:
    """(N, 3) float RGB in 0..1 from VTK's periodic table (Jmol-like colours)."""
    return _element_tables()[0][_z(atomic_numbers)].copy()


def vdw_radii(atomic_numbers) -> np.ndarray:
    return _element_tables()[1][_z(atomic_numbers)].copy()


def covalent_radii(atomic_numbers) -> np.ndarray:
    return _element_tables()[2][_z(atomic_numbers)].copy()


def _u8(colors) -> np.ndarray:
    return np.clip(np.asarray(colors, float) * 255.0, 0, 255).astype(np.uint8)


def _points(xyz) -> vtkPoints:
    pts = vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(xyz, dtype=np.float32), deep=True))
    return pts


def _cells(n_per_cell: int, conn: np.ndarray) -> vtkCellArray:
    conn = np.ascontiguousarray(conn, dtype=np.int64).ravel()
    offsets = np.arange(0, len(conn) + 1, n_per_cell, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True), numpy_to_vtkIdTypeArray(conn, deep=True))
    return cells


def sphere_actor(xyz, colors, radii, opacity: float = 1.0) -> vtkActor:
    """Impostor spheres: one vertex cell per atom (the sphere mapper draws nothing without them)."""
    xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    n = len(xyz)
    pd = vtkPolyData()
    pd.SetPoints(_points(xyz))
    pd.SetVerts(_cells(1, np.arange(n)))
    rad = numpy_to_vtk(np.ascontiguousarray(np.broadcast_to(radii, (n,)), dtype=np.float32), deep=True)
    rad.SetName("radius")
    pd.GetPointData().AddArray(rad)
    col = numpy_to_vtk(_u8(colors).reshape(-1, 3), deep=True)
    col.SetName("colors")
    pd.GetPointData().SetScalars(col)
    mapper = vtkOpenGLSphereMapper()
    mapper.SetInputData(pd)
    mapper.SetScaleArray("radius")
    mapper.SetColorModeToDirectScalars()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetOpacity(opacity)
    actor.GetProperty().SetSpecular(0.3)
    actor.GetProperty().SetSpecularPower(30)
    return actor


def segments_actor(points, segments, colors, radius: float | None = None, width: float = 2.0,
                   opacity: float = 1.0) -> vtkActor:
    """Line segments (``segments``: (M, 2) point indices) with one RGB colour per segment.

    ``radius`` given and few segments: tubes; otherwise lines of ``width`` pixels.
    """
    points = np.asarray(points, np.float32).reshape(-1, 3)
    segments = np.asarray(segments, np.int64).reshape(-1, 2)
    pd = vtkPolyData()
    pd.SetPoints(_points(points))
    pd.SetLines(_cells(2, segments))
    col = numpy_to_vtk(_u8(colors).reshape(-1, 3), deep=True)
    col.SetName("colors")
    pd.GetCellData().SetScalars(col)
    mapper = vtkPolyDataMapper()
    if radius is not None and len(segments) <= TUBE_LIMIT:
        tubes = vtkTubeFilter()
        tubes.SetInputData(pd)
        tubes.SetRadius(radius)
        tubes.SetNumberOfSides(10)
        tubes.CappingOn()
        mapper.SetInputConnection(tubes.GetOutputPort())
    else:
        mapper.SetInputData(pd)
    mapper.SetColorModeToDirectScalars()
    mapper.SetScalarModeToUseCellData()
    actor = vtkActor()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    prop.SetLineWidth(width)
    prop.SetOpacity(opacity)
    if radius is None or len(segments) > TUBE_LIMIT:
        prop.SetLighting(False)
    return actor


def label_actor(points, texts, *, size: int = 12, colour=(1.0, 1.0, 1.0), bold: bool = False,
                shadow: bool = False, background: float | None = None):
    """One 2D actor drawing ``texts`` at the 3D ``points`` (screen-aligned labels). ``background``:
    the opacity of a black box behind each label, or None for none."""
    from vtkmodules.vtkCommonCore import vtkStringArray
    from vtkmodules.vtkRenderingCore import vtkActor2D
    from vtkmodules.vtkRenderingLabel import vtkLabeledDataMapper

    pd = vtkPolyData()
    pd.SetPoints(_points(points))
    arr = vtkStringArray()
    arr.SetName("labels")
    for t in texts:
        arr.InsertNextValue(t)
    pd.GetPointData().AddArray(arr)
    mapper = vtkLabeledDataMapper()
    mapper.SetInputData(pd)
    mapper.SetLabelModeToLabelFieldData()
    mapper.SetFieldDataName("labels")
    tp = mapper.GetLabelTextProperty()
    tp.SetFontSize(size)
    tp.SetBold(bold)
    tp.SetColor(*colour)
    if shadow:
        tp.ShadowOn()
    if background is not None:
        tp.SetBackgroundColor(0.0, 0.0, 0.0)
        tp.SetBackgroundOpacity(background)
    actor = vtkActor2D()
    actor.SetMapper(mapper)
    return actor


def half_bonds(xyz, bonds, atom_colors):
    """Split every bond at its midpoint: (points, segments, colours) with each half coloured by its atom."""
    xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    bonds = np.asarray(bonds, np.int64).reshape(-1, 2)
    n, m = len(xyz), len(bonds)
    mid = 0.5 * (xyz[bonds[:, 0]] + xyz[bonds[:, 1]])
    points = np.vstack([xyz, mid])
    mids = n + np.arange(m)
    segments = np.vstack([np.column_stack([bonds[:, 0], mids]), np.column_stack([bonds[:, 1], mids])])
    colors = np.vstack([atom_colors[bonds[:, 0]], atom_colors[bonds[:, 1]]])
    return points, segments, colors


@dataclass
class Layer:
    """What one workspace item puts in the scene.

    ``actors``: full detail; ``standin``: cheap actors shown instead while the user drags (None
    when the full detail is already cheap); ``pickable``: atom indices a click can hit, with
    ``pick_radii`` (Å) for each.
    """

    actors: list = field(default_factory=list)
    standin: list | None = None
    pickable: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    pick_radii: np.ndarray = field(default_factory=lambda: np.zeros(0, float))
    description: str = ""
