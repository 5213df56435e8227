"""``logos project info|export|import`` through engine.cli.main, and through the real console script."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from engine.store.schema import HEAD_REVISION
from tests.engine.store.conftest import MOLECULES, UBIQUITIN

ROOT = Path(__file__).resolve().parents[3]


def test_info_lists_counts_tasks_scores_and_runs(filled_project, capsys):
    path, ids = filled_project
    assert main(["project", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"Schema        {HEAD_REVISION} (this program: {HEAD_REVISION})" in out
    assert f"{len(ids['results']) + 2} results (" in out and "2 runs" in out and "1 training runs" in out
    assert "molecule: 7" in out and "binding_site: 1" in out and "qed" in out
    assert "run 2" in out and "failed" in out


def test_info_json(filled_project, capsys):
    path, ids = filled_project
    assert main(["project", "info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["results"] == len(ids["results"]) + 2 and data["read_only"] is False
    assert data["recent_runs"][0]["task"] == "binding_site"


def test_export_csv_to_stdout_with_where(filled_project, capsys):
    path, _ = filled_project
    assert main(["project", "export", str(path), "--format", "csv", "--where", "task=molecule",
                 "--where", "score:qed>=0.5", "--sort", "score:qed", "--desc"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [float(r["score_qed"]) for r in rows] == [0.7, 0.6, 0.55, 0.5]
    assert "wrote 4 row(s) as CSV" in captured.err


def test_export_sdf_and_fasta_to_files(filled_project, tmp_path, capsys):
    from Bio import SeqIO
    from rdkit import Chem

    path, _ = filled_project
    out = tmp_path / "valid.sdf"
    assert main(["project", "export", str(path), "-f", "sdf", "-w", "valid=1", "-o", str(out)]) == 0
    mols = list(Chem.SDMolSupplier(str(out)))
    assert {Chem.MolToSmiles(m) for m in mols} >= set(MOLECULES.values())
    assert "skipped 1 (no SMILES)" in capsys.readouterr().err  # the protein row has no SMILES
    fa = tmp_path / "seqs.fasta"
    assert main(["project", "export", str(path), "-f", "fasta", "-o", str(fa)]) == 0
    assert [str(r.seq) for r in SeqIO.parse(fa, "fasta")] == [UBIQUITIN]


def test_import_then_info(filled_project, tmp_path, capsys):
    path, _ = filled_project
    src = tmp_path / "in.csv"
    src.write_text("smiles,score\nCCO,1.5\nC1CC(,2\n")
    assert main(["project", "import", str(path), str(src)]) == 0
    assert "imported 2 row(s)" in capsys.readouterr().out
    assert main(["project", "info", str(path)]) == 0
    assert "import: 2" in capsys.readouterr().out


def test_user_errors_are_one_line_with_exit_2(tmp_path, capsys, filled_project):
    path, _ = filled_project
    not_db = tmp_path / "notes.logos"
    not_db.write_text("hello\n")
    cases = [
        (["project", "info", str(not_db)], f"{not_db}: not a LOGOS project"),
        (["project", "info", str(tmp_path / "absent.logos")], "no such project file"),
        (["project", "export", str(path), "-f", "csv", "-w", "colour=red"], "cannot read --where 'colour=red'"),
        (["project", "export", str(path), "-f", "csv", "--sort", "colour"], "cannot sort on 'colour'"),
        (["project", "import", str(path), str(tmp_path / "nope.csv")], "cannot read the file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("logos project: error: ") and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_exports_and_reports_errors(filled_project, tmp_path):
    path, _ = filled_project
    exe = shutil.which("logos", path=str(Path(sys.executable).parent))
    argv = [exe] if exe else [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())"]
    ok = subprocess.run(argv + ["project", "export", str(path), "-f", "csv", "-w", "valid=0"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "C1CC(" in ok.stdout and "wrote 1 row(s)" in ok.stderr
    bad = subprocess.run(argv + ["project", "info", str(tmp_path / "x.logos")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"logos project: error: {tmp_path / 'x.logos'}: no such project file"
