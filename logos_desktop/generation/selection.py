"""From what the user selected in the workspace to the inputs of a generation task.

The workspace (``logos_desktop.workspace.Workspace``, owned by the workspace area) holds the loaded
items, the current item and the selected atoms as ``(item id, atom index)``. This module only
reads them (``read_selection``) into a snapshot the task catalogue understands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Selection:
    """A read-only snapshot of the workspace selection."""

    objects: list[Any] = field(default_factory=list)  # every LoadedObject in the workspace
    current: Any = None  # the LoadedObject that is selected (or holds the selected atoms/residues)
    residues: list[tuple[str, str, str]] = field(default_factory=list)  # (chain, seqid, resname) in current
    selected_objects: list[Any] = field(default_factory=list)  # every object with a selected atom
    # nothing picked and ``residues`` are the marked pocket, which is the engine's pocket of this
    # ligand (spec "XK2 A:263") at this cutoff (Å): the ligand task sends that ligand
    pocket_ligand: str | None = None
    pocket_cutoff: float | None = None
    # what the user selected before a result was shown: the input of a task that cannot take the
    # shown result (a designed ligand is not a pocket; the pocket stays the complex's)
    fallback: "Selection | None" = None

    @property
    def kind(self) -> str | None:
        return getattr(self.current, "kind", None)


def workspace_of(window):
    return getattr(window, "workspace", None)


def read_selection(window, current=None) -> Selection:
    """The selection, with ``current`` (a workspace Item) standing for the current item if given."""
    ws = workspace_of(window)
    if ws is None:
        return Selection()
    items = ws.items()
    sel = Selection(objects=[it.obj for it in items])
    atoms_by_item: dict[int, list[int]] = {}
    for item_id, idx in getattr(ws, "selection", []) or []:
        atoms_by_item.setdefault(item_id, []).append(idx)
    current = current if current is not None else ws.current()
    if current is None and atoms_by_item:
        current = ws.item(next(iter(atoms_by_item)))
    if current is None and len(items) == 1:
        current = items[0]
    if current is None:
        return sel
    sel.current = current.obj
    sel.selected_objects = [ws.item(i).obj for i in atoms_by_item if ws.item(i) is not None]
    picked = atoms_by_item.get(current.id, [])
    if picked:
        table = current.view_table()
        sel.residues = list(dict.fromkeys(
            (str(table.chains[i]), str(int(table.res_nums[i])), str(table.res_names[i])) for i in picked))
    elif getattr(current, "pocket", None) and current.obj.structure is not None:
        names = _residue_names(current.obj.structure)
        sel.residues = [(c, s, names.get((c, s), "")) for c, s in sorted(current.pocket)]
        if getattr(current, "pocket_follows_ligand", lambda: False)():
            sel.pocket_ligand, sel.pocket_cutoff = current.pocket_ligand, current.pocket_cutoff
    return sel


def _residue_names(structure) -> dict[tuple[str, str], str]:
    out = {}
    for ch in structure[0]:
        for res in ch:
            out[(ch.name, str(res.seqid.num))] = res.name
    return out
