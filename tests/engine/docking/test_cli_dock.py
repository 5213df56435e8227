"""``logos dock`` and ``logos generate --dock``: real docking (small ligands, exhaustiveness 1) of
the test complexes, the JSON lines and events, what goes into the project, bad input as one line
with exit code 2, Ctrl+C as a cancelled run with exit code 130."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.store import Project, ResultQuery

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"
HVR = DATA / "1hvr.pdb"
IA1 = DATA / "1ia1_protein_one_lig_removed.pdb"
IA1_LIGAND = DATA / "1ia1_ligand.sdf"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
FAST = ["--exhaustiveness", "1", "--poses", "2", "--cpus", "2"]


def logos(*args, timeout=240, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _molblock(smiles: str, name: str) -> str:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    mol.SetProp("_Name", name)
    return Chem.MolToMolBlock(Chem.RemoveHs(mol))


def _one_line_error(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("logos dock: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_dock_json_lines_store_results_then_attach_poses_to_stored_ones(tmp_path):
    project = tmp_path / "screen.logos"
    smiles = ["CCO", ASPIRIN, "OB(O)c1ccccc1", "C1CC", "C[Hg]C"]
    sdf = tmp_path / "two.sdf"  # a molecule, then a record whose counts line promises atoms it lacks
    sdf.write_text(_molblock("CC(N)=O", "acetamide") + "$$$$\n"
                   + _molblock("CCN", "broken").replace("  3  2  0", " 30  2  0", 1) + "$$$$\n")
    out = logos("dock", IA1, "--reference", IA1_LIGAND, *[a for s in smiles for a in ("--smiles", s)],
                "--sdf", sdf, *FAST, "--seed", "3", "--json", "--project", project)
    assert out.returncode == 0, out.stderr
    lines = {x["index"]: x for x in _lines(out.stdout)}
    assert sorted(lines) == [0, 1, 2, 3, 4, 5, 6]
    assert lines[5]["name"] == "acetamide" and lines[5]["smiles"] == "CC(N)=O"
    assert lines[6]["error"] == "two.sdf:14: record 2: RDKit cannot read this molecule"
    assert lines[6]["name"] == "two.sdf record 2"
    for i in (0, 1, 5):
        row = lines[i]
        assert row["score"] < 0 and row["rmsd"] is None  # not the reference molecule
        assert 1 <= len(row["poses"]) <= 2 and row["poses"][0]["score"] == row["score"]
        assert all("M  END" in p["molblock"] and "rmsd" in p for p in row["poses"])
        assert row["checks"]["n_checks"] > 0 and isinstance(row["checks"]["passed"], bool)
        assert isinstance(row["interactions"], list) and isinstance(row["result_id"], int)
    assert "atoms Vina cannot type: B" in lines[2]["error"]
    assert lines[3]["error"] == "C1CC: RDKit cannot read this SMILES"
    assert "atoms Vina cannot type: Hg" in lines[4]["error"]
    # stderr: what preparation removed (never silent), the box, the paper's figure
    assert "removed 5 residue(s)" in out.stderr and "A:SER104" in out.stderr
    assert "box 20.2 × 18.0 × 18.0 Å" in out.stderr and "ligand TQ3 + 5 Å" in out.stderr
    mean = -(lines[0]["score"] + lines[1]["score"] + lines[5]["score"]) / 3
    assert f"mean −Vina {mean:.3f} kcal/mol over 3 docked ligand(s)" in out.stderr
    assert "finished: 3 docked, 4 failed of 7 ligand(s)" in out.stderr

    with Project.open(project) as p:
        (d,) = p.dockings()
        run = p.get_run(d.run_id)
        assert run.task == "dock" and run.status == "finished" and run.seed == 3
        assert d.status == "finished" and d.settings["exhaustiveness"] == 1 and d.settings["seed"] == 3
        assert d.settings["n_poses"] == 2 and d.versions["vina"] and d.box["source"] == "ligand TQ3 + 5 Å"
        assert p.get_input(d.receptor_input_id).data == IA1.read_bytes() and run.input_ids == [d.receptor_input_id]
        assert d.reference["name"] == "TQ3" and "A:SER104" in " ".join(d.report["summary"])
        assert d.summary["docked"] == 3 and d.summary["failed"] == 4 and d.summary["mean_neg_vina"] == round(mean, 3)
        assert sorted(f["message"] for f in d.failures) == sorted(lines[i]["error"] for i in (2, 3, 4, 6))
        rows = {r.id: r for r in p.query_results(ResultQuery(run_id=run.id, limit=None)).rows}
        assert len(rows) == 7
        for i in (0, 1, 5):
            r = rows[lines[i]["result_id"]]
            assert r.valid and r.scores["vina"] == lines[i]["score"] and r.scores["posebusters_ok"] in (0.0, 1.0)
            assert [x.score for x in p.poses(r.id)] == [x["score"] for x in lines[i]["poses"]]
        invalid = {r.smiles: r for r in rows.values() if not r.valid}
        assert invalid["OB(O)c1ccccc1"].reasons == [lines[2]["error"]] and "vina" not in invalid["OB(O)c1ccccc1"].scores
        assert {f["result_id"] for f in d.failures} == {r.id for r in rows.values() if not r.valid}
        before = {r.id: (r.valid, r.reasons, r.scores) for r in rows.values()}
        boron = invalid["OB(O)c1ccccc1"].id
        no_smiles = next(r.id for r in rows.values() if r.smiles is None)
        first_run = run.id

    # the stored results of that run (--run: its valid ones) and two invalid ones by id, with --events
    out = logos("dock", IA1, "--reference", IA1_LIGAND, "--run", first_run, "--results", f"{boron},{no_smiles}",
                *FAST, "--no-checks", "--events", "--project", project)
    assert out.returncode == 0, out.stderr
    events = _lines(out.stdout)
    assert events[0]["type"] == "receptor" and events[-1]["type"] == "finished"
    assert events[0]["box"]["size"] == [20.172, 18.0, 18.0] and events[0]["reference"]["name"] == "TQ3"
    assert any("A:SER104" in line for line in events[0]["summary"]) and events[0]["ligands"] == 5
    assert {e["type"] for e in events} == {"receptor", "progress", "result", "error", "finished"}
    results = [e for e in events if e["type"] == "result"]
    errors = {e["result_id"]: e["message"] for e in events if e["type"] == "error"}
    assert sorted(e["result_id"] for e in results) == sorted(lines[i]["result_id"] for i in (0, 1, 5))
    assert all(e["checks"] is None and e["docking_id"] == events[0]["docking_id"] for e in results)
    assert "atoms Vina cannot type: B" in errors[boron]
    assert errors[no_smiles] == f"result {no_smiles} has no SMILES to dock"
    fin = events[-1]
    assert fin["status"] == "finished" and fin["summary"]["docked"] == 3 and fin["summary"]["failed"] == 2
    with Project.open(project) as p:
        second, first = p.dockings()
        assert second.id == events[0]["docking_id"] and second.run_id == first_run  # not a new run
        assert len(p.runs()) == 1 and sorted(f["result_id"] for f in second.failures) == sorted([boron, no_smiles])
        for e in results:
            poses = p.poses(e["result_id"])
            assert [x.docking_id for x in poses][:len(e["poses"])] == [second.id] * len(e["poses"])
            assert {x.docking_id for x in poses} == {first.id, second.id}
            r = p.get_result(e["result_id"])
            assert r.scores["vina"] == e["score"] and "posebusters_ok" not in r.scores  # no checks this time
        for rid in (boron, no_smiles):  # failed ligands leave their stored rows as they were
            r = p.get_result(rid)
            assert (r.valid, r.reasons, r.scores) == before[rid]


@pytest.mark.slow
def test_redock_the_crystal_ligand_of_1hvr_gives_an_rmsd(tmp_path):
    out = logos("dock", HVR, "--ligand", "XK2", "--redock", "--exhaustiveness", "1", "--poses", "1", "--json",
                "--no-checks", "--project", tmp_path / "redock.logos")
    assert out.returncode == 0, out.stderr
    (row,) = _lines(out.stdout)
    assert row["reference"] is True and row["index"] == -1 and row["name"] == "reference XK2 A:263"
    assert isinstance(row["rmsd"], float) and 0 <= row["rmsd"] < 20 and row["score"] < -5
    assert row["smiles"] == row["docked_smiles"] or row["docked_smiles"]
    assert "removed the reference ligand XK2 A:263" in out.stderr and "CSO67" in out.stderr
    assert f"reference XK2 A:263 redocked: {row['score']:.2f} kcal/mol, RMSD {row['rmsd']:.2f} Å" in out.stderr
    with Project.open(tmp_path / "redock.logos") as p:
        (d,) = p.dockings()
        assert d.reference["rmsd"] == row["rmsd"] and d.reference["score"] == row["score"]
        assert d.reference["pose_molblock"] == row["poses"][0]["molblock"] and d.reference["chain"] == "A"
        assert d.summary["reference"]["rmsd"] == row["rmsd"] and p.count_results() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_input_is_one_line_with_exit_code_2(tmp_path, capsys):
    no_protein = tmp_path / "waters.pdb"
    no_protein.write_text("HETATM    1  O   HOH A 301      10.000  10.000  10.000  1.00 20.00           O\n"
                          "HETATM    2  O   HOH A 302      12.000  10.000  10.000  1.00 20.00           O\nEND\n")
    project = tmp_path / "kept.logos"
    with Project.open(project, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, 1)
        p.add_result(run, f"<MoleculeS>{ASPIRIN}<MoleculeE>", smiles=ASPIRIN, scores={"qed": 0.55})
    digest = project.read_bytes()
    hvr = ["dock", str(HVR), "--smiles", "CCO"]
    cases = [
        (["dock", str(no_protein), "--ligand", "HOH", "--smiles", "CCO"],
         "waters.pdb: no protein in the receptor file"),
        (["dock", str(tmp_path / "missing.pdb"), "--pocket", "A:25", "--smiles", "CCO"],
         "missing.pdb: cannot read the receptor file (No such file or directory)"),
        (hvr + ["--pocket", ","], "1hvr.pdb: the pocket has no residues"),
        (hvr + ["--pocket", "A:25,A:999"], "1hvr.pdb: pocket residue(s) A:999 not in the prepared receptor"),
        (hvr + ["--pocket", "A:41,B:41"], "a side over 40 Å is too large for a docking search"),
        (hvr + ["--ligand", "XK2", "--sdf", str(tmp_path / "none.sdf")], "none.sdf: no such file"),
        (hvr + ["--reference", str(tmp_path / "none.sdf")], "none.sdf: no such file"),
        (hvr + ["--ligand", "ZZZ"], "1hvr.pdb: "),
        (hvr, "choose the pocket with one of --ligand RES, --pocket"),
        (hvr + ["--ligand", "XK2", "--pocket", "A:25"], "(got --ligand and --pocket)"),
        (["dock", str(HVR), "--ligand", "XK2"], "no ligands: give --smiles, --sdf, --results, --run or --redock"),
        (hvr + ["--ligand", "XK2", "--results", "1"], "--results and --run dock stored results: give the project"),
        (hvr + ["--ligand", "XK2", "--run", "1", "--project", str(project)],
         "dock --smiles/--sdf ligands in a separate call"),
        (hvr + ["--pocket", "A:25", "--redock"], "--redock needs a reference ligand"),
        (hvr + ["--ligand", "XK2", "--exhaustiveness", "0"], "exhaustiveness must be between 1 and 64, not 0"),
        (hvr + ["--ligand", "XK2", "--poses", "21"], "poses must be between 1 and 20, not 21"),
        (["dock", str(HVR), "--ligand", "XK2", "--results", "1,99", "--project", str(project)],
         f"{project}: no result 99"),
        (["dock", str(HVR), "--ligand", "XK2", "--results", "1,x", "--project", str(project)],
         "--results: 'x' is not a result id"),
        (["dock", str(HVR), "--ligand", "XK2", "--run", "7", "--project", str(project)], f"{project}: no run 7"),
        (hvr + ["--ligand", "XK2", "--scheduler", f"tcp://127.0.0.1:{_free_port()}"],
         "cannot reach the Dask scheduler at tcp://127.0.0.1:"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        line = _one_line_error(capsys.readouterr().err)
        assert expected in line, (argv, line)
    assert project.read_bytes() == digest  # nothing stored was touched
    # logos generate --dock checks its docking set-up before it samples anything
    for argv, expected in ((["--task", "molecule", "--dock"], "use it with --task ligand, not --task molecule"),
                           (["--task", "ligand", "--dock"], "--dock needs the receptor: give the protein"),
                           (["--task", "ligand", "--input", HVR, "--ligand", "XK2", "--dock", "--poses", "0"],
                            "poses must be between 1 and 20, not 0")):
        out = logos("generate", *argv, "--model", tmp_path / "never-loaded.gguf", timeout=120)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and lines == [f"logos generate: error: {lines[0].split('error: ', 1)[1]}"]
        assert expected in lines[0], out.stderr


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a killed orphan waits there for init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pool_workers(parent: int) -> set[int]:
    """The spawned pool workers among the children of ``parent``: their full command line (read from
    /proc, never cut to a terminal's width) runs ``spawn_main``; the resource tracker does not."""
    out = set()
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(path.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (path.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            out.add(int(path.parent.name))
    return out


def _sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_cancels_the_run_and_stops_the_workers(tmp_path):
    """Ctrl+C cancels, also in a process started with SIGINT ignored (what a shell without job
    control gives a command it runs in the background, as CI scripts do: Python then keeps SIGINT
    ignored, and logos dock went on docking)."""
    project = tmp_path / "cancel.logos"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "dock", str(HVR), "--ligand", "XK2", "--redock",
                             "--smiles", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "--exhaustiveness", "16", "--cpus", "2",
                             "--events", "--project", str(project)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_ignored)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["type"] == "receptor", first
        assert json.loads(proc.stdout.readline())["type"] == "progress"
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:  # both workers are docking
            workers = _pool_workers(proc.pid)
            time.sleep(0.2)
        assert len(workers) == 2
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs: logos dock prints its stacks on SIGUSR1
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            proc.kill()
            for pid in workers:  # a live worker would hold the pipes open
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"logos dock did not stop 30 s after Ctrl+C; its stacks:\n{err[-6000:]}") from None
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert took < 10 and "Traceback" not in err and "logos dock: interrupted" in err
    last = json.loads(out.splitlines()[-1])
    assert last["type"] == "finished" and last["status"] == "cancelled"
    assert not [pid for pid in workers if _running(pid)]  # killed, not left docking
    with Project.open(project) as p:
        (d,) = p.dockings()
        assert d.status == "cancelled" and d.error == "interrupted" and d.finished_at is not None
        assert p.get_run(d.run_id).status == "cancelled"


def test_dock_on_a_dask_scheduler(tmp_path):
    from tests.fixtures.required import require_module

    distributed = require_module("distributed")

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        out = logos("dock", IA1, "--reference", IA1_LIGAND, "--smiles", "c1ccccc1O", "--smiles", "CC(=O)N",
                    "--smiles", "C1#CC#CC#C1", "--exhaustiveness", "1", "--poses", "2", "--no-checks", "--json",
                    "--scheduler", cluster.scheduler_address, "--project", tmp_path / "dask.logos")
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
    assert out.returncode == 0, out.stderr
    rows = sorted(_lines(out.stdout), key=lambda r: r["index"])
    assert [r["index"] for r in rows] == [0, 1, 2] and all(r["score"] < 0 for r in rows[:2])
    # parsed, but no 3D structure exists for it: its reason, and the others go on
    assert rows[2]["error"] == "C1#CC#CC#C1: RDKit could not embed this molecule in 3D"
    rows = rows[:2]
    assert f"on the Dask scheduler at {cluster.scheduler_address}" in out.stderr
    with Project.open(tmp_path / "dask.logos") as p:
        (d,) = p.dockings()
        assert d.settings["scheduler"] == cluster.scheduler_address and d.settings["cpus"] == 2
    assert {r["worker"] for r in rows} <= worker_pids  # the cluster's worker docked them, not a local pool


def test_generate_ligands_then_dock_them(tmp_path):
    from engine import paths

    model = paths.bundled_models()[0]
    project = tmp_path / "gen.logos"
    # the shipped model's 3 samples of seed 6: two valid molecules and one invalid (about a third of
    # its ligands are valid; seed 5 gave none with the model of 5 December, night)
    out = logos("generate", "--task", "ligand", "--input", HVR, "--ligand", "XK2", "-n", "3", "--seed", "6",
                "--model", model, "--threads", "2", "--max-new-tokens", "80", "--json", "--project", project,
                "--dock", *FAST)
    assert out.returncode == 0, out.stderr
    lines = _lines(out.stdout)
    assert len(lines) == 3
    valid = [x for x in lines if x["valid"]]
    assert valid, lines
    for x in valid:
        if "dock_error" in x:
            continue
        assert x["scores"]["vina"] < 0 and x["poses"][0]["score"] == x["scores"]["vina"]
        assert "M  END" in x["poses"][0]["molblock"] and isinstance(x["result_id"], int)
    assert any("dock_error" not in x for x in valid)
    for x in lines:
        if not x["valid"]:
            assert "poses" not in x and "vina" not in (x["scores"] or {})
    assert "removed the reference ligand XK2 A:263" in out.stderr and "mean −Vina" in out.stderr
    with Project.open(project) as p:
        (d,) = p.dockings()
        run = p.get_run(d.run_id)
        assert run.task == "ligand" and d.status == "finished" and d.box["source"].startswith("ligand XK2 A:263")
        for x in valid:
            r = p.get_result(x["result_id"])
            if "dock_error" in x:
                assert any(f["result_id"] == r.id for f in d.failures)
            else:
                assert r.scores["vina"] == x["scores"]["vina"] and len(p.poses(r.id)) == len(x["poses"])
    # the poses of the ligand-design run, exported as SDF: score, RMSD and checks on every pose
    from rdkit import Chem

    sdf = tmp_path / "poses.sdf"
    out = logos("project", "export", project, "--format", "sdf", "--poses", "all", "-o", sdf)
    assert out.returncode == 0, out.stderr
    mols = [m for m in Chem.SDMolSupplier(str(sdf)) if m is not None]
    docked = [x for x in valid if "dock_error" not in x]
    assert len(mols) == sum(len(x["poses"]) for x in docked)
    for m in mols:
        props = m.GetPropsAsDict()
        assert float(props["vina_score"]) < 0
        assert "vina_rmsd" not in props  # designed ligands are other molecules than XK2: no RMSD to it
        assert str(props["posebusters_passed"]) in ("1", "0")
