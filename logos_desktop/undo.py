"""Every edit is a ``QUndoCommand`` around an ``engine.structures.edits`` edit.

The edit is applied once before it is pushed (so a refused edit never reaches the stack and the
object stays as it was); redo and undo call the edit's own ``apply`` / ``revert``.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand


class EditCommand(QUndoCommand):
    def __init__(self, workspace, item_id: int, edit) -> None:
        super().__init__(edit.label)
        self.workspace, self.item_id, self.edit = workspace, item_id, edit
        self._skip_first_redo = True

    def _obj(self):
        item = self.workspace.item(self.item_id)
        return None if item is None else item.obj

    def redo(self) -> None:
        if self._skip_first_redo:
            self._skip_first_redo = False
            return
        obj = self._obj()
        if obj is not None:
            self.edit.apply(obj)
            self.workspace.content_changed(self.item_id, atoms=self.edit.changes_atoms)

    def undo(self) -> None:
        obj = self._obj()
        if obj is not None:
            self.edit.revert(obj)
            self.workspace.content_changed(self.item_id, atoms=self.edit.changes_atoms)


def run_edit(stack, workspace, item, edit) -> list[str]:
    """Apply ``edit`` to ``item`` and push it; raises EditError (nothing changed) when refused.

    Returns the edit's warnings for the user.
    """
    edit.apply(item.obj)
    workspace.content_changed(item.id, atoms=edit.changes_atoms)
    stack.push(EditCommand(workspace, item.id, edit))
    return list(edit.warnings)
