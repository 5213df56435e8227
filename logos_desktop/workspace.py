"""The workspace model: what is loaded, how each object is shown, what is selected.

A Qt model with typed signals (the views subscribe; nothing here draws). Files are read by
``engine.structures.io``; each file is handled on its own, so one bad file in a drop never stops
the others, and a failure is reported through ``failed(name, message)`` without touching what is
already loaded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

BIG_STRUCTURE = 20000  # atoms: above this a protein's first frame is a quick trace table

DEFAULT_STYLE = {"molecule": "ball-and-stick", "protein": "trace", "complex": "trace",
                 "crystal": "ball-and-stick", "sequence": "trace"}
FREE_FRAME_GAP = 4.0  # Å between an object laid beside the others and what is already shown


def has_free_frame(obj) -> bool:
    """True for an object whose coordinates share the workspace frame only by accident: a molecule
    read from SMILES (its 3D coordinates are made up around the origin) or a result preview not
    placed in a pocket. Such objects are laid beside what is shown instead of on top of it."""
    flag = getattr(obj, "_logos_free_frame", None)
    if flag is not None:
        return bool(flag)
    mol = getattr(obj, "mol", None)
    return getattr(obj, "fmt", None) == "smi" and mol is not None and mol.GetNumConformers() == 0


@dataclass
class Item:
    id: int
    obj: object  # engine.structures.model.LoadedObject
    style: str
    visible: bool = True
    pocket: set = field(default_factory=set)  # {(chain, seqid)} highlighted pocket residues
    # the ligand whose pocket was marked (engine spec "XK2 A:263") and the cutoff (Å) it was marked at;
    # ``pocket`` is that ligand's pocket until the user marks residues by hand
    pocket_ligand: str | None = None
    pocket_cutoff: float | None = None
    ligand_pocket: frozenset = frozenset()
    ligand_opacity: float = 1.0  # below 1: the ligands are faded (a docked pose is shown over them)
    offset: object = None  # (3,) Å added to the drawn coordinates of a free-frame object (None: as read)
    _table: object = None
    _quick: object = None
    _gen: int = 0

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def name(self) -> str:
        return self.obj.name

    def summary(self) -> dict:
        return self.obj.summary()

    def table(self):
        """The full AtomTable (cached until the object is edited)."""
        if self._table is None:
            from engine.structures.atoms import atom_table

            table = atom_table(self.obj)
            if self.offset is not None:  # laid beside the others (display only: the object is unchanged)
                from dataclasses import replace

                import numpy as np

                table = replace(table, xyz=(table.xyz + np.asarray(self.offset, np.float32)).astype(np.float32))
            self._table = table
        return self._table

    @property
    def free_frame(self) -> bool:
        return has_free_frame(self.obj)

    def pocket_follows_ligand(self) -> bool:
        """True while the marked pocket is exactly the engine's pocket of ``pocket_ligand``."""
        return self.pocket_ligand is not None and self.pocket == self.ligand_pocket

    def has_table(self) -> bool:
        return self._table is not None

    def quick_table(self):
        """A cheap table for the first frame of a big structure (trace atoms and ligands)."""
        if self._table is not None:
            return self._table
        if self._quick is None:
            from logos_desktop.render.vtk_protein import trace_table

            self._quick = trace_table(self.obj.structure)
        return self._quick

    def view_table(self):
        """The table the view draws now: the full one, or the quick one while a big one is built."""
        if self._table is not None or not self.is_big():
            return self.table()
        return self.quick_table()

    def is_big(self) -> bool:
        return self.obj.structure is not None and self.summary().get("atoms", 0) > BIG_STRUCTURE

    def invalidate(self) -> None:
        self._table = None
        self._quick = None
        self._gen += 1


