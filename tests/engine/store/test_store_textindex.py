"""The trigram substring index (engine/store/textindex.py): SMILES and sequence filters answered
through it return exactly the rows of the plain scan, on real molecules (MOSES) and real protein
chains, including rows inserted one at a time, in bulk, changed and deleted behind the API."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from engine import datasets
from engine.store import Project, ResultQuery, queries, textindex
from tests.engine.store.conftest import UBIQUITIN

DATA = Path(__file__).resolve().parents[2] / "data"
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _moses() -> list[str]:
    smiles = (DATA / "training" / "moses_train_head600.smi").read_text().split()
    try:  # 4,000 more from the MOSES test split when the data package is there
        text = datasets.read_text("molsets", "moses/dataset/data/test.csv.gz")
        smiles += [ln.split(",")[0] for ln in text.splitlines()[1:4001]]
    except datasets.DatasetMissing:
        pass
    return smiles


def _chains() -> list[str]:
    out = []
    for name in ("structures/test.fasta", "reliability/1hvr_chains.fasta"):
        seq = []
        for line in (DATA / name).read_text().splitlines() + [">"]:
            if line.startswith(">"):
                if seq:
                    out.append("".join(seq).replace(".", ""))
                seq = []
            else:
                seq.append(line.strip())
    return out + [UBIQUITIN]


def _sequences(rnd: random.Random) -> list[str]:
    chains = _chains()
    out = []
    for _ in range(400):
        chain = rnd.choice(chains)
        start = rnd.randrange(0, len(chain) - 20)
        seq = chain[start:start + rnd.randrange(20, 120)]
        kind = rnd.random()
        if kind < 0.15:
            seq = seq.lower()  # sequence filters ignore ASCII case
        elif kind < 0.25:
            seq = "".join(c.lower() if rnd.random() < 0.5 else c for c in seq)
        out.append(seq)
    # letters that fold differently in SQLite's upper() (ASCII only), Python's upper() and FTS5's
    # case folding (every letter, one to one)
    return out + ["MKßSSTRAße", "MKSSTRASSE", "ÉCOLEécoleECOLE", "ǅǆǄxyz", "ΣσςΣ", "ıIİi"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    rnd = random.Random(11)
    smiles, sequences = _moses(), _sequences(rnd)
    rows = [{"record": s, "smiles": s} for s in smiles]
    rows += [{"record": q, "sequence": q} for q in sequences]
    for row in rows:  # scores with ties, and rows without one: both parts of a score sort
        if rnd.random() < 0.7:
            row["scores"] = {"qed": round(rnd.random(), 2)}
        row["ppl"] = round(rnd.random() * 5, 1) if rnd.random() < 0.8 else None
    rows += [{"record": "both", "smiles": "CCO\"C'%_\\x", "sequence": "AC\"GT%_"}, {"record": "neither"}]
    rnd.shuffle(rows)
    path = tmp_path_factory.mktemp("textindex") / "t.logos"
    with Project.open(path, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, 1)
        cut = len(rows) // 3
        p.add_results(run, rows[:cut])  # bulk: the index filled by one statement
        for row in rows[cut:cut + 150]:  # one at a time: the insert trigger
            p.add_results(run, [row])
        p.add_results(run, rows[cut + 150:])
    # changed and deleted behind the API (the sqlite3 shell, another tool): the triggers follow
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys = ON")
    ids = [r[0] for r in con.execute("SELECT id FROM results ORDER BY id")]
    for rid in rnd.sample(ids, 60):
        con.execute("UPDATE results SET smiles = 'c1ccccc1' || coalesce(smiles, ''), "
                    "sequence = CASE WHEN sequence IS NULL THEN NULL ELSE sequence || 'WWW' END "
                    "WHERE id = ?", (rid,))
    for rid in rnd.sample(ids, 3):
        con.execute("UPDATE results SET smiles = NULL, sequence = 'PEPTIDE' WHERE id = ?", (rid,))
    for rid in rnd.sample(ids, 40):
        con.execute("DELETE FROM results WHERE id = ?", (rid,))
    con.commit()
    con.close()
    p = Project.open(path)
    every = p.query_results(ResultQuery(limit=None)).rows
    yield p, every
    p.close()


def _patterns(every, rnd: random.Random, column: str) -> list[str]:
    values = [getattr(r, column) for r in every if getattr(r, column)]
    out = []
    for _ in range(120):
        v = rnd.choice(values)
        n = rnd.choice([3, 3, 4, 5, 6, 8, 12])
        start = rnd.randrange(0, max(1, len(v) - n))
        out.append(v[start:start + n])
    out += [p.swapcase() for p in out[:30]]
    out += [p.lower() for p in out[:20]]
    return out


SMILES_EXTRA = ["c1ccccc1", "C1CCCCC1", "[nH]", "[C@@H]", "[C@H]", "C(F)(F)F", "S(=O)(=O)N", "#N", "Cl", "Br",
                "cc", "C", "(", "=O", "[Xe]", "ZZZ", "c1ccncc1", "N#Cc1", "\"", "\"C'", "%_", "O\"C",
                "'%_\\", "\\x", "CCO\"C'%_\\x", "CCO\"C'%_\\xy", "c1ccccc1c1ccccc1", "Cc1ccccc1", "OCC(O)CO"]
SEQUENCE_EXTRA = ["ß", "ss", "SS", "ßs", "kssTRA", "MKSS", "strasse", "École", "ÉCO", "ÉcO", "ǆǄ", "ǅǅ", "σσς",
                  "ΣΣΣ", "IİI", "ııı", "iii", "www", "GGG", "peptide", "PEP", "AC\"G", "\"GT%", "%_", "XYZ", "a",
                  "LLL"]


def _reference(every, column: str, pattern: str) -> list[int]:
    if column == "smiles":
        return [r.id for r in every if r.smiles and pattern in r.smiles]
    want = pattern.upper()  # the filter: instr(upper(sequence), upper(pattern)); SQLite's upper: ASCII
    return [r.id for r in every if r.sequence and want in r.sequence.translate(_ASCII_UPPER)]


def _query(column: str, pattern: str, **kw) -> ResultQuery:
    key = "smiles_contains" if column == "smiles" else "sequence_contains"
    return ResultQuery(**{key: pattern, "limit": None, **kw})


@pytest.mark.parametrize("column", ["smiles", "sequence"])
def test_index_answers_equal_the_scan(project, column, monkeypatch):
    p, every = project
    assert textindex.available()
    monkeypatch.setattr(queries, "CANDIDATES_MIN", 10**9)  # the index for every usable pattern
    extra = SMILES_EXTRA if column == "smiles" else SEQUENCE_EXTRA
    patterns = _patterns(every, random.Random(3), column) + extra
    used_index = 0
    for pattern in patterns:
        q = _query(column, pattern)
        with p.session() as conn:
            cand = queries.text_candidates(conn, q)
        if textindex.usable_pattern(pattern if column == "smiles" else pattern.upper()):
            assert cand.get(column) is not None, pattern
            used_index += 1
        else:
            assert cand.get(column) is None, pattern
        indexed = p.query_results(q)
        with monkeypatch.context() as m:
            m.setattr(textindex, "available", lambda: False)  # the plain scan
            scanned = p.query_results(q)
        expected = _reference(every, column, pattern)
        assert [r.id for r in indexed.rows] == [r.id for r in scanned.rows] == expected, pattern
        assert indexed.total == scanned.total == len(expected)
    assert used_index > 100
    assert sum(1 for pat in patterns if _reference(every, column, pat)) > 100  # most patterns find rows


def _walk(p, q: ResultQuery) -> list[int]:
    got, after = [], None
    while True:
        page = p.query_results(ResultQuery(**{**q.__dict__, "after": after}))
        got += [r.id for r in page.rows]
        if page.next_after is None:
            return got
        after = page.next_after


def test_index_with_other_filters_sorts_and_pages(project, monkeypatch):
    """Sorted and paged (by key and by offset), with other filters: the same rows in the same
    order through the index as through the scan."""
    p, every = project
    for pattern in ["c1ccccc1", "C(=O)N", "[nH]", "Cl)cc1", "c1ccc2[nH]ccc2c1"]:
        expected = _reference(every, "smiles", pattern)
        assert expected, pattern
        for sort, desc in [("id", True), ("smiles", False), ("record", True), ("ppl", False),
                           ("score:qed", True), ("score:qed", False)]:
            q = _query("smiles", pattern, sort=sort, descending=desc, limit=11)
            with monkeypatch.context() as m:
                m.setattr(queries, "CANDIDATES_MIN", 10**9)
                indexed = _walk(p, q)
                by_offset = [r.id for r in p.query_results(ResultQuery(**{**q.__dict__, "offset": 5})).rows]
            with monkeypatch.context() as m:
                m.setattr(textindex, "available", lambda: False)
                scanned = _walk(p, q)
            assert indexed == scanned and sorted(indexed) == expected, (pattern, sort, desc)
            assert by_offset == scanned[5:16]
        with monkeypatch.context() as m:
            m.setattr(queries, "CANDIDATES_MIN", 10**9)
            both = p.query_results(ResultQuery(smiles_contains=pattern, sequence_contains="ggg", valid=True,
                                               scores={"qed": (0.2, 0.8)}, limit=None))
        with_seq = set(_reference(every, "sequence", "ggg"))
        assert [r.id for r in both.rows] == [r.id for r in every if r.id in expected and r.id in with_seq
                                             and r.valid and 0.2 <= (r.scores.get("qed") or -1) <= 0.8]


def test_common_patterns_scan_and_rare_ones_use_the_index(project, monkeypatch):
    p, every = project
    counts = {pat: len(_reference(every, "smiles", pat)) for pat in ["OCC(O)CO", "N#Cc1", "C(F)(F)F", "[nH]"]}
    rare = min((n, pat) for pat, n in counts.items() if n > 0)[1]
    common = "c1ccccc1"
    cap = counts[rare] + 1
    assert len(_reference(every, "smiles", common)) > cap
    monkeypatch.setattr(queries, "CANDIDATES_MIN", cap)
    monkeypatch.setattr(queries, "CANDIDATES_SHARE", 0.0)
    with p.session() as conn:
        assert queries.text_candidates(conn, _query("smiles", common)) == {"smiles": None}
        found = queries.text_candidates(conn, _query("smiles", rare))["smiles"]
        assert queries.text_candidates(conn, _query("smiles", "Cl")) == {}  # too short for trigrams
    assert found is not None and set(_reference(every, "smiles", rare)) <= set(found)
    for pattern in [common, rare]:  # either way, the same rows
        found = p.query_results(_query("smiles", pattern)).rows
        assert [r.id for r in found] == _reference(every, "smiles", pattern)


def test_index_is_sound_after_all_the_changes(project):
    p, _ = project
    assert p.integrity_check() == ["ok"]
    with p.session(write=True) as conn:
        for table in textindex.TABLES:  # FTS5's own check of its b-trees
            conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
        assert textindex.present(conn)
