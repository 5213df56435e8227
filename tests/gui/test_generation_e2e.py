"""End to end under Xvfb with a real engine process and a real GGUF: drop a real complex, click
its ligand, design 10 ligands, see them in the table and in the project file, close and reopen the
project and find the rows; then kill the engine mid-job: the job fails with the reason, its run is
marked failed, the rows already stored stay, and the restarted engine runs the next job."""

from __future__ import annotations

import os
import signal

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)
require_module("llama_cpp", allow_module_level=True)

pytestmark = pytest.mark.slow

N = 10


@pytest.fixture
def window(engine_window):  # tests/fixtures/gui_engine.py
    return engine_window


def _click_ligand(window, qtbot, item, resname):
    from tests.fixtures.gui_workspace import qt_pos_of_atom

    window.fit_view()
    table = item.table()
    idx = [i for i, r in enumerate(table.res_names) if r == resname]
    window.select_mode.setCurrentText("residue")
    pos = qt_pos_of_atom(window, item, idx[len(idx) // 2])
    from PySide6.QtCore import Qt

    qtbot.mouseClick(window.view3d.vtk_widget, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: bool(window.workspace.selection), timeout=5000)
    picked = {table.res_names[i] for _id, i in window.workspace.selection}
    if picked != {resname}:  # the click hit a neighbour (software GL picking): select the residue
        window.workspace.set_selection([(item.id, i) for i in idx])


def _wait_job(qtbot, gen, job, timeout=600000):
    qtbot.waitUntil(lambda: not gen.queue.get(job).active, timeout=timeout)
    return gen.queue.get(job)


def test_design_ligands_for_a_dropped_complex_and_survive_a_crash(qtbot, window, tmp_path, test_data,
                                                                 model_path):
    from engine.store.project import Project
    from engine.store.queries import ResultQuery
    from tests.fixtures.gui_workspace import drop_files

    gen = window.generation
    qtbot.waitUntil(lambda: gen.bridge.model is not None, timeout=120000)
    assert os.path.basename(model_path) in gen.model_label.text()
    assert "CPU" in gen.model_label.text() and "layers on GPU" in gen.model_label.text()

    project = tmp_path / "design.logos"
    assert gen.open_project(project, create=True)
    drop_files(window, qtbot, [test_data / "structures" / "1hvr.pdb"])
    qtbot.waitUntil(lambda: len(window.workspace.items()) == 1, timeout=30000)
    item = window.workspace.items()[0]
    _click_ligand(window, qtbot, item, "XK2")

    panel = gen.generate
    panel.set_task("ligand")
    assert "XK2" in panel.input_label.text()
    panel.n.setValue(N)
    panel.sampling.set_values({"max_new_tokens": 48})
    panel.run_button.click()
    job = next(iter(gen.queue.jobs))
    done = _wait_job(qtbot, gen, job)
    assert done.status == "finished", done.error
    assert done.results == N

    # in the table (the view was refreshed from the project, not from the events)
    qtbot.waitUntil(lambda: gen.results.model.rowCount() == N, timeout=10000)
    rows = [gen.results.model.row(i) for i in range(N)]
    assert all(r.task == "ligand" for r in rows)
    assert "10 rows" in gen.results.count_label.text()
    # in the project file, read by a separate connection
    with Project.open(project) as p:
        assert p.count_results(ResultQuery(task="ligand")) == N
        run = p.runs()[0]
        assert run.status == "finished" and run.seed == panel.seed.value()
        assert "<PocketS>" in run.prompt and run.prompt.endswith("<MoleculeS>")
        assert run.model is not None and run.model.sha256
        assert p.get_input(run.input_ids[0]).name == "1hvr.pdb"
    # provenance of a row, and the row shown beside its pocket
    gen.results.view.selectRow(0)
    assert gen.provenance.provenance.run_id == run.id
    assert "1hvr.pdb" in gen.provenance.text.toPlainText()

    # close and reopen: the rows are still there
    gen.close_project()
    assert gen.results.model.rowCount() == 0
    assert gen.open_project(project)
    assert gen.results.model.rowCount() == N

    # Re-run from the provenance panel: same prompt, sampling and seed give the same samples
    gen.results.view.selectRow(0)
    assert gen.provenance.rerun_button.isEnabled()
    gen.provenance.rerun_button.click()
    rerun_job = list(gen.queue.jobs)[-1]
    assert _wait_job(qtbot, gen, rerun_job).status == "finished"
    with Project.open(project) as p:
        runs = p.runs()  # newest first
        assert len(runs) == 2 and runs[0].prompt == runs[1].prompt and runs[0].seed == runs[1].seed
        first = [r.record for r in p.query_results(ResultQuery(run_id=runs[1].id, limit=None)).rows]
        again = [r.record for r in p.query_results(ResultQuery(run_id=runs[0].id, limit=None)).rows]
        assert sorted(again) == sorted(first)
    qtbot.waitUntil(lambda: gen.results.model.rowCount() == 2 * N, timeout=10000)

    # the engine dies in the middle of the next job
    pid = gen.bridge.client.proc.pid
    states = []
    gen.bridge.stateChanged.connect(lambda s, m: states.append((s, m)))

    def kill_at_start(ev):  # on the client's reader thread: the moment the job has started
        if ev.get("type") == "started":
            gen.bridge.client.on_event = None
            os.kill(pid, signal.SIGKILL)

    gen.bridge.client.on_event = kill_at_start
    panel.n.setValue(256)
    panel.sampling.set_values({"max_new_tokens": 400})
    panel.run_button.click()
    assert len(gen.queue.jobs) == 3, panel.message.text()  # the input is still XK2 of 1hvr
    job2 = list(gen.queue.jobs)[-1]
    failed = _wait_job(qtbot, gen, job2, timeout=120000)
    assert failed.status == "failed", failed
    assert "exited" in failed.error and "-9" in failed.error
    assert "-9" in gen.jobs.rows[job2].detail.text()
    assert any(s == "crashed" and "exit code -9" in m for s, m in states)
    with Project.open(project) as p:
        runs = {r.id: r for r in p.runs()}
        assert runs[run.id].status == "finished"
        crashed_run = max(runs)
        assert runs[crashed_run].status == "failed" and "exited" in (runs[crashed_run].error or "")
        assert p.count_results(ResultQuery(run_id=run.id)) == N  # nothing stored is lost
    assert gen.results.model.rowCount() >= 2 * N

    # the engine was restarted and the model reloaded: the next job runs
    qtbot.waitUntil(lambda: gen.bridge.state == "ready" and gen.bridge.model is not None, timeout=120000)
    assert gen.bridge.client.proc.pid != pid
    panel.n.setValue(3)
    panel.sampling.set_values({"max_new_tokens": 32})
    panel.run_button.click()
    job3 = list(gen.queue.jobs)[-1]
    assert _wait_job(qtbot, gen, job3).status == "finished"