class Workspace(QObject):
    itemsChanged = Signal()          # an item was added or removed
    itemChanged = Signal(int)        # an item's content or display changed (edit, style, pocket)
    tableReady = Signal(int)         # a big item's full table arrived
    currentChanged = Signal(int)     # -1: none
    selectionChanged = Signal()
    failed = Signal(str, str)        # (file or "pasted text", message)
    loaded = Signal(str, int)        # (file, number of objects) for the status bar and recent files

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._pending: dict[int, tuple[int, object]] = {}  # item id -> (generation, future)
        self._pool = None
        self._poll = None
        self._items: dict[int, Item] = {}
        self._ids = itertools.count(1)
        self._current = -1
        self.selection: list[tuple[int, int]] = []  # (item id, atom index), in click order

    # -- items --------------------------------------------------------------------------------
    def items(self) -> list[Item]:
        return list(self._items.values())

    def item(self, item_id: int) -> Item | None:
        return self._items.get(item_id)

    def current(self) -> Item | None:
        return self._items.get(self._current)

    def set_current(self, item_id: int) -> None:
        if item_id != self._current and (item_id in self._items or item_id == -1):
            self._current = item_id
            self.currentChanged.emit(item_id)

    def add_objects(self, objs) -> list[Item]:
        added = []
        for obj in objs:
            item = Item(next(self._ids), obj, DEFAULT_STYLE.get(obj.kind, "ball-and-stick"))
            if item.style == "trace" and obj.structure is not None and not item.is_big():
                item.style = "tube"  # small enough for a smooth tube; big ones keep the line trace
            if obj.kind in ("complex", "protein") and obj.structure is not None:
                self._mark(item, None, None)
            if item.free_frame:
                item.offset = self._beside_the_others(item)
            self._items[item.id] = item
            added.append(item)
        if added:
            self.itemsChanged.emit()
            self.set_current(added[-1].id)
            big = [i for i in added if i.is_big()]
            if big:  # after the first frame (the view draws on itemsChanged): then the detail
                from PySide6.QtCore import QTimer

                QTimer.singleShot(0, lambda: [self._build_table_later(i) for i in big if i.id in self._items])
        return added

    def _beside_the_others(self, item: Item):
        """The offset that puts ``item`` beside everything shown (along +x, centred on the others in
        y and z, ``FREE_FRAME_GAP`` apart); None when nothing is shown yet."""
        import numpy as np

        shown = [i.view_table().xyz for i in self._items.values() if i.visible and len(i.view_table().xyz)]
        own = item.table().xyz
        if not shown or not len(own):
            return None
        allxyz = np.vstack(shown)
        lo, hi = allxyz.min(axis=0), allxyz.max(axis=0)
        olo, ohi = own.min(axis=0), own.max(axis=0)
        centre, ocentre = (lo + hi) / 2, (olo + ohi) / 2
        offset = np.array([hi[0] + FREE_FRAME_GAP - olo[0], centre[1] - ocentre[1], centre[2] - ocentre[2]])
        item.invalidate()  # the table is rebuilt with the offset
        return offset

    def remove(self, item_id: int) -> None:
        if self._items.pop(item_id, None) is not None:
            self.selection = [s for s in self.selection if s[0] != item_id]
            if self._current == item_id:
                self._current = -1
                nxt = next(iter(self._items), -1)
                self.set_current(nxt)
                if nxt == -1:
                    self.currentChanged.emit(-1)
            self.itemsChanged.emit()
            self.selectionChanged.emit()

    def clear(self) -> None:
        for item_id in list(self._items):
            self.remove(item_id)

    def set_style(self, item_id: int, style: str) -> None:
        item = self._items.get(item_id)
        if item is not None and item.style != style:
            item.style = style
            self.itemChanged.emit(item_id)

    def set_ligand_opacity(self, item_id: int, opacity: float) -> None:
        item = self._items.get(item_id)
        if item is not None and item.ligand_opacity != opacity:
            item.ligand_opacity = float(opacity)
            self.itemChanged.emit(item_id)

    def set_visible(self, item_id: int, visible: bool) -> None:
        item = self._items.get(item_id)
        if item is not None and item.visible != visible:
            item.visible = visible
            self.itemChanged.emit(item_id)

    def content_changed(self, item_id: int, atoms: bool = True) -> None:
        """Called after an edit or undo: drop cached tables (``atoms``) and the item's selection."""
        item = self._items.get(item_id)
        if item is None:
            return
        if not atoms:
            self.itemChanged.emit(item_id)
            return
        follows = item.pocket_follows_ligand()
        item.invalidate()
        if follows:  # an edited structure: the marking stays the ligand's pocket (what the task sends)
            self._mark(item, item.pocket_ligand, item.pocket_cutoff)
        if item.is_big():
            self._build_table_later(item)
        if any(s[0] == item_id for s in self.selection):
            self.selection = [s for s in self.selection if s[0] != item_id]
            self.selectionChanged.emit()
        self.itemChanged.emit(item_id)

    # -- big structures: the full table is built off the GUI thread ----------------------------
    def _build_table_later(self, item: Item) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from PySide6.QtCore import QTimer

        from engine.structures.atoms import atom_table

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atom-table")
            self._poll = QTimer(self)
            self._poll.setInterval(100)
            self._poll.timeout.connect(self._collect_tables)
        self._pending[item.id] = (item._gen, self._pool.submit(atom_table, item.obj))
        self._poll.start()

    def _collect_tables(self) -> None:
        for item_id, (gen, fut) in list(self._pending.items()):
            if not fut.done():
                continue
            del self._pending[item_id]
            item = self._items.get(item_id)
            if item is None or item._gen != gen:
                continue
            try:
                item._table = fut.result()
            except Exception as exc:  # keep the quick table; say why the detail is missing
                self.failed.emit(item.name, f"{item.name}: atom table failed ({type(exc).__name__}: {exc})")
                continue
            if any(s[0] == item_id for s in self.selection):  # indices were into the quick table
                self.selection = [s for s in self.selection if s[0] != item_id]
                self.selectionChanged.emit()
            self.tableReady.emit(item_id)
        if not self._pending and self._poll is not None:
            self._poll.stop()

    def wait_for_tables(self, timeout: float = 120.0) -> bool:
        """Block until every pending full table is built (screenshots, tests)."""
        import time

        end = time.monotonic() + timeout
        for _gen, fut in list(self._pending.values()):
            try:
                fut.result(timeout=max(0.0, end - time.monotonic()))
            except Exception:  # noqa: BLE001 - reported by _collect_tables
                pass
        self._collect_tables()
        return not self._pending

    def shutdown(self) -> None:
        if self._poll is not None:
            self._poll.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- opening ------------------------------------------------------------------------------
    def open_paths(self, paths) -> list[Item]:
        """Read each file on its own; failures go to ``failed``; returns the items added."""
        from engine.structures import io
        from engine.structures.model import StructureReadError

        added: list[Item] = []
        for p in paths:
            path = Path(p)
            try:
                objs = io.read_file(path)
            except StructureReadError as exc:
                self.failed.emit(str(path), str(exc))
                continue
            except Exception as exc:  # a reader bug must not take the window down
                self.failed.emit(str(path), f"{path}: could not be read ({type(exc).__name__}: {exc})")
                continue
            added += self.add_objects(objs)
            self.loaded.emit(str(path), len(objs))
        return added

    def open_text(self, text: str, name: str = "pasted") -> list[Item]:
        from engine.structures import io
        from engine.structures.model import StructureReadError

        try:
            objs = io.read_text(text, name=name)
        except StructureReadError as exc:
            self.failed.emit("pasted text", str(exc))
            return []
        except Exception as exc:
            self.failed.emit("pasted text", f"pasted text could not be read ({type(exc).__name__}: {exc})")
            return []
        return self.add_objects(objs)

    # -- selection ----------------------------------------------------------------------------
    def set_selection(self, atoms) -> None:
        self.selection = list(dict.fromkeys((int(i), int(a)) for i, a in atoms))
        self.selectionChanged.emit()

    def toggle_atoms(self, atoms) -> None:
        sel = list(self.selection)
        for key in atoms:
            key = (int(key[0]), int(key[1]))
            if key in sel:
                sel.remove(key)
            else:
                sel.append(key)
        self.set_selection(sel)

    def selected_positions(self):
        out = []
        for item_id, idx in self.selection:
            item = self._items.get(item_id)
            if item is not None:
                out.append(item.view_table().xyz[idx])
        return out

    def residues_of(self, item: Item, indices) -> list[tuple[str, str]]:
        table = item.view_table()
        return list(dict.fromkeys((table.chains[i], str(int(table.res_nums[i]))) for i in indices))

    # -- pocket -------------------------------------------------------------------------------
    def mark_ligand_pocket(self, item_id: int, ligand: str | None = None, cutoff: float | None = None) -> bool:
        """Mark the pocket of ``ligand`` (an engine spec such as ``"XK2 A:263"``; None: the ligand the
        ligand task takes by default) at ``cutoff`` Å (None: the engine's default): the residues of
        ``engine.structures.pocket.ligand_site``, the pocket the ligand task encodes. Returns True when
        the marking changed (the views are told)."""
        item = self._items.get(item_id)
        if item is None or item.obj.structure is None:
            return False
        before = (set(item.pocket), item.pocket_ligand, item.pocket_cutoff)
        problem = self._mark(item, ligand, cutoff)
        if problem:
            self.failed.emit(item.name, f"{item.name}: {problem}")
        if (set(item.pocket), item.pocket_ligand, item.pocket_cutoff) == before:
            return False
        self.itemChanged.emit(item_id)
        return True

    @staticmethod
    def _mark(item: Item, ligand, cutoff) -> str | None:
        """Set ``item``'s pocket to the engine's pocket of the ligand (in place: the pocket edits on the
        undo stack hold this set). No ligand in the structure: nothing marked. Returns a problem."""
        from engine.structures import pocket as P

        try:
            site = P.ligand_site(item.obj, ligand, cutoff=P.DEFAULT_CUTOFF if cutoff is None else cutoff)
        except P.PocketError as exc:
            if ligand is None:  # no ligand at all: a bare protein
                item.pocket.clear()
                item.pocket_ligand, item.ligand_pocket = None, frozenset()
                return None
            return str(exc)
        item.pocket.clear()
        item.pocket.update(site.keys)
        item.pocket_ligand, item.pocket_cutoff = site.ligand.spec, site.cutoff
        item.ligand_pocket = frozenset(site.keys)
        return None

    def follow_task_pocket(self, obj, ligand: str, cutoff: float | None, chosen: bool = False) -> bool:
        """The ligand task's pocket changed (its ligand or cutoff): mark it on the object's item.
        ``chosen`` (the user picked the ligand in the task options): the atoms selected on that item,
        which chose the ligand before, are let go. Returns True when the marking changed."""
        item = next((i for i in self._items.values() if i.obj is obj), None)
        if item is None:
            return False
        changed = self.mark_ligand_pocket(item.id, ligand, cutoff)
        if chosen and any(s[0] == item.id for s in self.selection):
            self.set_selection([s for s in self.selection if s[0] != item.id])
        return changed
