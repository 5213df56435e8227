"""Project store benchmark: insert 100k results, then filtered, sorted page queries over them.

Goals (issue #5): inserting 100k results under 5 s; a filtered, sorted page query under 50 ms.
Run: ``.venv/bin/python -m pytest tests/benchmarks/test_bench_store.py -s``. Prints every figure
side by side with its goal, the ratio measured/goal and the load average (1 min) when it was
taken; fails if a goal is missed. The SMILES are 100k real molecules (the MOSES test split,
molsets 0.3.1) when the data package is there, otherwise built from 8 scaffolds and 10 tails.

Figures:
* insert: ``add_results`` with one call per run (4 runs of 25k rows: 4 transactions, the way an
  import stores a file), the same rows 5k per call (20 transactions), and the floor: bare
  ``sqlite3`` ``executemany`` of the same pre-encoded rows into the same schema, 25k per
  transaction, scores and substring index filled the same way. add_results and the floor run in
  turn, 3 times each; the best is the figure, every try is printed (on a shared 2-core machine
  one try can take 30-50 % longer than the next);
* one ``add_result`` per row (the engine's path: a durable transaction each);
* pages: first page, a deep page by offset and the same page by key (``ResultQuery.after``);
* substring search: the plain scan, the trigram index, and what ``query_results`` picks.
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import time
from contextlib import contextmanager

from engine.store import Project, ResultQuery, queries, textindex

N_RESULTS = 100_000
INSERT_REPEATS = 3
INSERT_GOAL_S = 5.0
QUERY_GOAL_MS = 50.0

# real molecules (canonical SMILES) used as scaffolds when the MOSES data package is missing
SCAFFOLDS = ["CC(=O)Oc1ccccc1C(=O)O", "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
             "CC(=O)Nc1ccc(O)cc1", "O=C(O)c1ccccc1O", "c1ccc2ccccc2c1", "CN1CCC[C@H]1c1cccnc1",
             "CC12CCC3c4ccc(O)cc4CCC3C1CCC2O"]
TAILS = ["", "C", "CC", "O", "N", "F", "Cl", "OC", "C(=O)N", "c1ccncc1"]
TASKS = ["molecule", "ligand_design", "retrosynthesis", "forward_reaction"]


def _moses(n: int) -> list[str] | None:
    from engine import datasets

    try:
        text = datasets.read_text("molsets", "moses/dataset/data/test.csv.gz")
    except datasets.DatasetMissing:
        return None
    out = [ln.split(",")[0] for ln in text.splitlines()[1:n + 1]]
    return out if len(out) == n else None


def _rows(n: int, seed: int = 0, smiles: list[str] | None = None) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        smi = smiles[i] if smiles else rnd.choice(SCAFFOLDS) + rnd.choice(TAILS)
        valid = rnd.random() < 0.8
        rows.append({
            "record": f"<MoleculeS>{smi}<MoleculeE>",
            "objects": [{"kind": "molecule", "smiles": smi}],
            "smiles": smi if valid else None,
            "valid": valid,
            "reasons": [] if valid else ["RDKit: explicit valence for atom # 3 N, 4, is greater than permitted"],
            "scores": {"qed": round(rnd.random(), 4), "sa": round(1 + 9 * rnd.random(), 3),
                       "vina": round(-12 * rnd.random(), 2)},
            "ppl": round(1 + 20 * rnd.random(), 4),
        })
    return rows


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _best_ms(fn, repeat: int = 7) -> tuple[float, float, float, object]:
    """(best wall ms, median wall ms, best CPU ms of this process, last result)."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return min(times), statistics.median(times), min(cpu), out


