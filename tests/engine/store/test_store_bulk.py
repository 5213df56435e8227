"""Bulk insertion (Project.add_results with many rows): the same rows as one result at a time,
the schema (indexes, triggers, substring index) intact afterwards, and all or nothing on error."""

from __future__ import annotations

import gc
import math
import numbers
import random
import sqlite3
from pathlib import Path

import pytest

from engine.store import Project, ProjectError, ResultQuery, project as project_module, textindex
from tests.engine.store.conftest import MOLECULES, UBIQUITIN, dump_sql

DATA = Path(__file__).resolve().parents[2] / "data"


def _rows(n: int, seed: int = 1) -> list[dict]:
    """Real molecules (MOSES) and protein fragments with every kind of value add_results takes."""
    import numpy as np

    rnd = random.Random(seed)
    smiles = (DATA / "training" / "moses_train_head600.smi").read_text().split()
    odd_scores = [{"qed": float("nan")}, {"qed": float("inf"), "sa": -float("inf")}, {"n": 3, "flag": True},
                  {"label": "lead", "x": None}, {1: 0.5, "y": np.float64(0.25)}, {"z": np.int64(7)}, {},
                  {"mixed": [1, 2]}]
    rows = []
    for i in range(n):
        kind = rnd.random()
        row = {"record": f"<MoleculeS>{rnd.choice(smiles)}<MoleculeE>", "valid": rnd.random() < 0.8}
        if kind < 0.75:
            smi = rnd.choice(smiles)
            row.update(record=f"<MoleculeS>{smi}<MoleculeE>", smiles=smi,
                       objects=[{"kind": "molecule", "smiles": smi, "name": "é\u2028"}])
        elif kind < 0.9:
            start = rnd.randrange(0, 40)
            row.update(record=f"<ProteinS>{UBIQUITIN[start:]}<ProteinE>", sequence=UBIQUITIN[start:],
                       cif="data_x\n" if rnd.random() < 0.3 else None)
        else:
            row.update(smiles="", sequence="", objects={"note": "empty strings are stored as missing"})
        if rnd.random() < 0.85:
            row["scores"] = {"qed": round(rnd.random(), 4), "vina": -12 * rnd.random(),
                             "sa": rnd.randrange(1, 10)}
        else:
            row["scores"] = rnd.choice(odd_scores)
        if not row["valid"]:
            row["reasons"] = rnd.sample(["RDKit: valence", "unclosed ring", 42], rnd.randrange(1, 3))
        row["ppl"] = rnd.choice([None, float("nan"), 2, rnd.random() * 10, np.float32(1.5)])
        if rnd.random() < 0.3:
            row["tags"] = rnd.sample(["hit", "keep", "later", "hit"], 2)
        if rnd.random() < 0.2:
            row["notes"] = rnd.choice(["Nice scaffold", "100% pure", "ß"])
        if rnd.random() < 0.2:
            row["rating"] = rnd.choice([0, 3, 5])
        rows.append(row)
    return rows


