"""The main window: menus, the workspace (tree, 3D and 2D views), and a status bar that says what
the engine is doing.

Other areas attach here: ``menus`` ("File", "Edit", "View", "Generate", "Docking", "Models", "Help"), the
status bar labels (``model_label``, ``backend_label``), the dock areas (left: workspace tree;
right: 2D view and measurements; bottom: free for results) and ``workspace`` (what is loaded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QPoint, QProcess, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeySequence, QPainter, QUndoStack
from PySide6.QtWidgets import (
    QApplication, QComboBox, QDockWidget, QFileDialog, QInputDialog, QLabel, QListWidget,
    QMainWindow, QMessageBox, QToolBar,
)

from logos_desktop.widgets.qt_view2d import QtView2D
from logos_desktop.widgets.qt_view3d import QtView3D
from logos_desktop.widgets.qt_workspace_tree import STYLES, QtWorkspaceTree
from logos_desktop.workspace import Workspace

OPEN_FILTER = ("Structures and projects (*.logos *.sdf *.sd *.mol *.mol2 *.xyz *.smi *.smiles *.pdb *.ent *.cif *.mmcif "
               "*.poscar *.vasp POSCAR* CONTCAR* *.fasta *.fa *.faa *.gz *.bz2);;All files (*)")
EXPORT_FORMATS = {"molecule": "sdf", "protein": "pdb", "complex": "pdb", "crystal": "cif", "sequence": "fasta"}
PROJECT_FORMATS = {"molecule": "sdf", "protein": "mmcif", "complex": "mmcif", "crystal": "cif", "sequence": "fasta"}
RECENT_MAX = 10
PROJECT_SUFFIXES = (".logos", ".db")


SIDE_DOCK_WIDTH = (310, 330)  # left (workspace, Generate) and right (2D, measurements, Jobs) docks


class MainWindow(QMainWindow):
    DEFAULT_SIZE = (1400, 900)

    def __init__(self, model: str | None = None, start_engine: bool = True, remember: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("LOGOS Desktop")
        # remember: keep the recent files and projects lists and reopen the last project on start
        # (off for --screenshot runs, which must leave the user's lists alone)
        self.remember = remember
        self.resize(*self.DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.model_path = model
        self.backend_text = "engine: starting…"
        self._backend_ready = False
        self.workspace = Workspace(self)
        self.undo_stack = QUndoStack(self)
        self.error_log: list[str] = []      # every load failure shown to the user, in order
        self.measurements: list[str] = []
        self.notices: list[str] = []
        self._error_box: QMessageBox | None = None
        self._pending_errors: list[str] = []
        self._build_central()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        self._probe: QProcess | None = None
        if start_engine:
            self.probe_backend()
        else:
            self._set_backend("engine: not started (--no-engine)")
        # the generation workflow (issue 7): docks, Generate/Models menus, engine process
        from logos_desktop.generation import install_generation

        install_generation(self, start_engine=start_engine, model=model)
        # docking (issue 21): Dock selected, the docking jobs, poses in the pocket, summary and pictures
        from logos_desktop.docking import install_docking

        install_docking(self)
        if remember:  # the project the user had open last, with its rows
            self.generation.reopen_last_project()

    # -- layout -------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.view3d = QtView3D(self.workspace, self)
        self.setCentralWidget(self.view3d)
        # the first-run welcome in the empty view: examples open as File › Open would open them
        from logos_desktop.widgets.welcome import QtWelcome

        self.welcome = QtWelcome()
        self.welcome.exampleRequested.connect(lambda path: self.open_paths([path]))
        self.view3d.set_welcome(self.welcome)
        self.tree = QtWorkspaceTree(self.workspace)
        self.tree_dock = self._dock("Workspace", self.tree, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.view2d = QtView2D(self.workspace)
        self.view2d_dock = self._dock("2D", self.view2d, Qt.DockWidgetArea.RightDockWidgetArea)
        self.measure_list = QListWidget()
        self.measure_dock = self._dock("Selection and measurements", self.measure_list,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        # the side docks together leave the 3D view at least half of the default 1400 px
        self.resizeDocks([self.tree_dock], [SIDE_DOCK_WIDTH[0]], Qt.Orientation.Horizontal)
        self.resizeDocks([self.view2d_dock], [SIDE_DOCK_WIDTH[1]], Qt.Orientation.Horizontal)

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu: str, text: str, slot, shortcut=None, checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(shortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.menus[menu].addAction(act)
        self.actions_by_name[text.replace("&", "").rstrip("…").strip()] = act
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.menus = {}
        self.actions_by_name: dict[str, QAction] = {}
        for title in ("&File", "&Edit", "&View", "&Generate", "&Docking", "&Models", "&Help"):
            self.menus[title.replace("&", "")] = bar.addMenu(title)
        S = QKeySequence.StandardKey
        # File
        self._action("File", "&Open…", self.open_dialog, S.Open)
        self.recent_menu = self.menus["File"].addMenu("Recent structure &files")
        self._action("File", "&Paste SMILES or FASTA", self.paste_text, QKeySequence("Ctrl+Shift+V"))
        self.menus["File"].addSeparator()
        self._action("File", "&Save session to project…", self.save_to_project, S.Save)
        self._action("File", "&Export structure…", self.export_structure)
        self._action("File", "Export &image…", self.export_image)
        self.menus["File"].addSeparator()
        self._action("File", "&Quit", self.close, S.Quit)
        # Edit
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(S.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(S.Redo)
        self.menus["Edit"].addActions([undo, redo])
        self.undo_action, self.redo_action = undo, redo
        self.menus["Edit"].addSeparator()
        self._action("Edit", "&Delete selected atoms", self.delete_selected, S.Delete)
        self._action("Edit", "&Replace atom element…", lambda: self.replace_atom())
        self._action("Edit", "Add &hydrogens", lambda: self._mol_edit("AddHydrogens"))
        self._action("Edit", "Remove h&ydrogens", lambda: self._mol_edit("RemoveHydrogens"))
        self._action("Edit", "&Clean up 3D (ETKDG + MMFF)", lambda: self._mol_edit("CleanUp3D"))
        self._action("Edit", "Edit &SMILES…", lambda: self.edit_smiles())
        self.menus["Edit"].addSeparator()
        # lambdas: triggered(checked) would arrive as the dialog answer (False)
        self._action("Edit", "&Mutate residue…", lambda: self.mutate_residue())
        self._action("Edit", "Mark selected residues as &pocket", lambda: self.set_pocket(True))
        self._action("Edit", "&Unmark selected pocket residues", lambda: self.set_pocket(False))
        self.pocket_click_action = self._action("Edit", "Click residues to mark/unmark pocket",
                                                lambda: None, checkable=True)
        self.menus["Edit"].addSeparator()
        self._action("Edit", "Supe&rcell…", lambda: self.supercell())
        self._action("Edit", "Substitute &element…", lambda: self.substitute_element())
        self.menus["Edit"].addSeparator()
        self._action("Edit", "Select &none", lambda: self.workspace.set_selection([]), QKeySequence("Esc"))
        # View
        self._action("View", "&Fit to view", self.fit_view, QKeySequence("F"))
        self.style_menu = self.menus["View"].addMenu("&Style of the current object")
        self.style_menu.aboutToShow.connect(self._fill_style_menu)
        self._action("View", "Atom &labels", lambda on: self.view3d.set_labels(atoms=on), checkable=True)
        self._action("View", "&Residue labels", lambda on: self.view3d.set_labels(residues=on), checkable=True)
        self.menus["View"].addSeparator()
        for dock in (self.tree_dock, self.view2d_dock, self.measure_dock):
            self.menus["View"].addAction(dock.toggleViewAction())
        # Help
        self._action("Help", "&About LOGOS Desktop", self.show_about)
        self._refresh_recent()

    def _build_toolbar(self) -> None:
        tb = QToolBar("Workspace", self)
        tb.setObjectName("workspace_toolbar")
        self.addToolBar(tb)
        tb.addWidget(QLabel(" Select: "))
        self.select_mode = QComboBox()
        self.select_mode.addItems(["atom", "residue", "chain"])
        tb.addWidget(self.select_mode)
        tb.addWidget(QLabel("  Style: "))
        self.style_box = QComboBox()
        self.style_box.setMinimumWidth(130)
        self.style_box.activated.connect(self._style_chosen)
        tb.addWidget(self.style_box)
        tb.addSeparator()
        tb.addAction(self.actions_by_name["Fit to view"])
        tb.addAction(self.undo_action)
        tb.addAction(self.redo_action)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        self.model_label = QLabel(self._model_text())
        self.backend_label = QLabel(self.backend_text)
        self.view_label = QLabel("")
        self.statusBar().addPermanentWidget(self.view_label)
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.backend_label)

    def _connect(self) -> None:
        ws = self.workspace
        ws.failed.connect(self._load_failed)
        ws.loaded.connect(self._loaded)
        ws.currentChanged.connect(self._current_changed)
        ws.itemChanged.connect(lambda i: self._current_changed(ws.current().id if ws.current() else -1))
        ws.selectionChanged.connect(self._selection_changed)
        ws.tableReady.connect(lambda i: self.statusBar().showMessage(
            f"{ws.item(i).name}: full detail ready", 4000) if ws.item(i) else None)
        self.tree.removeRequested.connect(self.remove_item)
        self.view3d.atomClicked.connect(self._atom_clicked)
        self.view3d.atomsBoxed.connect(self._atoms_boxed)
        self.view3d.frameRendered.connect(self._frame_rendered)

    def _model_text(self) -> str:
        from engine import paths

        if self.model_path:
            return f"model: {Path(self.model_path).name}"
        bundled = paths.bundled_models()
        if bundled:
            return f"model: {bundled[0].name} (demonstration)"
        return "model: none — the demonstration model is not bundled yet"

    # -- engine backend probe -----------------------------------------------------------------
    def probe_backend(self) -> None:
        """Ask a separate engine process which llama.cpp build it runs (the GUI never loads it)."""
        self._probe = QProcess(self)
        self._probe.finished.connect(self._probe_finished)
        self._probe.errorOccurred.connect(lambda _err: self._set_backend("engine: failed to start"))
        self._probe.start(sys.executable, ["-m", "engine", "doctor", "--json"])

    def _probe_finished(self, code: int, _status) -> None:
        raw = bytes(self._probe.readAllStandardOutput()).decode(errors="replace")
        try:
            ll = json.loads(raw)["llama_cpp"]
        except (ValueError, KeyError):
            self._set_backend(f"engine: unavailable (exit {code})")
            return
        if not ll.get("available"):
            self._set_backend("engine: llama.cpp missing")
            return
        gpu = "GPU visible" if ll.get("gpu_visible") else "no GPU"
        self._set_backend(f"engine: {ll.get('backend')} ({gpu})")

    def _set_backend(self, text: str) -> None:
        self.backend_text = text
        self.backend_label.setText(text)
        self._backend_ready = True

    # -- opening ------------------------------------------------------------------------------
    def open_paths(self, paths) -> list:
        """Open files one by one (each failure reported on its own); returns the items added."""
        paths = [str(p) for p in paths]
        if paths:
            self.statusBar().showMessage(f"opening {len(paths)} file{'s' if len(paths) > 1 else ''}…")
            QApplication.processEvents()
        projects = [p for p in paths if p.lower().endswith(PROJECT_SUFFIXES)]
        added = []
        for p in projects:
            added += self.open_project_inputs(p)
        for p in paths:  # one by one: the tree and the views update after each file
            if p not in projects:
                added += self.workspace.open_paths([p])
                QApplication.processEvents()
        return added

    def open_project_inputs(self, path: str) -> list:
        """Load the structures stored in a project file (File › Save session) into the workspace;
        the generation area, when installed, also opens the project for its results."""
        from engine.structures import io

        try:
            from engine.store.project import Project

            with Project.open(path) as p:
                stored = [p.get_input(info.id) for info in p.inputs()]
        except Exception as exc:  # noqa: BLE001 - a damaged or newer project is reported, never raised
            self._load_failed(path, f"{path}: {exc}")
            return []
        added = []
        for info in stored:
            try:
                objs = io.read_bytes(info.data, fmt=info.fmt, name=info.name)
            except Exception as exc:  # noqa: BLE001
                self._load_failed(path, f"{path}: stored input {info.name!r}: {exc}")
                continue
            for o in objs:
                o.name = info.name
            added += self.workspace.add_objects(objs)
        gen = getattr(self, "generation", None)
        if gen is not None and hasattr(gen, "open_project"):
            gen.open_project(path)
        self._loaded(path, len(added))
        return added

    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open structures", "", OPEN_FILTER)
        if files:
            self.open_paths(files)

    def paste_text(self) -> None:
        text = QApplication.clipboard().text()
        if not text.strip():
            text, ok = QInputDialog.getMultiLineText(self, "Paste SMILES or FASTA", "SMILES or FASTA text:")
            if not ok or not text.strip():
                return
        self.workspace.open_text(text)

    def dragEnterEvent(self, ev) -> None:
        md = ev.mimeData()
        if md.hasUrls() or md.hasText():
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev) -> None:
        ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        md = ev.mimeData()
        if md.hasUrls():
            local = [u.toLocalFile() for u in md.urls() if u.isLocalFile()]
            remote = [u.toString() for u in md.urls() if not u.isLocalFile()]
            for r in remote:
                self._load_failed(r, f"{r}: not a local file (LOGOS Desktop works offline)")
            ev.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_paths(local))
        elif md.hasText():
            text = md.text()
            ev.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.workspace.open_text(text))

    def _loaded(self, path: str, n: int) -> None:
        self.statusBar().showMessage(f"opened {Path(path).name}: {n} object{'s' if n != 1 else ''}", 5000)
        self._remember_recent(path)

    def _load_failed(self, name: str, message: str) -> None:
        """Non-blocking: the message joins one open box; nothing already loaded is touched."""
        self.error_log.append(message)
        self._pending_errors.append(message)
        self.statusBar().showMessage(f"could not open {Path(name).name}: see the message", 8000)
        QTimer.singleShot(0, self._show_errors)

    def _show_errors(self) -> None:
        if not self._pending_errors:
            return
        msgs, self._pending_errors = self._pending_errors, []
        if self._error_box is None or not self._error_box.isVisible():
            self._error_box = QMessageBox(QMessageBox.Icon.Warning, "Could not open", "", parent=self)
            self._error_box.setWindowModality(Qt.WindowModality.NonModal)
            self._error_box.setText("")
        box = self._error_box
        old = box.informativeText()
        lines = ([old] if old else []) + msgs
        n = sum(len(x.splitlines()) for x in lines)
        box.setText(f"{n} file{'s' if n != 1 else ''} could not be opened. Everything already loaded is unchanged.")
        box.setInformativeText("\n".join(lines))
        box.show()

    def notify(self, title: str, text: str) -> None:
        """A non-blocking message (the window stays usable); kept in ``notices``."""
        self.notices.append(f"{title}: {text}")
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()

    # -- recent files -------------------------------------------------------------------------
    def _recent_path(self) -> Path:
        from engine import paths

        return paths.data_dir() / "recent_files.json"

    def recent_files(self) -> list[str]:
        try:
            data = json.loads(self._recent_path().read_text())
            return [str(p) for p in data if isinstance(p, str)][:RECENT_MAX]
        except (OSError, ValueError):
            return []

    def _remember_recent(self, path: str) -> None:
        if not getattr(self, "remember", True):
            return
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent_files() if p != path]
        try:
            target = self._recent_path()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(items[:RECENT_MAX]))
            tmp.replace(target)
        except OSError:
            pass
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for f in files:
            act = self.recent_menu.addAction(f)
            act.triggered.connect(lambda _=False, f=f: self.open_paths([f]))
        self.recent_menu.setEnabled(bool(files))

    # -- current object, style, selection -----------------------------------------------------
    def _current_changed(self, _item_id: int) -> None:
        item = self.workspace.current()
        self.style_box.clear()
        if item is not None:
            self.style_box.addItems(list(STYLES.get(item.kind, ())))
            self.style_box.setCurrentText(item.style)

    def _style_chosen(self, _index: int) -> None:
        item = self.workspace.current()
        if item is not None:
            self.workspace.set_style(item.id, self.style_box.currentText())

    def _fill_style_menu(self) -> None:
        self.style_menu.clear()
        item = self.workspace.current()
        if item is None:
            return
        group = QActionGroup(self.style_menu)
        for style in STYLES.get(item.kind, ()):
            act = self.style_menu.addAction(style)
            act.setCheckable(True)
            act.setChecked(style == item.style)
            group.addAction(act)
            act.triggered.connect(lambda _=False, s=style, i=item.id: self.workspace.set_style(i, s))

    def fit_view(self) -> None:
        self.view3d.reset_camera()
        self.view3d.render()

    def remove_item(self, item_id: int) -> None:
        self.workspace.remove(item_id)
        self.undo_stack.clear()  # commands of a removed object cannot be replayed

    def _expand(self, item_id: int, idx: int) -> list[tuple[int, int]]:
        mode = self.select_mode.currentText()
        if mode == "atom":
            return [(item_id, idx)]
        item = self.workspace.item(item_id)
        t = item.view_table()
        chains = t.chains
        if mode == "residue":
            key = (chains[idx], int(t.res_nums[idx]))
            hits = [i for i in range(len(t)) if chains[i] == key[0] and int(t.res_nums[i]) == key[1]]
        else:
            hits = [i for i in range(len(t)) if chains[i] == chains[idx]]
        return [(item_id, i) for i in hits]

    def _atom_clicked(self, item_id: int, idx: int, modifiers) -> None:
        if item_id < 0:
            if not modifiers & Qt.KeyboardModifier.ControlModifier:
                self.workspace.set_selection([])
            return
        self.workspace.set_current(item_id)
        item = self.workspace.item(item_id)
        if self.pocket_click_action.isChecked() and item.obj.structure is not None:
            key = self.workspace.residues_of(item, [idx])
            self._run(item, self._edits().SetPocket(key, mark=key[0] not in item.pocket, pocket=item.pocket))
            return
        atoms = self._expand(item_id, idx)
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self.workspace.toggle_atoms(atoms)
        else:
            self.workspace.set_selection(atoms)

    def _atoms_boxed(self, atoms: list, modifiers) -> None:
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self.workspace.set_selection(self.workspace.selection + atoms)
        else:
            self.workspace.set_selection(atoms)

    def describe_atom(self, item_id: int, idx: int) -> str:
        item = self.workspace.item(item_id)
        t = item.view_table()
        if item.obj.structure is not None:
            return f"{t.chains[idx]}/{t.res_names[idx]}{int(t.res_nums[idx])}/{t.atom_names[idx].strip()}"
        return f"{t.elements[idx]}{idx}"

    def _selection_changed(self) -> None:
        from engine.structures.measure import measure

        sel = self.workspace.selection
        self.measure_list.clear()
        if not sel:
            return
        if len(sel) <= 8:
            for i, a in sel:
                self.measure_list.addItem(self.describe_atom(i, a))
        else:
            self.measure_list.addItem(f"{len(sel)} atoms selected")
        m = measure(self.workspace.selected_positions())
        if m is not None:
            kind, value = m
            unit = "Å" if kind == "distance" else "°"
            names = " – ".join(self.describe_atom(i, a) for i, a in sel)
            text = f"{kind} {names}: {value:.3f} {unit}"
            self.measurements.append(text)
            self.measure_list.addItem(text)
            self.statusBar().showMessage(text)
        for old in reversed(self.measurements[-6:-1] if m else self.measurements[-5:]):
            self.measure_list.addItem(f"earlier: {old}")

    def _frame_rendered(self, seconds: float) -> None:
        n = sum(i.summary().get("atoms", 0) for i in self.workspace.items() if i.visible)
        self.view_label.setText(f"{n:,} atoms · {seconds * 1000:.0f} ms/frame")

    # -- edits --------------------------------------------------------------------------------
    @staticmethod
    def _edits():
        from engine.structures import edits

        return edits

    def _run(self, item, edit) -> bool:
        from logos_desktop.undo import run_edit

        try:
            warnings = run_edit(self.undo_stack, self.workspace, item, edit)
        except self._edits().EditError as exc:
            self.statusBar().showMessage(str(exc), 10000)
            self.notify("Edit refused", str(exc))
            return False
        msg = edit.label + (": " + "; ".join(warnings) if warnings else "")
        self.statusBar().showMessage(msg, 8000)
        return True

    def _need(self, attr: str, what: str):
        item = self.workspace.current()
        if item is None or getattr(item.obj, attr) is None:
            self.statusBar().showMessage(f"select a {what} first", 5000)
            return None
        return item

    def _selected_in(self, item) -> list[int]:
        return [a for i, a in self.workspace.selection if i == item.id]

    def _mol_edit(self, name: str) -> bool:
        item = self._need("mol", "molecule")
        return item is not None and self._run(item, getattr(self._edits(), name)())

    def delete_selected(self) -> bool:
        item = self._need("mol", "molecule")
        if item is None:
            return False
        idx = self._selected_in(item)
        if not idx:
            self.statusBar().showMessage("click the atoms to delete first", 5000)
            return False
        return self._run(item, self._edits().DeleteAtoms(idx))

    def replace_atom(self, element: str | None = None) -> bool:
        item = self._need("mol", "molecule")
        if item is None:
            return False
        idx = self._selected_in(item)
        if not idx:
            self.statusBar().showMessage("click the atom to replace first", 5000)
            return False
        if element is None:
            element, ok = QInputDialog.getText(self, "Replace atom", f"New element for atom {idx[-1]}:", text="N")
            if not ok:
                return False
        return self._run(item, self._edits().ReplaceAtom(idx[-1], element))

    def edit_smiles(self, smiles: str | None = None) -> bool:
        item = self._need("mol", "molecule")
        if item is None:
            return False
        if smiles is None:
            from logos_desktop.widgets.qt_smiles_dialog import QtSmilesDialog

            dlg = QtSmilesDialog(item.obj.mol, self)
            if not dlg.exec():
                return False
            smiles = dlg.smiles()
        return self._run(item, self._edits().SetSmiles(smiles))

    def mutate_residue(self, new_name: str | None = None) -> bool:
        item = self._need("structure", "protein")
        if item is None:
            return False
        res = self.workspace.residues_of(item, self._selected_in(item))
        if not res:
            self.statusBar().showMessage("click an atom of the residue to mutate first", 5000)
            return False
        chain, seqid = res[-1]
        if new_name is None:
            new_name, ok = QInputDialog.getItem(self, "Mutate residue", f"Mutate {chain}/{seqid} to:",
                                                list(self._edits().STANDARD_RESIDUES), 0, False)
            if not ok:
                return False
        return self._run(item, self._edits().MutateResidue(chain, seqid, new_name))

    def set_pocket(self, mark: bool) -> bool:
        item = self._need("structure", "protein")
        if item is None:
            return False
        res = self.workspace.residues_of(item, self._selected_in(item))
        if not res:
            self.statusBar().showMessage("select residues first (Select: residue, then click)", 5000)
            return False
        return self._run(item, self._edits().SetPocket(res, mark=mark, pocket=item.pocket))

    def supercell(self, scale: tuple[int, int, int] | None = None) -> bool:
        item = self._need("crystal", "crystal")
        if item is None:
            return False
        if scale is None:
            text, ok = QInputDialog.getText(self, "Supercell", "Repeats along a, b, c:", text="2 2 2")
            if not ok:
                return False
            try:
                scale = tuple(int(x) for x in text.replace(",", " ").split())
                assert len(scale) == 3
            except (ValueError, AssertionError):
                self.notify("Supercell", f"{text!r}: give three whole numbers, e.g. 2 2 1")
                return False
        return self._run(item, self._edits().Supercell(*scale))

    def substitute_element(self, old: str | None = None, new: str | None = None) -> bool:
        item = self._need("crystal", "crystal")
        if item is None:
            return False
        if old is None or new is None:
            elements = sorted({el.symbol for el in item.obj.crystal.composition.elements})
            old, ok = QInputDialog.getItem(self, "Substitute element", "Replace:", elements, 0, False)
            if not ok:
                return False
            new, ok = QInputDialog.getText(self, "Substitute element", f"Replace every {old} by:")
            if not ok:
                return False
        return self._run(item, self._edits().SubstituteElement(old, new))

    # -- saving and exporting -----------------------------------------------------------------
    def save_to_project(self, path: str | None = None) -> int:
        """Store every loaded object as an input of a project file; returns how many."""
        if not self.workspace.items():
            self.statusBar().showMessage("nothing to save", 5000)
            return 0
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save session to project", "session.logos",
                                                  "LOGOS project (*.logos *.db)")
            if not path:
                return 0
        from engine.structures import io

        n = 0
        try:
            from engine.store.project import Project

            with Project.open(path, create=True) as p:
                for item in self.workspace.items():
                    fmt = PROJECT_FORMATS.get(item.kind, "sdf")
                    p.add_input(io.write_text(item.obj, fmt).encode("utf-8"), fmt, item.name)
                    n += 1
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self.notify("Save session", f"{path}: {exc}")
            return n
        self.statusBar().showMessage(f"saved {n} object{'s' if n != 1 else ''} to {path}", 6000)
        return n

    def export_structure(self, path: str | None = None) -> bool:
        item = self.workspace.current()
        if item is None:
            self.statusBar().showMessage("nothing to export", 5000)
            return False
        if path is None:
            ext = EXPORT_FORMATS.get(item.kind, "sdf")
            path, _ = QFileDialog.getSaveFileName(
                self, "Export structure", f"{item.name}.{ext}",
                "SDF (*.sdf);;MOL (*.mol);;PDB (*.pdb);;mmCIF (*.cif);;CIF (*.cif);;POSCAR (*.vasp);;XYZ (*.xyz);;FASTA (*.fasta)")
            if not path:
                return False
        from engine.structures import io

        try:
            io.write_file(item.obj, path)
        except Exception as exc:  # noqa: BLE001
            self.notify("Export structure", str(exc))
            return False
        self.statusBar().showMessage(f"exported {item.name} to {path}", 6000)
        return True

    def export_image(self, path: str | None = None) -> bool:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export image", "view.png", "PNG (*.png)")
            if not path:
                return False
        ok = self.view3d.grab_image().save(path)
        self.statusBar().showMessage(f"{'saved' if ok else 'could not save'} {path}", 6000)
        return ok

    # -- about, screenshots -------------------------------------------------------------------
    def show_about(self) -> None:
        from engine import __version__

        QMessageBox.about(self, "About LOGOS Desktop", f"LOGOS Desktop {__version__}")

    def window_image(self) -> QImage:
        """The whole window with the 3D view read from its render window and painted in."""
        QApplication.processEvents()
        if self.view3d.welcome_shown():  # no render window on screen: the welcome is a Qt widget
            return self.grab().toImage()
        view = self.view3d.grab_image()
        image = self.grab().toImage()
        painter = QPainter(image)
        top_left = self.view3d.vtk_widget.mapTo(self, QPoint(0, 0))
        dpr = image.devicePixelRatio() or 1.0
        painter.drawImage(top_left, view.scaled(int(self.view3d.vtk_widget.width() * dpr),
                                                int(self.view3d.vtk_widget.height() * dpr)))
        painter.end()
        return image

    def save_screenshot_when_ready(self, out: str, app: QApplication, timeout_ms: int = 20000) -> int:
        """Wait until the window has settled (engine probe answered or timed out), save, exit."""
        waited = 0
        while not self._backend_ready and waited < timeout_ms:
            app.processEvents()
            self.thread().msleep(50)
            waited += 50
        self.workspace.wait_for_tables(timeout=max(1.0, timeout_ms / 1000))
        for _ in range(10):
            app.processEvents()
        self.view3d.reset_camera()  # the layout has settled: fit to the final view size
        self.view3d.render()
        for _ in range(5):
            app.processEvents()
        ok = self.window_image().save(out)
        print(f"screenshot {'saved to' if ok else 'FAILED:'} {out}")
        self.close()
        return 0 if ok else 1

    def closeEvent(self, ev) -> None:
        self.workspace.shutdown()
        if self._probe is not None and self._probe.state() != QProcess.ProcessState.NotRunning:
            self._probe.kill()
            self._probe.waitForFinished(2000)
        self.view3d.close()
        super().closeEvent(ev)
