"""engine.docking on real files with real Vina, Meeko, PoseBusters and ProLIF (small settings)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from rdkit import Chem

from engine.docking import (
    Box,
    DockingError,
    LigandError,
    LigandJob,
    Settings,
    check_box,
    dock_ligands,
    make_target,
    paper_metric,
    prepare_receptor,
)
from engine.docking.ligand import prepare_ligand
from tests.fixtures import docking_workers

FAST = Settings(exhaustiveness=2, n_poses=3, seed=7)


@pytest.fixture(scope="module")
def hvr(test_data):
    return prepare_receptor(test_data / "structures" / "1hvr.pdb", ligand="XK2")


@pytest.fixture(scope="module")
def dhfr(test_data):
    ref = Chem.MolFromMolFile(str(test_data / "structures" / "1ia1_ligand.sdf"))
    return prepare_receptor(test_data / "structures" / "1ia1_protein_one_lig_removed.pdb", reference_mol=ref)


def _events(target, jobs, settings=FAST, **kw):
    return list(dock_ligands(target, settings, jobs, cpus=kw.pop("cpus", 2), **kw))


# ---------------------------------------------------------------------------------- receptor


def test_receptor_lists_what_it_removed_and_keeps_the_reference(hvr):
    assert hvr.reference is not None and hvr.reference.name == "XK2"
    assert (hvr.source, hvr.name) == ("1hvr.pdb", "1hvr")  # messages name the file
    assert hvr.hetero_removed == ["XK2 A:1"] or hvr.hetero_removed[0].startswith("XK2 ")
    lines = hvr.summary()
    assert any("reference ligand XK2" in line for line in lines)
    # S-hydroxycysteine (CSO, chains A and B) has no Meeko template: removed and named
    assert {r["residue"] for r in hvr.removed} >= {"A:CSO67", "B:CSO67"}
    assert any("CSO67" in line and "non-standard amino acid" in line for line in lines)
    # the reference comes with the dictionary's bond orders: a SMILES RDKit reads back
    assert Chem.MolFromSmiles(hvr.reference.smiles) is not None
    assert "ATOM" in hvr.pdbqt and "XK2" not in hvr.pdbqt and "HOH" not in hvr.pdbqt
    assert len(hvr.input_sha256) == 64 and len(hvr.key) == 64


def test_waters_are_removed_and_counted(tmp_path, test_data):
    text = (test_data / "structures" / "1hvr.pdb").read_text().replace("\nEND", "\n", 1)
    water = "HETATM{:5d}  O   HOH W{:4d}      {:8.3f}{:8.3f}{:8.3f}  1.00 20.00           O\n"
    f = tmp_path / "wet.pdb"
    f.write_text(text.rstrip("\n") + "\n" + water.format(9001, 1, 1.0, 2.0, 3.0)
                 + water.format(9002, 2, 4.0, 5.0, 6.0) + "END\n")
    wet = prepare_receptor(f, ligand="XK2")
    assert wet.waters_removed == 2 and "removed 2 water molecule(s)" in wet.summary()
    assert "HOH" not in wet.pdbqt


def test_residues_that_cannot_be_typed_are_listed_never_silent(dhfr):
    # 1ia1 keeps cofactors (NDP) and a second copy of the ligand: no templates, removed and named
    removed = {r["residue"]: r["reason"] for r in dhfr.removed}
    assert "A:NDP193" in removed and "template" in removed["A:NDP193"]
    assert "A:TQ3194" in removed
    # two residues whose atoms do not fit any template (Meeko's own matching)
    assert any("SER104" in k for k in removed)
    summary = " ".join(dhfr.summary())
    for key in removed:
        assert key in summary


def test_box_from_reference_is_its_extent_plus_padding(hvr):
    box = hvr.box_from_reference(padding=5.0)
    xyz = hvr.reference.xyz()
    ext = xyz.max(0) - xyz.min(0)
    assert np.allclose(box.size, np.maximum(ext + 10.0, 18.0), atol=1e-6)
    assert np.allclose(box.center, (xyz.max(0) + xyz.min(0)) / 2)
    assert box.contains(xyz).all()
    assert "XK2" in box.source


def test_box_from_pocket_residues(hvr):
    box = hvr.box_from_residues("A:25,A:27,B:25,B:27,A:50")
    assert all(s >= 18.0 for s in box.size)
    with pytest.raises(DockingError, match="A:999"):
        hvr.box_from_residues("A:999")
    with pytest.raises(DockingError, match="no residues"):
        hvr.box_from_residues(" , ")
    with pytest.raises(DockingError, match="cannot read pocket residue"):
        hvr.box_from_residues("A:twenty")
    with pytest.raises(DockingError, match="over 40"):
        hvr.box_from_residues("A:40,B:41")  # 55 Å apart: a whole-protein box
    with pytest.raises(DockingError, match="over 40"):
        check_box(Box((0, 0, 0), (41, 20, 20)))


def test_alternate_locations_first_or_chosen(tmp_path, test_data):
    lines = (test_data / "structures" / "1hvr.pdb").read_text().splitlines()
    out = []
    for line in lines:  # give residue A:ILE50 two conformers, B moved by 1 Å along x
        if line.startswith("ATOM") and line[17:20] == "ILE" and line[21] == "A" and line[22:26].strip() == "50":
            a = line[:16] + "A" + line[17:54] + " 0.50" + line[60:]
            x = float(line[30:38]) + 1.0
            b = line[:16] + "B" + line[17:30] + f"{x:8.3f}" + line[38:54] + " 0.50" + line[60:]
            out += [a, b]
        else:
            out.append(line)
    f = tmp_path / "alt.pdb"
    f.write_text("\n".join(out) + "\n")
    first = prepare_receptor(f, ligand="XK2")
    chosen = prepare_receptor(f, ligand="XK2", altloc="B")
    assert first.altloc_residues == ["A:ILE50"] and "alternate locations" in first.summary()[0]
    assert first.pdbqt != chosen.pdbqt
    orig = prepare_receptor(test_data / "structures" / "1hvr.pdb", ligand="XK2")
    assert first.pdbqt == orig.pdbqt  # the first conformer is the file's own coordinates
    with pytest.raises(DockingError, match="one letter"):
        prepare_receptor(f, ligand="XK2", altloc="AB")


def test_bad_receptor_files(tmp_path, test_data):
    with pytest.raises(DockingError, match="no protein"):
        lig_only = tmp_path / "lig.pdb"
        lig_only.write_text("".join(l + "\n" for l in (test_data / "structures" / "1hvr.pdb").read_text().splitlines()
                                    if l.startswith("HETATM") and l[17:20] == "XK2"))
        prepare_receptor(lig_only)
    empty = tmp_path / "empty.pdb"
    empty.write_text("")
    with pytest.raises(DockingError, match="empty.pdb: the receptor file is empty"):
        prepare_receptor(empty)
    with pytest.raises(DockingError, match="missing.pdb: cannot read"):
        prepare_receptor(tmp_path / "missing.pdb")
    junk = tmp_path / "junk.cif"
    junk.write_text("data_x\n_cell.length_a 'unterminated\n")
    with pytest.raises(DockingError, match="junk.cif"):
        prepare_receptor(junk)
    with pytest.raises(DockingError, match="no residue ZZZ"):
        prepare_receptor(test_data / "structures" / "1hvr.pdb", ligand="ZZZ")


# ---------------------------------------------------------------------------------- ligands


@pytest.mark.parametrize("smiles, reason", [
    ("OB(O)c1ccccc1", "atoms Vina cannot type: B"),
    ("[Fe+2]", "atoms Vina cannot type: Fe"),
    ("C1CC", "RDKit cannot read this SMILES"),
    ("[C@H]12C[C@@H]1C2", "could not embed this molecule in 3D"),
    ("", "empty SMILES"),
])
def test_ligands_that_cannot_be_docked_say_why(smiles, reason):
    with pytest.raises(LigandError, match=reason.replace("(", r"\(")):
        prepare_ligand(smiles)


def test_ligand_preparation_protonates_at_ph_7_4_keeps_stereo_and_is_seeded():
    pdbqt, molh = prepare_ligand("C[C@H](N)C(=O)O", seed=3)
    smi = Chem.MolToSmiles(Chem.RemoveHs(molh))
    assert smi == "C[C@H]([NH3+])C(=O)[O-]"  # zwitterion at pH 7.4, L-alanine kept
    assert pdbqt.startswith("REMARK") or "ROOT" in pdbqt
    again, molh2 = prepare_ligand("C[C@H](N)C(=O)O", seed=3)
    assert again == pdbqt
    other, _ = prepare_ligand("C[C@H](N)C(=O)O", seed=4)
    assert other != pdbqt


# ---------------------------------------------------------------------------------- docking


def test_dock_reports_scores_poses_rmsd_checks_and_interactions(dhfr):
    target = make_target(dhfr, dhfr.box_from_reference())
    jobs = [LigandJob(0, dhfr.reference.smiles, "TQ3"), LigandJob(1, "OB(O)c1ccccc1", "boronic acid"),
            LigandJob(2, "CC(=O)Oc1ccccc1C(=O)O", "aspirin")]
    events = _events(target, jobs, Settings(exhaustiveness=4, n_poses=5, seed=1))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "progress" and kinds[-1] == "finished" and events[-1]["status"] == "finished"
    res = {e["index"]: e for e in events if e["type"] == "result"}
    errs = {e["index"]: e for e in events if e["type"] == "error"}
    assert set(res) == {0, 2} and set(errs) == {1}
    assert "Vina cannot type: B" in errs[1]["message"]
    tq3 = res[0]
    assert tq3["score"] < -5 and tq3["score"] == tq3["poses"][0]["score"]
    assert [p["score"] for p in tq3["poses"]] == sorted(p["score"] for p in tq3["poses"])
    # redocked: some pose of the co-crystal ligand lies within 2 Å of the crystal pose
    assert min(p["rmsd"] for p in tq3["poses"]) < 2.0
    assert res[2]["rmsd"] is None  # aspirin is not the reference molecule
    # the pose is in the receptor's frame: inside the box
    pose = Chem.MolFromMolBlock(tq3["poses"][0]["molblock"])
    assert target.box.contains(pose.GetConformer().GetPositions()).all()
    # PoseBusters: every pose checked, the checks named
    assert tq3["checks"]["n_checks"] >= 15 and isinstance(tq3["checks"]["passed"], bool)
    # ProLIF: interactions with residue names and the points a line joins
    inter = tq3["interactions"]
    assert inter and all(i["residue"] and len(i["ligand_xyz"]) == 3 and len(i["protein_xyz"]) == 3 for i in inter)
    assert {"hydrophobic contact"} <= {i["label"] for i in inter} or any("hydrogen bond" in i["label"] for i in inter)
    assert paper_metric([r["score"] for r in res.values()]) == pytest.approx(-(tq3["score"] + res[2]["score"]) / 2, abs=1e-3)
    prog = [e for e in events if e["type"] == "progress"][-1]
    assert prog["done"] == 3 and prog["docked"] == 2 and prog["failed"] == 1 and prog["ligands_per_minute"] > 0


def test_same_seed_same_poses_and_other_ligands_do_not_matter(hvr):
    target = make_target(hvr, hvr.box_from_reference(), analyse=False)
    fast = Settings(exhaustiveness=1, n_poses=2, seed=11, checks=False, interactions=False)
    a = [e for e in _events(target, [LigandJob(0, "c1ccccc1CCN")], fast, cpus=1) if e["type"] == "result"]
    b = [e for e in _events(target, [LigandJob(0, "CCO"), LigandJob(1, "c1ccccc1CCN")], fast, cpus=1)
         if e["type"] == "result" and e["smiles"] == "c1ccccc1CCN"]
    assert [p["molblock"] for p in a[0]["poses"]] == [p["molblock"] for p in b[0]["poses"]]
    assert [p["score"] for p in a[0]["poses"]] == [p["score"] for p in b[0]["poses"]]


def test_a_crashing_worker_is_reported_for_its_ligand_and_the_rest_go_on(hvr):
    target = make_target(hvr, hvr.box_from_reference(), analyse=False)
    fast = Settings(exhaustiveness=1, n_poses=1, seed=1, checks=False, interactions=False)
    jobs = [LigandJob(0, "CCO", "ethanol"), LigandJob(1, "CCN", "crash"), LigandJob(2, "CCC", "propane"),
            LigandJob(3, "CCCl", "chloroethane")]
    events = _events(target, jobs, fast, fn=docking_workers.crash_on_marked)
    res = {e["index"] for e in events if e["type"] == "result"}
    errs = [e for e in events if e["type"] == "error"]
    assert res == {0, 2, 3}
    assert [e["index"] for e in errs] == [1]
    assert "worker crashed (exit code 70)" in errs[0]["message"]
    assert events[-1]["status"] == "finished"


def test_cancel_stops_the_workers_within_a_second(hvr):
    import psutil

    target = make_target(hvr, hvr.box_from_reference(), analyse=False)
    cancel = threading.Event()
    events, ended = [], {}

    def consume():
        for ev in dock_ligands(target, FAST, [LigandJob(i, "CCO") for i in range(4)], cpus=2, cancel=cancel,
                               fn=docking_workers.slow):
            events.append(ev)
        ended["at"] = time.perf_counter()

    me = psutil.Process()

    def pool_workers():  # spawned workers, not multiprocessing's resource tracker
        return [p for p in me.children() if "spawn_main" in " ".join(p.cmdline())]

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.time() + 60
    while len(pool_workers()) < 2 and time.time() < deadline:  # the pool's workers are up
        time.sleep(0.1)
    workers = pool_workers()
    assert len(workers) == 2
    time.sleep(1.0)  # both are inside their (one-minute) ligand
    t0 = time.perf_counter()
    cancel.set()
    thread.join(10)
    assert not thread.is_alive()
    took = ended["at"] - t0
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "cancelled"
    assert not [e for e in events if e["type"] == "result"]
    assert took < 1.0, f"cancel took {took:.2f} s"
    gone, alive = psutil.wait_procs(workers, timeout=1.0)
    assert not alive, f"workers still running after cancel: {[p.pid for p in alive]}"


def test_settings_out_of_range_are_refused(hvr):
    target = make_target(hvr, hvr.box_from_reference(), analyse=False)
    for bad, msg in ((Settings(exhaustiveness=0), "exhaustiveness"), (Settings(n_poses=50), "poses"),
                     (Settings(seed=-1), "seed")):
        with pytest.raises(DockingError, match=msg):
            list(dock_ligands(target, bad, [LigandJob(0, "CCO")], cpus=1))


def test_a_dask_cluster_gives_the_scores_and_poses_of_the_local_pool(hvr):
    import distributed

    target = make_target(hvr, hvr.box_from_reference(), analyse=False)
    fast = Settings(exhaustiveness=1, n_poses=2, seed=5, checks=False, interactions=False)
    jobs = [LigandJob(0, "c1ccccc1O"), LigandJob(1, "CC(=O)N")]
    local = {e["index"]: e for e in _events(target, jobs, fast) if e["type"] == "result"}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = {e["index"]: e for e in dock_ligands(target, fast, jobs, executor=client.get_executor(), cpus=2)
                  if e["type"] == "result"}
    assert set(local) == set(remote) == {0, 1}
    for i in local:
        assert [p["score"] for p in local[i]["poses"]] == [p["score"] for p in remote[i]["poses"]]
        assert [p["molblock"] for p in local[i]["poses"]] == [p["molblock"] for p in remote[i]["poses"]]
    assert {local[i]["worker"] for i in local}.isdisjoint({remote[i]["worker"] for i in remote})


def test_workers_die_with_the_process_that_started_them(tmp_path):
    """Whichever way a docking run ends (even a parent killed outright), its workers do not go on."""
    import os
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "worker.pid"
    script = (
        "import os, sys, time\n"
        "from engine.docking.pool import local_executor\n"
        "ex = local_executor(1)\n"
        "ex.submit(time.sleep, 0).result()\n"
        f"open({str(pid_file)!r}, 'w').write(str(next(iter(ex._processes))))\n"
        "ex.submit(time.sleep, 120)\n"
        "time.sleep(0.5)\n"
        "os._exit(0)\n")
    # no pipes: a surviving worker would hold them open
    subprocess.run([sys.executable, "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120, check=True)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    break
        except OSError:  # reaped meanwhile
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise AssertionError("the worker outlived the process that started it")


def test_a_crashed_workers_exit_code_is_read_while_the_pool_reaps_it():
    """A broken pool's own thread joins its workers while the pool reads their exit codes: when
    that thread has reaped the process but not yet stored its code, the code must not be lost
    (a CI run reported a crash without it). The other thread's two steps, reaping and storing, are
    made here with a pause between them, in the order that lost the code."""
    import multiprocessing
    import os

    from engine.docking.pool import _exit_codes

    p = multiprocessing.get_context("spawn").Process(target=docking_workers.exit_70)
    p.start()
    reaped = threading.Event()

    def reap_then_store():  # what Process.join does in another thread, its two steps apart
        _, status = os.waitpid(p.pid, 0)
        reaped.set()
        time.sleep(0.1)
        p._popen.returncode = os.waitstatus_to_exitcode(status)

    t = threading.Thread(target=reap_then_store)
    t.start()
    assert reaped.wait(30)
    assert _exit_codes({p.pid: p}) == [70]
    t.join()