def _contents(path: Path) -> dict[str, list]:
    """Every stored value of the result tables (created_at left out: it is the time of writing)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {
            "results": con.execute("SELECT id, run_id, idx, task, smiles, sequence, valid, ppl, notes, rating, "
                                   "parent_id FROM results ORDER BY id").fetchall(),
            "payloads": con.execute("SELECT * FROM result_payloads ORDER BY result_id").fetchall(),
            "scores": con.execute("SELECT result_id, name, value, typeof(value) FROM result_scores "
                                  "ORDER BY result_id, name").fetchall(),
            "tags": con.execute("SELECT * FROM result_tags ORDER BY result_id, tag").fetchall(),
        }
        for table in textindex.TABLES:  # what the substring index holds, term by term
            con.execute(f"CREATE VIRTUAL TABLE temp.v_{table} USING fts5vocab(main, {table}, 'instance')")
            out[table] = con.execute(
                f"SELECT term, doc, offset FROM temp.v_{table} ORDER BY 1, 2, 3").fetchall()
        return out
    finally:
        con.close()


def _schema(path: Path) -> set:
    """Indexes, triggers and the substring index's tables, with their SQL. (Tables are compared by
    name only: Alembic's batch copy writes a table's constraints in no fixed order.)"""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    finally:
        con.close()
    return {(t, name, tbl, sql if t != "table" or textindex.is_index_table(name) else None)
            for t, name, tbl, sql in rows}


def _new(path: Path) -> tuple[Project, int]:
    p = Project.open(path, create=True)
    return p, p.start_run("molecule", "<MoleculeS>", {"temperature": 1.0}, 7)


def test_bulk_rows_equal_one_at_a_time(tmp_path):
    rows = _rows(700)
    assert len(rows) > project_module.BULK_ROWS * 4
    bulk, single = tmp_path / "bulk.logos", tmp_path / "single.logos"
    p, run = _new(bulk)
    with p:
        first = p.add_results(run, rows[:3])  # a small batch, then the bulk path, then a parent link
        ids = first + p.add_results(run, rows[3:650])
        ids += p.add_results(run, [dict(r, parent_id=ids[i]) for i, r in enumerate(rows[650:])])
        assert ids == list(range(1, 701))
    p, run = _new(single)
    with p:
        for i, row in enumerate(rows):
            if i >= 650:
                row = dict(row, parent_id=i - 650 + 1)
            assert p.add_results(run, [row]) == [i + 1]  # the engine's path: a transaction per row
    got, want = _contents(bulk), _contents(single)
    for table in want:
        assert got[table] == want[table], table
    assert len(got["scores"]) > 1500 and len(got["tags"]) > 100 and len(got[textindex.SMILES_TABLE]) > 10_000
    assert _schema(bulk) == _schema(single)
    # the odd values came through as add_result stores them
    with Project.open(bulk) as p:
        every = {r.id: r for r in p.query_results(ResultQuery(limit=None)).rows}
    for i, row in enumerate(rows):
        got_row = every[i + 1]
        assert got_row.smiles == (row.get("smiles") or None)
        assert got_row.sequence == (row.get("sequence") or None)
        scores = row.get("scores") or {}
        assert set(got_row.scores) == {str(k) for k in scores}
        for k, v in scores.items():
            stored = got_row.scores[str(k)]
            if isinstance(v, float) and not math.isfinite(v):
                assert stored is None
            elif isinstance(v, (list, dict)):
                assert stored == str(v)
            else:
                assert stored == v
    # the indexed score rows: exactly the finite numbers, numpy's included (not true/false, text,
    # NaN, infinity)
    want_scores = sorted(
        (i + 1, str(k), float(v)) for i, row in enumerate(rows) for k, v in (row.get("scores") or {}).items()
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v))
    assert sorted((rid, name, float(value)) for rid, name, value, _ in got["scores"]) == want_scores
    assert {kind for *_, kind in got["scores"]} == {"real"}  # the column is FLOAT


def test_bulk_insert_keeps_every_index_and_the_file_sound(tmp_path):
    p, run = _new(tmp_path / "b.logos")
    with p:
        before = _schema(p.path)
        assert sum(1 for t, *_ in before if t == "trigger") == 6
        assert sum(1 for t, *_ in before if t == "index") >= 12
        p.add_results(run, _rows(2000))
        assert gc.isenabled()
        assert _schema(p.path) == before
        assert p.integrity_check() == ["ok"]
        with p.session(write=True) as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            for table in textindex.TABLES:
                conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -32768  # restored after the bulk
        # the triggers are back: a single row after the bulk is indexed by them
        rid = p.add_result(run, "<MoleculeS>ClC(Cl)(Cl)Br<MoleculeE>", smiles="ClC(Cl)(Cl)Br")
        assert [r.id for r in p.query_results(ResultQuery(smiles_contains="(Cl)Br", limit=None)).rows] == [rid]


@pytest.mark.parametrize("failure", ["bad parent", "bad rating", "during the index fill",
                                     "re-creating a trigger"])
def test_failed_bulk_insert_leaves_the_file_unchanged(tmp_path, monkeypatch, failure):
    path = tmp_path / "f.logos"
    p, run = _new(path)
    with p:
        p.add_results(run, _rows(300, seed=2))
        p.checkpoint()
        before, schema = dump_sql(path), _schema(path)
        rows = _rows(1000, seed=3)
        if failure == "bad parent":
            rows[-1]["parent_id"] = 10**6  # a foreign key that points nowhere: found by the last row
        elif failure == "bad rating":
            rows[500]["rating"] = 9
        elif failure == "during the index fill":
            monkeypatch.setattr(textindex, "fill_sql", lambda *a: "INSERT INTO no_such_table VALUES (1)")
        else:
            broken = {name: sql.replace("BEGIN", "BEGIN SELEC 1;")  # a syntax error
                      for name, sql in textindex.insert_triggers().items()}
            monkeypatch.setattr(textindex, "insert_triggers", lambda: broken)
        with pytest.raises((ProjectError, ValueError)):
            p.add_results(run, rows)
        assert gc.isenabled()  # turned off while the rows were built and stored, on again
        monkeypatch.undo()
        assert dump_sql(path) == before and _schema(path) == schema
        assert p.integrity_check() == ["ok"]
        # and the file takes the same rows afterwards, triggers and all
        rows = _rows(1000, seed=3)
        ids = p.add_results(run, rows)
        assert len(ids) == 1000 and ids[0] == 301
        smi = MOLECULES["caffeine"]
        rid = p.add_result(run, f"<MoleculeS>{smi}<MoleculeE>", smiles=smi)
        want = [i for i, r in zip(ids, rows) if r.get("smiles") and "n2C)n(C)c1" in r["smiles"]] + [rid]
        found = p.query_results(ResultQuery(smiles_contains="n2C)n(C)c1", limit=None)).rows
        assert [r.id for r in found] == want


def test_a_second_connection_reads_the_old_state_during_a_bulk_insert(tmp_path, monkeypatch):
    """The triggers are dropped only inside the bulk transaction: a reader never sees them gone."""
    path = tmp_path / "r.logos"
    p, run = _new(path)
    seen = {}
    real_fill = textindex.fill_sql

    def fill_and_look(*args):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        seen["triggers"] = con.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0]
        seen["rows"] = con.execute("SELECT count(*) FROM results").fetchone()[0]
        con.close()
        return real_fill(*args)

    with p:
        p.add_results(run, _rows(100, seed=4))
        monkeypatch.setattr(textindex, "fill_sql", fill_and_look)
        p.add_results(run, _rows(500, seed=5))
    assert seen == {"triggers": 6, "rows": 100}


@pytest.mark.parametrize("case", ["self", "earlier in the batch", "stored", "later in the batch", "missing", "zero",
                                  "text id", "no parent"])
def test_bulk_checks_parents_as_sqlite_does_row_by_row(tmp_path, case):
    """A bulk insert checks parent_id itself (SQLite's foreign key checks are off for it); a batch
    of one row is checked by SQLite. Both accept and refuse the same parents."""
    n = project_module.BULK_ROWS + 10

    def parents(first: int, i: int):
        return {"self": first + i, "earlier in the batch": first + max(0, i - 1), "stored": 2,
                "later in the batch": first + i + 1, "missing": 10**6, "zero": 0, "text id": "2",
                "no parent": None}[case]

    outcomes = []
    for size in (1, n):
        p, run = _new(tmp_path / f"{size}.logos")
        with p:
            p.add_results(run, [{"record": "a"}] * 3)
            rows = [{"record": f"r{i}", "parent_id": parents(4, i)} for i in range(size)]
            try:
                ids = p.add_results(run, rows)
                outcomes.append("stored")
                assert ids[0] == 4
            except ProjectError as exc:
                assert "FOREIGN KEY constraint failed" in str(exc)
                outcomes.append("refused")
                assert p.count_results() == 3
            with p.session() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] == ("refused" if case in ("later in the batch", "missing", "zero") else "stored")
