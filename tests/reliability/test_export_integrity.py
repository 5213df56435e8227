"""Exported rows read back as the same rows, whatever bytes a model generated.

Found by the offline-session test: a tiny model's raw output holds carriage returns and control
characters; the CSV export must quote them so that a CSV reader sees exactly one row per result
(a spreadsheet that splits a row loses the provenance columns of that row)."""

from __future__ import annotations

import csv
import io

NASTY = ["C\rC", "CC\nO", "C,C;\"O\"", "N\r\nC", "\x0bC\x0c", "日本\u2028C", "<MoleculeS>C\x00<MoleculeE>"]


def test_csv_export_round_trips_records_with_control_characters(tmp_path):
    from engine.store.export import export_to_string
    from engine.store.project import Project

    with Project.open(tmp_path / "p.logos", create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, 1)
        for rec in NASTY:
            p.add_result(run, rec, valid=False, reasons=["fuzz"])
        p.finish_run(run)
        text, report = export_to_string(p, "csv")
    assert report.written == len(NASTY)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(NASTY), f"{len(rows)} rows read back from {len(NASTY)} exported"
    assert [r["record"] for r in rows] == NASTY
