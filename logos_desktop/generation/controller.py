"""Wires the generation workflow into the main window: docks, menus, status bar, the engine
bridge, the open project, and what happens on Run, on engine events and on row selection."""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFileDialog, QInputDialog, QLabel, QMenu, QMessageBox

from logos_desktop.engine_bridge import EngineBridge
from logos_desktop.generation.generate_panel import QtGeneratePanel
from logos_desktop.generation.job_queue import Job, JobQueue, QtJobQueue
from logos_desktop.generation.provenance import QtProvenancePanel
from logos_desktop.generation.results_panel import QtResultsPanel
from logos_desktop.generation.results_source import StoreResultSource
from logos_desktop.generation.selection import Selection, read_selection
from logos_desktop.generation.task_catalog import GenerationRequest, TaskCatalog

PROJECT_SUFFIX = ".logos"
RECENT_PROJECTS = 10


def default_project_path() -> Path:
    from engine import paths

    return paths.data_dir() / "projects" / f"untitled{PROJECT_SUFFIX}"


class GenerationController(QObject):
    def __init__(self, window, *, start_engine: bool | None = None, model: str | None = None,
                 bridge: EngineBridge | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.project = None  # engine.store.project.Project, open for reading while shown
        self.project_path: Path | None = None
        self.catalog = TaskCatalog()
        self.queue = JobQueue(self)
        self.bridge = bridge or EngineBridge(parent=self)
        self.job_runs: dict[str, int] = {}  # job id -> run id (from the engine's started event)
        self.job_submitted: dict[str, _dt.datetime] = {}
        self.dock_after: dict[str, GenerationRequest] = {}  # job -> its request, docked when it ends
        self.preview_item_id: int | None = None
        self._last_real_current = None
        self._failed_model: tuple[str, str] | None = None
        self.notices: list[str] = []

        self._build_docks()
        self._build_menus()
        self._build_status()
        self._connect()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(250)
        self._refresh_timer.timeout.connect(self._refresh_rows)
        self._first_result: dict[str, int | None] = {}  # job -> its first stored row, until scrolled to

        if start_engine is None:
            start_engine = getattr(window, "start_engine", True)
        self.model_path = model or getattr(window, "model_path", None) or self._default_model()
        if start_engine:
            self.start_engine()
        else:
            self._engine_state("stopped", "engine process: not started (--no-engine)")

    # -- layout -----------------------------------------------------------------------------
    def _dock(self, title: str, widget, area, name: str) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.window.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.generate = QtGeneratePanel(self.catalog, self.current_selection)
        self.jobs = QtJobQueue(self.queue)
        self.results = QtResultsPanel()
        self.provenance = QtProvenancePanel()
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        w = self.window
        self.generate_dock = self._dock("Generate", self.generate, left, "dock-generate")
        self.jobs_dock = self._dock("Jobs", self.jobs, right, "dock-jobs")
        self.results_dock = self._dock("Results", self.results, bottom, "dock-results")
        self.provenance_dock = self._dock("Provenance", self.provenance, bottom, "dock-provenance")
        # left: the workspace tree above the Generate panel; right: below the workspace's docks
        tree_dock = getattr(w, "tree_dock", None)
        if tree_dock is not None and w.dockWidgetArea(tree_dock) == left:
            w.splitDockWidget(tree_dock, self.generate_dock, Qt.Orientation.Vertical)
            w.resizeDocks([tree_dock, self.generate_dock], [200, 500], Qt.Orientation.Vertical)
        w.splitDockWidget(self.results_dock, self.provenance_dock, Qt.Orientation.Horizontal)
        QTimer.singleShot(0, self._size_docks)  # once the window has its layout

    def _size_docks(self) -> None:
        w = self.window
        from logos_desktop.main_window import SIDE_DOCK_WIDTH

        sides = [d for d in (getattr(w, "tree_dock", None), getattr(w, "view2d_dock", None)) if d is not None]
        if len(sides) == 2:  # the 3D view keeps at least half the window's width
            w.resizeDocks(sides, list(SIDE_DOCK_WIDTH), Qt.Orientation.Horizontal)
        w.resizeDocks([self.results_dock, self.provenance_dock], [950, 400], Qt.Orientation.Horizontal)
        w.resizeDocks([self.results_dock], [340], Qt.Orientation.Vertical)

    def _menu(self, name: str):
        menus = getattr(self.window, "menus", None)
        if menus is None:
            menus = self.window.menus = {}
        if name not in menus:
            menus[name] = self.window.menuBar().addMenu(f"&{name}")
        return menus[name]

    def _action(self, menu: str, text: str, slot, shortcut: str | None = None) -> QAction:
        act = QAction(text, self.window)
        if shortcut:
            act.setShortcut(shortcut)
        act.triggered.connect(slot)
        self._menu(menu).addAction(act)
        return act

    def _build_menus(self) -> None:
        self.run_action = self._action("Generate", "&Run", self.generate.run, "Ctrl+R")
        self._action("Generate", "Show &prompt…", self.generate.show_prompt)
        self._build_project_menu()
        self._menu("Generate").addSeparator()
        for dock in (self.generate_dock, self.jobs_dock, self.results_dock, self.provenance_dock):
            self._menu("Generate").addAction(dock.toggleViewAction())
        self._action("Models", "&Manage models…", self.show_model_manager)
        self._action("Models", "&Fine-tune…", lambda: self.show_training([]))
        self._action("Models", "&Restart engine", self.restart_engine)

    def _build_project_menu(self) -> None:
        """File › New project…, Open project…, Recent projects, above the structure entries."""
        menu = self._menu("File")
        first = menu.actions()[0] if menu.actions() else None
        self.new_project_action = QAction("&New project…", self.window)
        self.new_project_action.triggered.connect(self.new_project_dialog)
        self.open_project_action = QAction("Open &project…", self.window)
        self.open_project_action.triggered.connect(self.open_project_dialog)
        self.recent_projects_menu = QMenu("Recent pro&jects", self.window)
        self.recent_projects_menu.setObjectName("recent-projects")
        for act in (self.new_project_action, self.open_project_action):
            menu.insertAction(first, act) if first is not None else menu.addAction(act)
        if first is not None:
            menu.insertMenu(first, self.recent_projects_menu)
            menu.insertSeparator(first)
        else:
            menu.addMenu(self.recent_projects_menu)
        self._refresh_recent_projects()

    # -- recent projects ---------------------------------------------------------------------
    def _recent_projects_path(self) -> Path:
        from engine import paths

        return paths.data_dir() / "recent_projects.json"

    def recent_projects(self) -> list[str]:
        try:
            data = json.loads(self._recent_projects_path().read_text())
            return [str(p) for p in data if isinstance(p, str)][:RECENT_PROJECTS]
        except (OSError, ValueError):
            return []

    def _remember_project(self, path: Path) -> None:
        if not getattr(self.window, "remember", True):
            return
        path_s = str(Path(path).resolve())
        items = [path_s] + [p for p in self.recent_projects() if p != path_s]
        try:
            target = self._recent_projects_path()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(items[:RECENT_PROJECTS]))
            tmp.replace(target)
        except OSError:
            pass
        self._refresh_recent_projects()

    def _refresh_recent_projects(self) -> None:
        menu = self.recent_projects_menu
        menu.clear()
        projects = self.recent_projects()
        for p in projects:
            act = menu.addAction(f"{Path(p).name} — {Path(p).parent}")
            act.setData(p)
            act.setToolTip(p)
            act.triggered.connect(lambda _=False, p=p: self.open_project(p))
        menu.setEnabled(bool(projects))

    def reopen_last_project(self) -> bool:
        """On start: the most recent project that still exists (else the default project when it
        holds earlier results) is opened, with its rows."""
        candidates = [Path(p) for p in self.recent_projects()] + [default_project_path()]
        for path in candidates:
            if path.is_file():
                return self.open_project(path)
        return False

    def _build_status(self) -> None:
        bar = self.window.statusBar()
        self.project_label = QLabel("project: none")
        self.project_label.setObjectName("status-project")
        # the window's model label is reused (it only says which model at start-up); the engine
        # process state is ours; the window's backend label says what the llama.cpp build can do
        self.model_label = getattr(self.window, "model_label", None)
        if self.model_label is None:
            self.model_label = QLabel()
            bar.addPermanentWidget(self.model_label)
        self.engine_label = QLabel()
        self.engine_label.setObjectName("status-engine")
        bar.addPermanentWidget(self.engine_label)
        bar.insertPermanentWidget(0, self.project_label)
        self.window.installEventFilter(self)

    def _connect(self) -> None:
        b = self.bridge
        b.stateChanged.connect(self._engine_state)
        b.modelLoaded.connect(self._model_loaded)
        b.modelLoaded.connect(self.generate.set_model)  # the model's card next to the task
        b.modelLoadFailed.connect(self._model_load_failed)
        b.loadProgress.connect(lambda ev: self.model_label.setText(
            f"model: loading {Path(self.model_path or '').name} {100 * float(ev.get('fraction', 0)):.0f} %"))
        b.started.connect(self._job_started)
        b.progress.connect(self.queue.on_progress)
        b.result.connect(self._job_result)
        b.finished.connect(self._job_finished)
        b.error.connect(self._engine_error)
        self.queue.cancelRequested.connect(self._cancel_requested)
        self.generate.runRequested.connect(self.run_request)
        self.results.selectionChanged.connect(self._rows_selected)
        self.results.exportRequested.connect(self.export_rows)
        self.results.tagRequested.connect(self.tag_rows)
        self.results.fineTuneRequested.connect(self.show_training)
        self.results.keepRequested.connect(self.keep_preview)
        self.provenance.rerunRequested.connect(self.rerun)
        ws = getattr(self.window, "workspace", None)
        if ws is not None:
            ws.selectionChanged.connect(self._workspace_selection_changed)
            ws.currentChanged.connect(self._workspace_selection_changed)
            ws.itemsChanged.connect(self._workspace_selection_changed)
            ws.itemChanged.connect(self._workspace_selection_changed)  # an edit or undo: the object as it is now
            self.generate.pocketChanged.connect(self._pocket_changed)

    # -- selection --------------------------------------------------------------------------
    def _pocket_changed(self, obj, ligand: str, cutoff, picked: bool) -> None:
        """The ligand task's pocket is the one marked in the workspace: its ligand (picked in the
        task options, or chosen by the selection) and its cutoff; a picked ligand is read back."""
        ws = getattr(self.window, "workspace", None)
        if ws is not None:
            ws.follow_task_pocket(obj, ligand, cutoff, chosen=picked)
            if picked:
                self.generate.refresh_inputs_keep_prompt()

    def _is_preview(self, item) -> bool:
        return item is not None and getattr(item.obj, "_logos_preview", False)

    def current_selection(self) -> Selection:
        """The workspace selection. A result shown in the views is an ordinary molecule here (the
        product of a retrosynthesis, a reactant); tasks that cannot take it (ligand design needs a
        pocket) fall back to what the user selected before it."""
        ws = getattr(self.window, "workspace", None)
        sel = read_selection(self.window)
        if ws is not None and self._is_preview(ws.current()):
            real = self._last_real_current
            if real is not None and ws.item(real.id) is not None:
                sel.fallback = read_selection(self.window, current=real)
        return sel

    def _workspace_selection_changed(self, *_args) -> None:
        """The selection changed: the Generate panel takes its inputs from it (a result shown in
        the views included); the last object the user picked is remembered as the fallback."""
        ws = getattr(self.window, "workspace", None)
        cur = ws.current() if ws is not None else None
        if cur is not None and not self._is_preview(cur):
            self._last_real_current = cur
        self.generate.refresh_inputs_keep_prompt()

    # -- engine -----------------------------------------------------------------------------
    def _default_model(self) -> str | None:
        try:
            from engine.models import registry

            p = registry.default_model()
            if p:
                return str(p)
        except Exception:  # noqa: BLE001 - no registry yet: the bundled model
            pass
        from engine import paths

        bundled = paths.bundled_models()
        return str(bundled[0]) if bundled else None

    def start_engine(self) -> None:
        self.bridge.start()
        if self.model_path:
            self.load_model(self.model_path)
        else:
            self.model_label.setText("model: none (Models › Manage models to import one)")

    def restart_engine(self) -> None:
        self.bridge.restart()

    def load_model(self, path: str, **options) -> None:
        self.model_label.setText(f"model: loading {Path(path).name}…")
        self.bridge.load_model(str(path), **options)
        self._pending_model = str(path)

    def _cancel_requested(self, job_id: str) -> None:
        job = self.queue.get(job_id)
        if job is None or job.kind == "generate":  # docking jobs are cancelled by the docking controller
            self.bridge.cancel(job_id)

    def _engine_state(self, state: str, message: str) -> None:
        colour = {"crashed": "#b00020", "starting": "#8a6d00"}.get(state)
        self.engine_label.setText(f"<span style='color:{colour}'>{message}</span>" if colour else message)
        self.engine_label.setToolTip(message)
        if state == "crashed":
            self.window.statusBar().showMessage(message, 15000)

    def _model_loaded(self, ev: dict) -> None:
        self.model_path = ev.get("path") or self.model_path
        layers = ev.get("n_gpu_layers") or 0
        plan = ev.get("plan") or {}
        total = plan.get("n_layers_total")
        backend = ev.get("backend") or self.bridge.backend.get("backend") or "?"
        gpu = f"{layers}/{total} layers on GPU" if total else f"{layers} layers on GPU"
        text = f"model: {Path(self.model_path).name} · {backend} · {gpu}"
        self.model_label.setText(text)
        tip = [str(self.model_path)]
        if plan.get("cpu_reason"):
            tip.append(f"CPU: {plan['cpu_reason']}")
        tip += list(plan.get("reasons") or [])
        self.model_label.setToolTip("\n".join(tip))
        self.engine_label.setText("engine process: ready")
        if plan.get("cpu_reason") and not layers:
            self.model_label.setText(text + " (CPU: see tooltip)")

    def _model_load_failed(self, path: str, reason: str) -> None:
        self._failed_model = (path, reason)
        prev = self.bridge._loaded[0] if self.bridge._loaded else None
        keep = f"; keeping {Path(prev).name}" if prev and prev != path else ""
        self.window.statusBar().showMessage(f"Could not load {Path(path).name}: {reason}{keep}", 20000)
        if not keep:
            self.model_label.setText(f"model: none ({Path(path).name} failed to load)")
        self.model_label.setToolTip(reason)

    def _engine_error(self, ev: dict) -> None:
        if ev.get("job") is not None:
            self.queue.on_error(ev)
        elif ev.get("id") is None or str(ev.get("id")) not in self.bridge._loads:
            self.window.statusBar().showMessage(f"Engine: {ev.get('message')}", 15000)

    # -- project ----------------------------------------------------------------------------
    def open_project(self, path, create: bool = False) -> bool:
        from engine.store.project import Project

        path = Path(path)
        try:
            project = Project.open(path, create=create)
        except Exception as exc:  # noqa: BLE001 - ProjectError names the file and the reason
            self.notice("Project not opened", str(exc))
            return False
        self.close_project()
        self.project, self.project_path = project, path
        self.results.model.set_source(StoreResultSource(project))
        self.results.set_tasks(sorted(project.tasks()))
        self.results.set_runs(project.runs())
        ro = " (read-only)" if project.read_only else ""
        self.project_label.setText(f"project: {path.name}{ro}")
        self.project_label.setToolTip(f"{path}\n{project.message or ''}".strip())
        if project.message:
            self.window.statusBar().showMessage(project.message, 15000)
        self.results_dock.setWindowTitle(f"Results — {path.name}")
        self.window.setWindowTitle(f"{path.name}{ro} — LOGOS Desktop")
        self.window.setWindowFilePath(str(path))
        self._remember_project(path)
        docking = getattr(self.window, "docking", None)
        if docking is not None:
            docking.project_changed()
        return True

    def notice(self, title: str, message: str) -> None:
        """A non-blocking message (the window stays usable; --screenshot never hangs on it)."""
        self.notices.append(message)
        self.window.statusBar().showMessage(message, 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self.window)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()
        self._notice_box = box

    def close_project(self) -> None:
        if self.project is not None:
            self.results.model.set_source(None)
            try:
                self.project.close()
            except Exception:  # noqa: BLE001
                pass
        self.project = None
        self.project_path = None
        self.project_label.setText("project: none")
        self.window.setWindowTitle("LOGOS Desktop")
        self.window.setWindowFilePath("")

    def ensure_project(self) -> bool:
        if self.project is not None:
            return True
        path = default_project_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.open_project(path, create=True)

    def new_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "New project", str(Path.home() / "project.logos"),
                                              "LOGOS projects (*.logos)")
        if path:
            if not path.endswith(PROJECT_SUFFIX):
                path += PROJECT_SUFFIX
            self.open_project(path, create=True)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", str(Path.home()),
                                              "LOGOS projects (*.logos)")
        if path:
            self.open_project(path)

    # -- jobs -------------------------------------------------------------------------------
    def run_request(self, req: GenerationRequest) -> str | None:
        if not self.ensure_project():
            return None
        if self.project.read_only:
            self.generate.message.setText(f"<span style='color:#b00020'>The project is read-only "
                                          f"({self.project.message}); open or create another.</span>")
            return None
        if self.bridge.state == "stopped":
            self.generate.message.setText("<span style='color:#b00020'>The engine is not running "
                                          "(Models › Restart engine).</span>")
            return None
        if self.bridge.model is None and not self.bridge._loads and not any(
                k == "load_model" for k, _a, _kw in self.bridge._deferred):
            self.generate.message.setText("<span style='color:#b00020'>No model is loaded: choose one in "
                                          "Models › Manage models (or import a GGUF there).</span>")
            return None
        req.project = str(self.project_path)
        req.model = self.model_path
        job = self.bridge.submit(req.task, inputs=req.engine_inputs(), options=req.engine_options(),
                                 n=req.n, seed=req.seed or 0, sampling=req.sampling,
                                 project=req.project, prompt=req.prompt)
        self.job_submitted[job] = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        self.queue.add(Job(job, req.task, req.n, command=req.command_line()))
        if getattr(req, "dock_after", False):
            self.dock_after[job] = req
        self.jobs_dock.raise_()
        return job

    def _job_started(self, ev: dict) -> None:
        job = ev.get("job")
        if ev.get("run_id") is not None:
            self.job_runs[job] = int(ev["run_id"])
        j = self.queue.get(job)
        if j is not None:
            j.command = ev.get("command") or j.command
            self.queue.on_progress({"job": job, "done": 0, "total": ev.get("n", j.total)})

    def _job_result(self, ev: dict) -> None:
        self.queue.on_result(ev)
        job = ev.get("job")
        if ev.get("result_id") is not None and job not in self._first_result:
            self._first_result[job] = int(ev["result_id"])  # scrolled into view at the next refresh
        if ev.get("result_id") is not None and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh_rows(self) -> None:
        """Read the new rows; a run's first row is scrolled into view as soon as it is stored (it is
        selected when the run ends, so that a row the user is reading stays selected meanwhile)."""
        self.results.model.refresh()
        for job, rid in list(self._first_result.items()):
            if rid is not None:
                self.results.scroll_to_result(rid)
                self._first_result[job] = None

    def _job_finished(self, ev: dict) -> None:
        job = ev.get("job")
        self.queue.on_finished(ev)
        self._first_result.pop(job, None)
        if ev.get("status") == "failed":
            self._mark_run_failed(job, str(ev.get("error") or "failed"))
        self.results.model.refresh()
        if self.project is not None:
            self.results.set_tasks(sorted(self.project.tasks()))
            self.results.set_runs(self.project.runs())
            self._show_new_run(self.job_runs.get(job))
        req = self.dock_after.pop(job, None)
        docking = getattr(self.window, "docking", None)
        if req is not None and docking is not None and ev.get("status") == "finished":
            run_id = self.job_runs.get(job)
            if run_id is not None:
                docking.dock_run(run_id, req)

    def _show_new_run(self, run_id: int | None) -> None:
        """The run's first row is selected and scrolled into view (shown in the views, its
        provenance on the right)."""
        if run_id is None or self.project is None:
            return
        from engine.store.queries import ResultQuery

        try:
            page = self.project.query_results(ResultQuery(run_id=run_id, sort="id", limit=1, count_total=False))
        except Exception:  # noqa: BLE001 - the table still shows the rows
            return
        if page.rows:
            self.results.show_new_result(page.rows[0].id)

    def _mark_run_failed(self, job: str, reason: str) -> None:
        """The engine died mid-run: its run row still says "running". Mark it failed; the rows it
        stored stay."""
        if self.project is None or self.project.read_only:
            return
        from logos_desktop.generation.store_access import fail_running_runs

        run_id = self.job_runs.get(job)
        try:
            if run_id is not None:
                run = self.project.get_run(run_id)
                if run.status == "running":
                    self.project.finish_run(run_id, status="failed", error=reason)
            elif job in self.job_submitted:
                fail_running_runs(self.project, self.job_submitted[job], reason)
        except Exception as exc:  # noqa: BLE001
            self.window.statusBar().showMessage(f"Could not mark run failed: {exc}", 10000)

    # -- rows -------------------------------------------------------------------------------
    def _rows_selected(self, rows) -> None:
        from logos_desktop.generation.store_access import provenance

        if not rows or self.project is None:
            self.provenance.show_provenance(None)
            return
        if len(rows) > 1:
            self.provenance.show_comparison(rows)
            self.show_in_views(rows[-1])
            return
        try:
            self.provenance.show_provenance(provenance(self.project, rows[-1].id))
        except Exception as exc:  # noqa: BLE001
            self.provenance.show_provenance(None)
            self.provenance.title.setText(f"Provenance unavailable: {exc}")
        self.show_in_views(rows[-1])

    def show_in_views(self, row) -> None:
        """Put the selected candidate in the workspace (2D and 3D views); a designed ligand is
        placed at the centre of the pocket it was designed for."""
        ws = getattr(self.window, "workspace", None)
        docking = getattr(self.window, "docking", None)
        if docking is not None and ws is not None and docking.show_row(row):
            return  # a docked result: its pose in the pocket
        from logos_desktop.generation.preview import show_picture

        if ws is not None and show_picture(self, row):
            return  # a material, sequence or reaction: its picture in the 2D view
        if ws is None or not row.smiles or not row.valid:
            return
        from logos_desktop.generation.preview import candidate_object

        anchor = self._last_real_current.obj if self._last_real_current is not None else None
        obj = candidate_object(row, anchor)
        if obj is None:
            return
        obj._logos_preview = True
        if self.preview_item_id is not None and ws.item(self.preview_item_id) is not None:
            ws.remove(self.preview_item_id)
        items = ws.add_objects([obj])
        if items:
            self.preview_item_id = items[0].id
            ws.set_current(items[0].id)

    def keep_preview(self):
        """The result shown in the views becomes an ordinary workspace object: the next result
        clicked is shown beside it instead of replacing it. Returns its workspace item."""
        ws = getattr(self.window, "workspace", None)
        item = ws.item(self.preview_item_id) if ws is not None and self.preview_item_id is not None else None
        if item is None:
            self.window.statusBar().showMessage("Click a result first: the one shown in the views is kept.", 8000)
            return None
        item.obj._logos_preview = False
        self.preview_item_id = None
        self._last_real_current = item
        ws.itemsChanged.emit()
        self.generate.refresh_inputs_keep_prompt()
        self.window.statusBar().showMessage(f"{item.name} kept in the workspace", 8000)
        return item

    def export_rows(self, ids: list[int]) -> None:
        if self.project is None:
            return
        from engine.store.export import export_file
        from engine.store.queries import ResultQuery

        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export results", str(self.project_path.with_suffix(".sdf")),
            "SDF (*.sdf);;CSV (*.csv);;FASTA (*.fasta);;CIF (*.cif)")
        if not path:
            return
        q = ResultQuery(ids=ids or None, limit=None, count_total=False)
        if not ids:
            f = self.results.model.filter
            q = ResultQuery(task=f.task, valid=f.valid, text=f.text or None, limit=None, count_total=False)
        try:
            report = export_file(self.project, path, query=q)
        except Exception as exc:  # noqa: BLE001
            self.notice("Export failed", str(exc))
            return
        self.window.statusBar().showMessage(f"{Path(path).name}: {report.summary()}", 10000)

    def tag_rows(self, ids: list[int], tag: str | None = None) -> None:
        if self.project is None or not ids:
            return
        if tag is None:
            tag, ok = QInputDialog.getText(self.window, "Tag rows", f"Tag for {len(ids)} row(s):")
            if not ok or not tag.strip():
                return
        self.project.tag_results(ids, tag.strip())
        self.results.model.reload_rows()

    def rerun(self, prov) -> str | None:
        """Queue the run behind ``prov`` again: same task, prompt, options, sampling, seed, N."""
        if prov is None or self.project is None:
            return None
        inputs = None
        if prov.input_ids:
            info = self.project.get_input(prov.input_ids[0])
            data = self.project.get_input(info.id).data
            if info.fmt not in ("smi", "smiles"):
                folder = Path(tempfile.mkdtemp(prefix="logos-rerun-"))
                f = folder / (info.name if "." in info.name else f"{info.name}.{info.fmt}")
                f.write_bytes(data)
                inputs = {"file": str(f)}
        options = {k: v for k, v in prov.options.items() if v is not None}
        req = GenerationRequest(task=prov.task, input=None, options=options, n=int(prov.n or 1),
                                seed=prov.seed or 0, sampling=prov.sampling, prompt=prov.prompt,
                                model=self.model_path, project=str(self.project_path))
        job = self.bridge.submit(prov.task, inputs=inputs, options=options, n=req.n, seed=req.seed,
                                 sampling=req.sampling, project=req.project, prompt=prov.prompt)
        self.job_submitted[job] = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        self.queue.add(Job(job, prov.task, req.n, command=prov.command + "  # re-run of run "
                           f"{prov.run_id}"))
        return job

    # -- dialogs ----------------------------------------------------------------------------
    def show_model_manager(self) -> None:
        from logos_desktop.generation.model_manager import QtModelManager

        dlg = QtModelManager(self, self.window)
        self.model_manager = dlg
        dlg.show()

    def show_training(self, ids: list[int]) -> None:
        """The training dialog; with rows selected they are its data (written as JSONL records
        into the run's output folder, beside the checkpoints)."""
        from engine import paths
        from logos_desktop.generation.training_dialog import QtTrainingDialog

        out = paths.data_dir() / "training" / _dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
        rows_file = self._rows_file(ids, out) if ids and self.project is not None else None
        dlg = QtTrainingDialog(self.window, rows_file=rows_file, n_rows=len(ids), out_dir=str(out))
        dlg.modelRegistered.connect(lambda p: self.window.statusBar().showMessage(
            f"New model registered: {p}", 15000))
        self.training_dialog = dlg
        dlg.show()

    def _rows_file(self, ids: list[int], folder: Path) -> str:
        from engine.store.queries import ResultQuery

        rows = self.project.query_results(ResultQuery(ids=ids, limit=None, count_total=False)).rows
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.project_path.stem}-rows.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"record": r.record, "result_id": r.id,
                                     "project": str(self.project_path)}) + "\n")
        return str(path)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.window and ev.type() == QEvent.Type.Close:
            self.shutdown()
        elif obj is self.window and ev.type() == QEvent.Type.Drop and ev.mimeData().hasUrls():
            paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
            projects = [p for p in paths if p.lower().endswith(PROJECT_SUFFIX)]
            if projects:  # a dropped project opens in the results table; the rest go to the workspace
                others = [p for p in paths if p not in projects]
                ev.acceptProposedAction()
                QTimer.singleShot(0, lambda: self._open_dropped(projects, others))
                return True
        return False

    def _open_dropped(self, projects: list[str], others: list[str]) -> None:
        for p in projects:
            self.open_project(p)
        if others:
            self.window.open_paths(others)

    def shutdown(self) -> None:
        """Stop the engine process and close the project (on window close)."""
        for dlg in (getattr(self, "training_dialog", None),):
            if dlg is not None:
                dlg.cancel()
        self.bridge.stop()
        self.close_project()