@contextmanager
def _patched(obj, **values):
    old = {k: getattr(obj, k) for k in values}
    for k, v in values.items():
        setattr(obj, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


def _scan_only():
    """Substring filters without the trigram index (the plain scan of every row)."""
    return _patched(textindex, available=lambda: False)


def _index_always():
    """Substring filters through the index even for common patterns."""
    return _patched(queries, CANDIDATES_MIN=10**9)


def _insert(path, batches, per_call: int) -> tuple[float, float]:
    with Project.open(path, create=True) as p:
        runs = {task: p.start_run(task, "<MoleculeS>", {"temperature": 1.2}, k)
                for k, (task, _) in enumerate(batches)}
        c0, t0 = time.process_time(), time.perf_counter()
        for task, rows in batches:
            for start in range(0, len(rows), per_call):
                p.add_results(runs[task], rows[start:start + per_call])
        return time.perf_counter() - t0, time.process_time() - c0


def _raw_sqlite_insert(path, batches, per_txn: int) -> tuple[float, float]:
    """The floor: the same rows written with plain sqlite3 into an identical new project file
    (JSON already encoded, ids given), ``per_txn`` rows per transaction, synchronous=FULL, same
    cache; the scores and the substring index filled by one statement per transaction each, as
    add_results does."""
    from engine.store import db
    from engine.store.project import _INSERT_SCORES

    Project.open(path, create=True).close()
    prepared = []
    next_id = 1
    for k, (task, rows) in enumerate(batches):
        for i, r in enumerate(rows):
            rid = next_id + i
            prepared.append(((rid, k + 1, i, task, r["smiles"], None, int(r["valid"]), r["ppl"], None, None, None,
                              "2026-11-26 00:00:00.000000"),
                             (rid, r["record"], db.dumps(r["objects"]), None, db.dumps(r["reasons"]),
                              db.dumps(r["scores"]))))
        next_id += len(rows)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous = FULL")
    con.execute("PRAGMA cache_size = -32768")
    con.execute("PRAGMA foreign_keys = OFF")  # no runs rows in this file; the floor skips FK checks
    triggers = textindex.insert_triggers()
    c0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(prepared), per_txn):
        chunk = prepared[start:start + per_txn]
        con.execute("BEGIN IMMEDIATE")
        for name in triggers:
            con.execute(f"DROP TRIGGER {name}")
        con.executemany("INSERT INTO results (id, run_id, idx, task, smiles, sequence, valid, ppl, notes, rating, "
                        "parent_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", [c[0] for c in chunk])
        con.executemany("INSERT INTO result_payloads (result_id, record, objects, cif, reasons, scores) "
                        "VALUES (?,?,?,?,?,?)", [c[1] for c in chunk])
        con.execute(_INSERT_SCORES, (chunk[0][0][0],))
        for sql in textindex.fill_from_id_sql():
            con.execute(sql, (chunk[0][0][0],))
        for sql in triggers.values():
            con.execute(sql)
        con.execute("COMMIT")
    out = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return out


def _query_figures(p: Project, add) -> None:
    """Page and search timings on a filled project; each figure handed to add()."""

    def timed(name, q, goal=True, expect_rows=50, count=True):
        """The page alone (goal) and, beside it, the page with the count of every match."""
        q = ResultQuery(**{**q.__dict__, "count_total": False})
        best, median, cpu, page = _best_ms(lambda: p.query_results(q))
        assert len(page.rows) == expect_rows, (name, len(page.rows))
        value = f"{best:.1f} ms (median {median:.1f}, cpu {cpu:.1f})"
        if count:
            q_count = ResultQuery(**{**q.__dict__, "count_total": True})
            c_best, _, _, c_page = _best_ms(lambda: p.query_results(q_count))
            assert [r.id for r in c_page.rows] == [r.id for r in page.rows]
            name = f"{name} [{c_page.total} match]"
            value = f"{best:.1f} ms / with count {c_best:.1f} ms"
        add(name, value, f"< {QUERY_GOAL_MS:.0f} ms" if goal else "-", best / QUERY_GOAL_MS if goal else None)
        return page

    # ---- pages: first, deep by offset, deep by key
    top = ResultQuery(task="ligand_design", valid=True, sort="score:qed", descending=True, limit=50)
    timed("page 1: task+valid, sort score:qed desc", top)
    by_offset = timed("page 101 (offset 5000)", ResultQuery(**{**top.__dict__, "offset": 5000}), goal=False,
                      count=False)
    key = p.query_results(ResultQuery(**{**top.__dict__, "offset": 4950, "count_total": False})).next_after
    by_key = timed("page 101 by key (after the last row of page 100)",
                   ResultQuery(**{**top.__dict__, "after": key}), count=False)
    assert [r.id for r in by_key.rows] == [r.id for r in by_offset.rows]
    newest = ResultQuery(sort="created_at", descending=True, limit=50)
    far = timed("no filter, sort created_at desc, offset 90000",
                ResultQuery(**{**newest.__dict__, "offset": 90_000}), goal=False, count=False)
    key = p.query_results(ResultQuery(**{**newest.__dict__, "offset": 89_950,
                                         "count_total": False})).next_after
    near = timed("   same page by key", ResultQuery(**{**newest.__dict__, "after": key}), count=False)
    assert [r.id for r in near.rows] == [r.id for r in far.rows]

    # ---- other filters (as before)
    timed("valid + qed 0.5-0.9 + vina <= -6, sort ppl",
          ResultQuery(valid=True, scores={"qed": (0.5, 0.9), "vina": (None, -6)}, sort="ppl", limit=50))
    timed("task + ppl < 5, sort ppl", ResultQuery(task="molecule", ppl=(None, 5.0), sort="ppl", limit=50))
    timed("no filter, sort created_at desc", newest)
    timed("text 'Cl' in record/SMILES/notes, sort smiles (no index on text)",
          ResultQuery(text="Cl", sort="smiles", limit=50))

    # ---- substring search: scan, index, and the automatic choice (the goal: what users get)
    every = p.count_results()
    for pattern in ["c1ccc2[nH]ccc2c1", "c1ccncc1", "C(=O)N", "Cl"]:
        n = None
        for count in (False, True):
            q = ResultQuery(smiles_contains=pattern, sort="id", descending=True, limit=50, count_total=count)
            with _scan_only():
                s_best, _, _, s_page = _best_ms(lambda: p.query_results(q))
            with _index_always():
                i_best, _, _, i_page = _best_ms(lambda: p.query_results(q))
            a_best, _, _, a_page = _best_ms(lambda: p.query_results(q))
            assert [r.id for r in s_page.rows] == [r.id for r in i_page.rows] == [r.id for r in a_page.rows]
            if count:
                n = s_page.total
                assert n == i_page.total == a_page.total
            with p.session() as conn:
                route = "index" if queries.text_candidates(conn, q).get("smiles") is not None else "scan"
            name = (f"SMILES contains {pattern!r}{f' [{n} of {every}]' if n is not None else ''}, "
                    f"sort id desc, {'with count' if count else 'page'}")
            index = f"{i_best:.1f}" if textindex.usable_pattern(pattern) else "(< 3 chars)"
            add(name, f"scan {s_best:.1f} / index {index} / auto ({route}) {a_best:.1f} ms",
                "-" if count else f"< {QUERY_GOAL_MS:.0f} ms", None if count else a_best / QUERY_GOAL_MS)


