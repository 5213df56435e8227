"""CSV cells that could start a spreadsheet formula are neutralised (numbers stay numbers), and
exports go through a private temporary file and an atomic rename."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from engine.store import Project, ResultQuery
from engine.store import export as export_mod
from engine.store.errors import ProjectError
from engine.store.export import export_file, export_to_string, import_file

DANGEROUS = ["=HYPERLINK(\"http://example.invalid\",\"x\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\tcmd", "\r=1"]


@pytest.fixture
def hostile(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        run = p.start_run("molecule", "=cmd|' /C calc'!A0", {"temperature": 1.0}, 1)
        rids = []
        for i, text in enumerate(DANGEROUS):
            rids.append(p.add_result(run, f"<MoleculeS>CCO<MoleculeE>", smiles="CCO", valid=False,
                                     reasons=[text], scores={"vina": -7.25 - i, "delta": -0.5}, ppl=1.5))
            p.update_result(rids[-1], notes=text, tags=["-neg", "@at"])
        p.finish_run(run, "finished")
    return path, rids


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_formula_cells_are_neutralised_and_numbers_kept(hostile):
    path, rids = hostile
    with Project.open(path) as p:
        text, report = export_to_string(p, "csv", ResultQuery(limit=None))
    rows = {int(r["result_id"]): r for r in _rows(text)}
    for rid, danger in zip(rids, DANGEROUS):
        r = rows[rid]
        assert r["notes"] == "'" + danger and r["reasons"] == "'" + danger
        assert r["tags"] == "'-neg,@at"
        assert r["prompt"] == "'=cmd|' /C calc'!A0"
        assert float(r["score_vina"]) < 0 and r["score_vina"].startswith("-")  # a number, not text
        assert r["score_delta"] == "-0.5"
    for r in rows.values():  # no cell of any row starts a formula
        for key, cell in r.items():
            if key.startswith("score_") or key == "ppl" or not cell:
                continue
            assert not cell.startswith(export_mod.FORMULA_START), (key, cell)


def test_a_neutralised_csv_imports_back_as_it_was(hostile, tmp_path):
    path, rids = hostile
    out = tmp_path / "hostile.csv"
    with Project.open(path) as p:
        export_file(p, out, query=ResultQuery(limit=None))
    target = tmp_path / "back.logos"
    with Project.open(target, create=True) as q:
        import_file(q, out)
        notes = {r.notes for r in q.query_results(ResultQuery(limit=None)).rows if r.notes}
    assert set(DANGEROUS) - {"\r=1", "\tcmd"} <= {n for n in notes}


def test_export_goes_through_a_private_temporary_file(filled_project, tmp_path):
    path, _ = filled_project
    out = tmp_path / "hits.csv"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    # a link planted at the old predictable temporary name must not be written through
    os.symlink(victim, tmp_path / ".hits.csv.part")
    with Project.open(path) as p:
        export_file(p, out)
    assert victim.read_text() == "keep me"
    assert out.read_text(encoding="utf-8").startswith("result_id,")
    assert not out.is_symlink()
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(x.name for x in tmp_path.iterdir() if x.name.endswith(".part")) == [".hits.csv.part"]


def test_a_failed_export_leaves_the_old_file_and_no_temporary(filled_project, tmp_path, monkeypatch):
    path, _ = filled_project
    out = tmp_path / "hits.csv"
    out.write_text("the previous export")
    os.chmod(out, 0o640)

    def boom(project, fh, fmt, query=None, poses=None):
        fh.write("half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_mod, "export_results", boom)
    with Project.open(path) as p:
        with pytest.raises(ProjectError, match="hits.csv: cannot write the export: No space left on device"):
            export_file(p, out)
    assert out.read_text() == "the previous export"
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []
    monkeypatch.undo()
    with Project.open(path) as p:
        export_file(p, out)
    assert out.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its permissions
    assert Path(out).read_text(encoding="utf-8").startswith("result_id,")
