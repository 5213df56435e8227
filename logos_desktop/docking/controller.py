"""Docking in the window: the Dock selected action, the ``logos dock`` processes and their jobs in
the Jobs dock, the pose of a docked result in the 3D view, and the Docking dock's summary and
pictures.

Docking itself runs in ``logos dock`` (``runner.DockingProcess``), which writes the poses and
scores into the open project; this controller refreshes the results table as they arrive and
reads the poses back from the project to draw them.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QScrollArea

from logos_desktop.docking.panel import QtDockingPanel
from logos_desktop.docking.runner import DockingProcess, DockRequest, DockSettings
from logos_desktop.docking.targets import NoReceptor, Target, plan_rows, receptor_file, target_of_run
from logos_desktop.generation.job_queue import Job

FADED = 0.25  # opacity of the reference ligand while a docked pose is shown over it
MAP_LIMIT = 3000  # candidates placed on the chemical-space map (the first ones of the run)
SETTINGS_FILE = "docking_settings.json"


def load_settings() -> DockSettings:
    from engine import paths

    try:
        data = json.loads((paths.data_dir() / SETTINGS_FILE).read_text())
        return DockSettings(**{k: v for k, v in data.items() if k in DockSettings.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return DockSettings()


def save_settings(s: DockSettings) -> None:
    from dataclasses import asdict

    from engine import paths

    path = paths.data_dir() / SETTINGS_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(s)))
        tmp.replace(path)
    except OSError:
        pass


class DockingController(QObject):
    def __init__(self, window, generation) -> None:
        super().__init__(window)
        self.window = window
        self.gen = generation
        self.settings = load_settings()
        self.queue = generation.queue
        self.processes: dict[str, DockingProcess] = {}
        self.requests: dict[str, DockRequest] = {}
        self.waiting: list[str] = []
        self.errors: dict[str, list[str]] = {}
        self.last_events: dict[str, dict] = {}  # job -> its finished event
        self._ids = itertools.count(1)
        self.messages: list[str] = []
        # the pose shown in the 3D view
        self.scene_row = None
        self.scene_poses: list = []
        self.scene_index = 0
        self.scene_docking = None
        self.scene_receptor_id: int | None = None
        self.drawn_interactions: list[dict] = []
        self._look_from = None  # the direction the pocket is seen from (kept while the pocket is the same)
        self._item_sha: dict[int, tuple[int, str | None]] = {}
        # pictures: the map is computed off the GUI thread
        self._pool: ThreadPoolExecutor | None = None
        self._map_future = None
        self._map_args = None
        self._map_token = 0
        self._map_timer = QTimer(self)
        self._map_timer.setInterval(100)
        self._map_timer.timeout.connect(self._collect_map)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(300)
        self._refresh_timer.timeout.connect(self._refresh_results)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(1500)
        self._summary_timer.timeout.connect(lambda: self.refresh_runs(pictures=False))

        self.panel = QtDockingPanel(self.settings)
        self.dock = QDockWidget("Docking", window)
        self.dock.setObjectName("dock-docking")
        scroll = QScrollArea()  # a small window scrolls the panel instead of growing for it
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.panel)
        self.dock.setWidget(scroll)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        prov = getattr(generation, "provenance_dock", None)
        if prov is not None:
            window.tabifyDockWidget(prov, self.dock)
            prov.raise_()
        self._build_actions()
        self._connect()
        self.refresh_runs()

    # -- actions ------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        menu = self.gen._menu("Docking")
        self.dock_action = QAction("&Dock selected results", self.window)
        self.dock_action.setShortcut(QKeySequence("Ctrl+Shift+D"))
        self.dock_action.setToolTip("Dock the selected results into the pocket of their ligand-design task "
                                    "(logos dock, in its own process)")
        self.dock_action.triggered.connect(self.dock_selected)
        menu.addAction(self.dock_action)
        pictures = QAction("&Pictures of the run…", self.window)
        pictures.setToolTip("Histograms and the chemical-space map of the run shown in the Docking dock")
        pictures.triggered.connect(self.panel.show_pictures)
        menu.addAction(pictures)
        settings = QAction("Docking &settings…", self.window)
        settings.triggered.connect(self.show_settings)
        menu.addAction(settings)
        menu.addSeparator()
        menu.addAction(self.dock.toggleViewAction())
        tb = getattr(self.window, "toolbar", None)
        if tb is not None:
            tb.addSeparator()
            self.toolbar_action = QAction("Dock selected", self.window)
            self.toolbar_action.setToolTip(self.dock_action.toolTip())
            self.toolbar_action.triggered.connect(self.dock_selected)
            tb.addAction(self.toolbar_action)

    def _connect(self) -> None:
        results = self.gen.results
        results.dockRequested.connect(lambda _ids: self.dock_selected())
        results.selectionChanged.connect(self._rows_selected)
        self.queue.cancelRequested.connect(self.cancel)
        p = self.panel
        p.dockRequested.connect(self.dock_selected)
        p.poseStep.connect(self.step_pose)
        p.runChosen.connect(lambda rid: self.show_run(rid))
        p.settingsChanged.connect(self._settings_changed)
        p.map.pointClicked.connect(self.select_result)
        self.window.installEventFilter(self)

    def _settings_changed(self, s: DockSettings) -> None:
        self.settings = s
        save_settings(s)

    def show_settings(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.panel.tabs.setCurrentWidget(self.panel.settings_tab)

    def say(self, text: str, error: bool = False) -> None:
        """A message that never blocks: the status bar and the Docking dock."""
        self.messages.append(text)
        self.window.statusBar().showMessage(text, 15000)
        self.panel.show_message(text, error=error)
        if error:
            self.raise_dock()

    # -- launching ------------------------------------------------------------------------------
    def _request(self, target: Target, **kw) -> DockRequest:
        settings = self.panel.settings()
        return DockRequest(receptor=target.receptor, project=str(self.gen.project_path), ligand=target.ligand,
                           chain=target.chain, resnum=target.resnum, pocket=list(target.pocket),
                           settings=settings, redock=settings.redock, label=target.describe(), **kw)

    def _writable_project(self) -> bool:
        project = self.gen.project
        if project is None:
            self.say("Open the project with the results to dock first (Generate › Open project).", error=True)
            return False
        if project.read_only:
            self.say(f"The project is read-only ({project.message}): docking could not store its poses.",
                     error=True)
            return False
        return True

    def dock_selected(self) -> list[str]:
        """Dock the rows selected in the results table; one job per receptor and pocket."""
        rows = self.gen.results.selected_rows()
        if not rows:
            self.say("Select the results to dock in the Results table first.", error=True)
            return []
        if not self._writable_project():
            return []
        plan = plan_rows(self.gen.project, rows, self.window)
        jobs = [self.submit(self._request(target, results=ids)) for target, ids in plan.groups.values()]
        if plan.skipped:
            shown = plan.skipped[:3] + ([f"and {len(plan.skipped) - 3} more"] if len(plan.skipped) > 3 else [])
            self.say("Not docked: " + "; ".join(shown), error=not jobs)
        elif jobs:
            self.panel.show_message("")
        return jobs

    def dock_run(self, run_id: int, request=None) -> str | None:
        """Dock the valid results of a finished run (the Generate panel's "dock the valid results")."""
        if not self._writable_project():
            return None
        try:
            target = target_of_run(self.gen.project, run_id)
        except NoReceptor as exc:
            target = self._target_of_generation(request)
            if target is None:
                self.say(f"Run {run_id} not docked: {exc}", error=True)
                return None
        return self.submit(self._request(target, run=run_id))

    @staticmethod
    def _target_of_generation(request) -> Target | None:
        inp = getattr(request, "input", None)
        path = (inp.payload or {}).get("file") if inp is not None else None
        if not path:
            return None
        opts = inp.options or {}
        if opts.get("residues"):
            res = opts["residues"]
            return Target(path, pocket=tuple(res if isinstance(res, (list, tuple)) else str(res).split(",")),
                          name=Path(path).name)
        if opts.get("ligand"):
            from logos_desktop.docking.targets import ligand_target

            return ligand_target(path, opts["ligand"], Path(path).name)
        return None

    def submit(self, request: DockRequest) -> str:
        job = f"dock-{next(self._ids)}"
        self.requests[job] = request
        what = f"the valid results of run {request.run}" if request.run is not None else \
            f"{request.total} result{'s' if request.total != 1 else ''}"
        self.queue.add(Job(job, f"Docking {what} into {request.label}", request.total or 0,
                           command=request.command_line(), kind="dock"))
        self.waiting.append(job)
        jobs_dock = getattr(self.gen, "jobs_dock", None)
        if jobs_dock is not None:
            jobs_dock.show()
            jobs_dock.raise_()
        self._start_next()
        return job

    def _start_next(self) -> None:
        if any(p.running() for p in self.processes.values()):
            return
        while self.waiting:
            job = self.waiting.pop(0)
            j = self.queue.get(job)
            if j is None or j.status != "queued":
                continue
            proc = DockingProcess(self.requests[job], self)
            proc.event.connect(lambda ev, job=job: self._event(job, ev))
            proc.ended.connect(lambda status, why, job=job: self._ended(job, status, why))
            self.processes[job] = proc
            self.queue.on_progress({"job": job, "done": 0, "total": j.total})
            proc.start()
            return

    def cancel(self, job: str) -> None:
        j = self.queue.get(job)
        if j is None or j.kind != "dock":
            return
        proc = self.processes.get(job)
        if proc is not None:
            proc.cancel()
        elif job in self.waiting:
            self.waiting.remove(job)
            self.queue.on_finished({"job": job, "status": "cancelled"})

    def running_jobs(self) -> list[str]:
        return [job for job, p in self.processes.items() if p.running()]

    # -- events -----------------------------------------------------------------------------------
    def _event(self, job: str, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "receptor":
            lines = [str(x) for x in ev.get("summary") or []] or ["nothing removed"]
            name = ev.get("name") or ""
            self.queue.set_info(job, f"Receptor {name}: " + "; ".join(lines))
            self.panel.show_receptor(lines, name)
            self.window.statusBar().showMessage(f"Docking into {name}: " + "; ".join(lines), 15000)
            self.raise_dock()  # what preparation removed, and the summary as the scores arrive
            j = self.queue.get(job)
            if j is not None and ev.get("ligands"):
                self.queue.on_progress({"job": job, "done": j.done, "total": int(ev["ligands"])})
        elif kind == "progress":
            self.queue.on_progress({**ev, "job": job})
        elif kind == "result":
            if ev.get("result_id") is not None:
                if not self._refresh_timer.isActive():
                    self._refresh_timer.start()
                if not self._summary_timer.isActive():
                    self._summary_timer.start()
        elif kind == "error":
            msgs = self.errors.setdefault(job, [])
            msgs.append(str(ev.get("message") or "could not be docked"))
            last = msgs[-1]
            self.queue.on_error({"job": job, "message": f"{len(msgs)} not docked; latest: {last}"})
        elif kind == "finished":
            self.last_events[job] = ev

    def _ended(self, job: str, status: str, reason: str) -> None:
        proc = self.processes.pop(job, None)
        if proc is not None:
            proc.deleteLater()
        self.queue.on_finished({"job": job, "status": status, "error": reason or None})
        self._refresh_results()
        self.refresh_runs()
        if status == "failed":
            self.say(f"Docking failed: {reason}", error=True)
        else:
            summary = (self.last_events.get(job) or {}).get("summary") or {}
            words = f"Docking {status}: {summary.get('docked', 0)} docked, {summary.get('failed', 0)} not docked"
            if summary.get("mean_neg_vina") is not None:
                words += f" · mean −Vina {summary['mean_neg_vina']:.2f} kcal/mol"
            self.window.statusBar().showMessage(words, 15000)
        self._start_next()

    def _refresh_results(self) -> None:
        """New scores in the project: new rows appear, changed rows are read again (the selection
        and the pose shown stay; a row docked again shows its new pose when clicked)."""
        model = self.gen.results.model
        model.refresh()
        model.reload_rows()

    # -- the runs, the summary, the pictures -------------------------------------------------------
    def project_changed(self) -> None:
        self.clear_scene()
        self.refresh_runs()

    def docked_runs(self) -> list[tuple[int, str]]:
        project = self.gen.project
        if project is None:
            return []
        from engine.store.queries import ResultQuery

        out = []
        for run in project.runs():
            n = project.count_results(ResultQuery(run_id=run.id, scores={"vina": (None, None)}))
            if n:
                out.append((run.id, f"Run {run.id} · {run.task} · {n} docked"))
        return sorted(out, reverse=True)

    def refresh_runs(self, pictures: bool = True) -> None:
        try:
            runs = self.docked_runs()
        except Exception as exc:  # noqa: BLE001 - a damaged project: say so, keep the window
            self.panel.show_summary(None)
            self.say(f"Docking summary unavailable: {exc}", error=True)
            return
        self.panel.set_runs(runs)
        if not runs:
            self.panel.show_summary(None)
            self.panel.show_receptor([])
            self.panel.histograms.set_data({}, None)
            self.panel.map.clear_points("no docked run yet")
            return
        self.show_run(self.panel.run_id, pictures=pictures)

    def _docking_of_run(self, run_id: int, rows):
        project = self.gen.project
        found = project.dockings(run_id=run_id)
        for d in found:
            if isinstance(d.reference, dict) and d.reference.get("score") is not None:
                return d
        if found:
            return found[0]
        for r in rows:  # docked through --results of several runs: the docking of a docked row
            if "vina" in (r.scores or {}):
                poses = project.poses(r.id)
                if poses:
                    return project.get_docking(poses[0].docking_id)
        return None

    def show_run(self, run_id: int | None, pictures: bool = True) -> None:
        project = self.gen.project
        if project is None or run_id is None:
            return
        from engine.docking import report
        from engine.store.queries import ResultQuery

        rows = project.query_results(ResultQuery(run_id=run_id, limit=None, count_total=False)).rows
        docking = self._docking_of_run(run_id, rows)
        reference = docking.reference if docking is not None and isinstance(docking.reference, dict) else None
        summary = report.run_summary(rows, reference)
        run = project.get_run(run_id)
        self.current_summary = summary
        self.panel.show_summary(summary, f"Run {run_id} ({run.task})")
        if docking is not None:
            lines = list((docking.report or {}).get("summary") or [])
            self.panel.show_receptor(lines or ["nothing removed"], docking.receptor_name)
        if not pictures:
            return
        dist = report.distributions(rows)
        ref_name = str((reference or {}).get("name") or "reference")
        ref_vals = report.reference_values((reference or {}).get("smiles"), (reference or {}).get("score")) \
            if reference else None
        self.panel.histograms.set_data(dist, ref_vals, ref_name)
        self.current_distributions = dist
        cand = [r for r in rows if r.valid and r.smiles][:MAP_LIMIT]
        ids = [r.id for r in cand]
        smiles = [r.smiles for r in cand]
        vina = [float((r.scores or {}).get("vina")) if isinstance((r.scores or {}).get("vina"), (int, float))
                else np.nan for r in cand]
        ref_smiles = (reference or {}).get("smiles")
        capped = len([r for r in rows if r.valid and r.smiles]) > MAP_LIMIT
        self._start_map(smiles, ids, vina, ref_smiles, ref_name, capped)

    def _start_map(self, smiles, ids, vina, ref_smiles, ref_name, capped) -> None:
        from engine.docking import report

        self._map_token += 1
        self._map_args = (self._map_token, ids, vina, smiles, ref_smiles, ref_name, capped)
        if not smiles:
            self.panel.map.clear_points("no valid candidate to place")
            self.panel.map_status.setText("")
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chemical-space")
        self.panel.map_status.setText(f"placing {len(smiles)} candidates (Morgan fingerprints, "
                                      f"{'t-SNE' if len(smiles) + bool(ref_smiles) >= report.TSNE_MIN_POINTS else 'PCA'})…")
        self._map_future = self._pool.submit(report.chemical_space, smiles, ref_smiles, 0)
        self._map_future.token = self._map_token
        self._map_timer.start()

    def _collect_map(self) -> None:
        fut = self._map_future
        if fut is None or not fut.done():
            return
        self._map_timer.stop()
        self._map_future = None
        token, ids, vina, smiles, ref_smiles, ref_name, capped = self._map_args
        if fut.token != token:
            return
        try:
            xy = fut.result()
        except Exception as exc:  # noqa: BLE001 - the map is a picture: say why it is missing
            self.panel.map.clear_points(f"the map could not be computed: {exc}")
            return
        n = len(smiles)
        placed = int(np.isfinite(xy[:n]).all(axis=1).sum())
        self.panel.map.set_points(xy[:n], ids, vina, smiles, xy[n] if ref_smiles else None, ref_name)
        note = f"{placed} candidates" + (f" (the first {MAP_LIMIT} of the run)" if capped else "")
        note += f" and the reference {ref_name} (red star)" if ref_smiles else ""
        self.panel.map_status.setText(note + "; nearby points are similar molecules (Tanimoto on Morgan "
                                      "fingerprints). Click a point to select its row.")
        if self.scene_row is not None:
            self.panel.map.mark(self.scene_row.id)

    def wait_for_map(self, timeout: float = 60.0) -> bool:
        """Block until the map is drawn (screenshots, tests)."""
        fut = self._map_future
        if fut is not None:
            try:
                fut.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - reported by _collect_map
                pass
            self._collect_map()
        return self._map_future is None

    def select_result(self, result_id: int) -> bool:
        """Select the row of ``result_id`` in the results table (a click on the map)."""
        ok = self.gen.results.select_result(int(result_id))
        if not ok:
            self.window.statusBar().showMessage(f"result {result_id} is not in the table with its "
                                                "current filter", 8000)
        return ok

    # -- the pose in the 3D view ---------------------------------------------------------------------
    def _rows_selected(self, rows) -> None:
        if rows:
            self.panel.map.mark(rows[-1].id)
            run_id = rows[-1].run_id
            if run_id is not None and "vina" in (rows[-1].scores or {}) and run_id != self.panel.run_id:
                self.panel.choose_run(run_id)

    def show_row(self, row) -> bool:
        """Show the best pose of a docked row in its pocket; False (and the scene cleared) when the
        row has no pose."""
        project = self.gen.project
        if project is None or not isinstance(row.scores, dict) or "vina" not in row.scores:
            self.clear_scene()
            return False
        try:
            poses = project.poses(row.id)
        except Exception as exc:  # noqa: BLE001
            self.clear_scene()
            self.say(f"Poses of result {row.id} unavailable: {exc}", error=True)
            return False
        if not poses:
            self.clear_scene()
            return False
        newest = poses[0].docking_id
        poses = [p for p in poses if p.docking_id == newest]
        docking = project.get_docking(newest)
        receptor = self._receptor_item(docking)
        if self.scene_receptor_id is not None and (receptor is None or receptor.id != self.scene_receptor_id):
            self._unfade()
        same_pocket = (self.scene_docking is not None and self.scene_docking.id == docking.id
                       and self.scene_receptor_id == (receptor.id if receptor is not None else None))
        if not same_pocket:
            self._look_from = None  # a new pocket: look for its open side again
        self.scene_row, self.scene_poses, self.scene_index, self.scene_docking = row, poses, 0, docking
        self.scene_receptor_id = receptor.id if receptor is not None else None
        self._draw()
        self.raise_dock()
        self.panel.tabs.setCurrentWidget(self.panel.pose_tab)
        return True

    def raise_dock(self) -> None:
        """Bring the Docking dock forward; the first time, give it room beside the results."""
        self.dock.show()
        self.dock.raise_()
        if not getattr(self, "_sized", False):
            self._sized = True
            results = getattr(self.gen, "results_dock", None)
            if results is not None and not self.dock.isFloating():
                self.window.resizeDocks([results, self.dock], [830, 570], Qt.Orientation.Horizontal)
                self.window.resizeDocks([results], [410], Qt.Orientation.Vertical)

    def step_pose(self, delta: int) -> None:
        if not self.scene_poses:
            return
        i = max(0, min(len(self.scene_poses) - 1, self.scene_index + int(delta)))
        if i != self.scene_index:
            self.scene_index = i
            self._draw()

    def _sha_of(self, item) -> str | None:
        cached = self._item_sha.get(item.id)
        if cached is not None and cached[0] == item._gen:
            return cached[1]
        import hashlib

        sha = None
        src = getattr(item.obj, "source", None)
        if src is not None and not getattr(item.obj, "modified", False) and item._gen == 0:
            try:
                sha = hashlib.sha256(Path(src).read_bytes()).hexdigest()
            except OSError:
                sha = None
        self._item_sha[item.id] = (item._gen, sha)
        return sha

    def _receptor_item(self, docking):
        """The loaded structure the poses belong to (the same file), else the stored receptor loaded."""
        ws = self.window.workspace
        for item in ws.items():
            if item.obj.structure is None or getattr(item.obj, "_logos_preview", False):
                continue
            if self._sha_of(item) == docking.receptor_sha256:
                return item
        try:
            info = self.gen.project.get_input(docking.receptor_input_id)
            path = receptor_file(info.data, info.name, info.fmt)
            from engine.structures import io

            objs = [o for o in io.read_file(path) if o.structure is not None]
        except Exception as exc:  # noqa: BLE001 - the pose is still drawn, without its protein
            self.say(f"The receptor of docking {docking.id} could not be loaded: {exc}", error=True)
            return None
        items = ws.add_objects(objs[:1])
        if not items:
            return None
        self._item_sha[items[0].id] = (items[0]._gen, docking.receptor_sha256)
        return items[0]

    @staticmethod
    def _pose_mol(pose):
        """The pose as drawn: heavy atoms and the hydrogens on heteroatoms (the ones in H-bonds)."""
        from rdkit import Chem

        mol = Chem.MolFromMolBlock(pose.molblock, removeHs=False)
        if mol is None:
            mol = Chem.MolFromMolBlock(pose.molblock, removeHs=False, sanitize=False)
        if mol is None:
            return None
        on_carbon = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 1
                     and all(n.GetAtomicNum() == 6 for n in a.GetNeighbors())]
        if on_carbon:
            rw = Chem.RWMol(mol)
            for i in sorted(on_carbon, reverse=True):
                rw.RemoveAtom(i)
            mol = rw.GetMol()
            try:
                Chem.SanitizeMol(mol)
            except Exception:  # noqa: BLE001 - drawn as read
                pass
        return mol

    def _draw(self) -> None:
        from engine.structures.model import LoadedObject
        from logos_desktop.render.vtk_docking import faded_molecule_actors, interaction_actors

        ws = self.window.workspace
        view = self.window.view3d
        row, pose = self.scene_row, self.scene_poses[self.scene_index]
        mol = self._pose_mol(pose)
        if mol is None:
            self.say(f"Pose {pose.rank} of result {row.id} could not be read", error=True)
            return
        mol.SetProp("_Name", f"result {row.id} pose {pose.rank}")
        obj = LoadedObject(kind="molecule", name=f"result {row.id} · pose {pose.rank}", source=None, fmt="sdf",
                           mol=mol, warnings=[f"docked pose {pose.rank}: Vina {pose.score:.2f} kcal/mol"])
        obj._logos_preview = True
        gen = self.gen
        if gen.preview_item_id is not None and ws.item(gen.preview_item_id) is not None:
            ws.remove(gen.preview_item_id)
        items = ws.add_objects([obj])
        gen.preview_item_id = items[0].id if items else None
        receptor = ws.item(self.scene_receptor_id) if self.scene_receptor_id is not None else None
        extras, drawn = interaction_actors(pose.interactions)
        if receptor is not None:
            ws.set_ligand_opacity(receptor.id, FADED)
            from logos_desktop.render.vtk_protein import masks

            has_ligand = bool(masks(receptor.view_table())[1].any())
        else:
            has_ligand = False
        ref = self.scene_docking.reference if isinstance(self.scene_docking.reference, dict) else {}
        if not has_ligand and ref.get("molblock"):
            from rdkit import Chem

            ref_mol = Chem.MolFromMolBlock(ref["molblock"], removeHs=False)
            if ref_mol is not None:
                extras += faded_molecule_actors(ref_mol, FADED)
        self.drawn_interactions = drawn
        view.set_extra("docking", extras)
        xyz = mol.GetConformer().GetPositions()
        extent = float(np.linalg.norm(xyz - xyz.mean(axis=0), axis=1).max()) if len(xyz) else 5.0
        direction = None
        if receptor is not None and self._look_from is None:
            from logos_desktop.render.vtk_docking import open_direction
            from logos_desktop.render.vtk_protein import masks

            table = receptor.view_table()
            cam = view.renderer.GetActiveCamera()
            current = np.asarray(cam.GetPosition()) - np.asarray(cam.GetFocalPoint())
            self._look_from = open_direction(xyz.mean(axis=0), table.xyz[masks(table)[0]], current)
        if self._look_from is not None:
            direction = self._look_from
        view.focus(xyz, radius=extent + 4.5, slab=True, direction=direction)
        view.render()
        self.panel.show_pose(row.id, pose, self.scene_index, len(self.scene_poses), ref.get("name"))
        self.panel.map.mark(row.id)

    def _unfade(self) -> None:
        ws = getattr(self.window, "workspace", None)
        if ws is not None and self.scene_receptor_id is not None and ws.item(self.scene_receptor_id) is not None:
            ws.set_ligand_opacity(self.scene_receptor_id, 1.0)

    def clear_scene(self) -> None:
        if self.scene_row is None and not self.drawn_interactions:
            return
        self._unfade()
        self.window.view3d.clear_extra("docking")
        self.scene_row, self.scene_poses, self.scene_index, self.scene_docking = None, [], 0, None
        self.scene_receptor_id = None
        self.drawn_interactions = []
        self.panel.clear_pose()
        self.window.view3d.render()

    # -- shutdown -----------------------------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.window and ev.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self) -> None:
        """Window closing: no docking process outlives it."""
        self.waiting.clear()
        for proc in list(self.processes.values()):
            proc.cancel()
        for proc in list(self.processes.values()):
            if not proc.wait(1500):
                proc._kill_group()
                proc.wait(1000)
        self._map_timer.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