def test_bench_store(tmp_path):
    per_task = N_RESULTS // len(TASKS)
    moses = _moses(N_RESULTS)
    batches = [(task, _rows(per_task, seed=k, smiles=moses[k * per_task:(k + 1) * per_task] if moses else None))
               for k, task in enumerate(TASKS)]
    lines = []  # (name, value, goal, ratio or None, load average)

    def add(name, value, goal="-", ratio=None):
        lines.append((name, value, goal, ratio, _load()))

    # ---- inserts: add_results and the floor in turn, INSERT_REPEATS times each into new files;
    # the best of each is the figure (the least disturbed by other work on the machine), the
    # median and every try are printed beside it
    path = tmp_path / "bench.logos"
    tries, floor = [], []
    for k in range(INSERT_REPEATS):
        target = path if k == 0 else tmp_path / f"insert{k}.logos"
        tries.append(_insert(target, batches, per_task))
        floor.append(_raw_sqlite_insert(tmp_path / f"raw{k}.logos", batches, per_task))
        if k:
            target.unlink()
    insert_s, insert_cpu = min(tries)
    raw_s, raw_cpu = min(floor)
    every = " ".join(f"{w:.2f}" for w, _ in tries)
    add(f"insert 100k results: add_results, one call per run ({len(TASKS)} x {per_task // 1000}k rows), "
        f"best of {INSERT_REPEATS}", f"{insert_s:.2f} s (cpu {insert_cpu:.2f} s; tries {every})",
        f"< {INSERT_GOAL_S:.0f} s", insert_s / INSERT_GOAL_S)
    add("  median of the tries", f"{statistics.median(w for w, _ in tries):.2f} s")
    add("  floor: bare sqlite3 executemany, same rows, schema, index fill, 25k/transaction",
        f"{raw_s:.2f} s (cpu {raw_cpu:.2f} s; tries {' '.join(f'{w:.2f}' for w, _ in floor)})")
    add("  add_results / floor", f"{insert_s / raw_s:.2f}x wall, {insert_cpu / raw_cpu:.2f}x cpu")
    small_s, small_cpu = _insert(tmp_path / "small.logos", batches, 5000)
    add("  the same 100k rows, 5k per add_results call (20 transactions)",
        f"{small_s:.2f} s (cpu {small_cpu:.2f} s)", f"({INSERT_GOAL_S:.0f} s)", None)

    with Project.open(path) as p:
        runs = {r.task: r.id for r in p.runs()}
        # the engine process's path: one add_result per sample, each its own durable transaction
        single = _rows(200, seed=99)
        t0 = time.perf_counter()
        for row in single:
            p.add_result(runs["molecule"], **row)
        per_row_ms = (time.perf_counter() - t0) * 1000 / len(single)
        add("add_result, one transaction each (synchronous=FULL)", f"{per_row_ms:.2f} ms/row")

        _query_figures(p, add)
        t0 = time.perf_counter()
    close_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Project.open(path) as p:
        open_s = time.perf_counter() - t0
        assert p.count_results() == N_RESULTS + 200
        assert p.integrity_check() == ["ok"]
    add("close (checkpoint) / reopen with quick_check", f"{close_s:.2f} s / {open_s:.2f} s")
    add("file size", f"{path.stat().st_size / 1e6:.1f} MB")

    print(f"\nProject store benchmark (SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
          f"SMILES: {'MOSES test split' if moses else 'scaffolds + tails'}; load: 1-min load average "
          "when the figure was taken)")
    for name, value, goal, ratio, load in lines:
        r = f"{ratio:.2f}x goal" if ratio is not None else ""
        print(f"  {name:<86} {value:>44}  {goal:>8}  {r:>10}  load {load:.1f}")
    for name, _, goal, ratio, _ in lines:
        if ratio is not None:
            assert ratio < 1.0, f"{name} missed its goal ({goal})"
