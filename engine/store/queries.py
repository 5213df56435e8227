"""What the store hands out: plain dataclasses (never ORM objects) and the results query.

``ResultQuery`` describes one page of the results table: filters (task, run, validity, score
ranges, text, substrings of SMILES and sequences, tags, rating), a sort column and a page, given
by an offset or by the key of the previous page's last row (``after``: keyset paging, as fast on
page 1000 as on page 1). ``page_ids`` and ``fetch_rows`` run it (ids of one page first, then the
full rows); ``parse_where`` reads the CLI's ``--where`` expressions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ScalarSelect, UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.types import UserDefinedType

from engine.store import textindex
from engine.store.schema import ResultPayloadRow, ResultRowORM, ResultScoreRow, ResultTagRow

R = ResultRowORM.__table__
PL = ResultPayloadRow.__table__
S = ResultScoreRow.__table__
T = ResultTagRow.__table__

# columns a query may sort on ("score:<name>" sorts on a numeric score); empty values sort last.
NOT_NULL_SORT = {"id": R.c.id, "run_id": R.c.run_id, "idx": R.c.idx, "task": R.c.task,
                 "valid": R.c.valid, "created_at": R.c.created_at}
NULLABLE_SORT = {"ppl": R.c.ppl, "rating": R.c.rating, "smiles": R.c.smiles, "sequence": R.c.sequence,
                 "notes": R.c.notes, "parent_id": R.c.parent_id}
SORTABLE = {**NOT_NULL_SORT, **NULLABLE_SORT, "record": PL.c.record}

Range = tuple[float | None, float | None]


@dataclass(frozen=True)
class PageKey:
    """Where a page ended: the sort key of its last row, for ``ResultQuery(after=...)``.

    Read it from ``ResultPage.next_after``; it is only valid for the same sort and direction.
    ``has_value`` is False when the last row had no value for a nullable sort key (those rows
    come after every row with a value, by id). ``value`` is the value as stored in the file.
    """

    sort: str
    descending: bool
    has_value: bool
    value: Any
    id: int


@dataclass
class ResultQuery:
    """Filters, sort and page for ``Project.query_results``. Every filter is optional (AND-ed)."""

    task: str | Sequence[str] | None = None
    run_id: int | Sequence[int] | None = None
    valid: bool | None = None
    scores: Mapping[str, Range] = field(default_factory=dict)  # name -> (min, max), inclusive
    ppl: Range | None = None
    rating: Range | None = None
    text: str | None = None  # substring of record, SMILES, sequence or notes (case-insensitive)
    smiles_contains: str | None = None  # substring of the canonical SMILES (case-sensitive)
    sequence_contains: str | None = None  # substring of the sequence (case-insensitive)
    tags: Sequence[str] = ()  # results carrying every one of these tags
    ids: Sequence[int] | None = None
    parent_id: int | None = None
    has: Sequence[str] = ()  # columns that must be set: "smiles", "sequence", "cif"
    sort: str = "id"  # a key of SORTABLE, or "score:<name>"
    descending: bool = False
    offset: int = 0  # rows skipped (after ``after`` when both are given)
    limit: int | None = 100  # None: every matching row
    count_total: bool = True  # also count every matching row (ResultPage.total)
    after: PageKey | None = None  # start after this row (keyset paging: ResultPage.next_after)


@dataclass
class ResultRow:
    id: int
    run_id: int
    idx: int
    task: str
    record: str
    objects: Any
    smiles: str | None
    sequence: str | None
    cif: str | None
    valid: bool
    reasons: list[str]
    scores: dict[str, Any]
    ppl: float | None
    tags: list[str]
    notes: str | None
    rating: int | None
    parent_id: int | None
    created_at: datetime


@dataclass
class ResultPage:
    rows: list[ResultRow]
    total: int | None  # every row matching the filters (None when count_total was False)
    offset: int
    limit: int | None
    # the key for the next page (ResultQuery(after=...)); None after the last page
    next_after: PageKey | None = None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


@dataclass
class ModelInfo:
    id: int
    sha256: str
    path: str
    quant: str | None
    adapter: str | None
    base: str | None
    created_at: datetime


@dataclass
class InputInfo:
    id: int
    sha256: str
    fmt: str
    name: str
    size: int
    created_at: datetime
    data: bytes | None = None  # filled by Project.get_input only


@dataclass
class RunInfo:
    id: int
    task: str
    prompt: str
    params: dict
    seed: int | None
    model_id: int | None
    versions: dict
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None
    input_ids: list[int] = field(default_factory=list)
    n_results: int | None = None
    model: ModelInfo | None = None


@dataclass
class TrainingRunInfo:
    id: int
    base_model_id: int | None
    output_model_id: int | None
    config: dict
    versions: dict
    n_examples: int
    metrics: dict | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None


@dataclass
class PoseRow:
    """One docked pose of a result (``Project.poses``)."""

    id: int
    result_id: int
    docking_id: int
    rank: int  # 1 = the best pose of its docking
    score: float  # Vina, kcal/mol (lower is better)
    rmsd: float | None  # Å to the docking's reference ligand, when it is the same molecule
    molblock: str  # the pose in the receptor's frame, with hydrogens
    checks: dict | None  # PoseBusters: {"passed", "failures": [{"check", "reason"}], "n_checks"}
    interactions: list | None  # ProLIF: [{"type", "label", "residue", "distance", "ligand_xyz", "protein_xyz"}]


@dataclass
class DockingRow:
    """One docking run with its provenance (``Project.get_docking`` / ``Project.dockings``)."""

    id: int
    run_id: int | None
    receptor_input_id: int
    receptor_sha256: str
    receptor_name: str
    box: dict
    settings: dict
    versions: dict
    report: dict
    reference: dict | None
    failures: list
    summary: dict | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass
class ProjectSummary:
    path: str
    name: str
    schema_revision: str | None
    head_revision: str
    read_only: bool
    message: str | None
    created_at: datetime | None
    created_by: str | None
    last_written_by: str | None
    size_bytes: int
    counts: dict[str, int]  # table -> rows
    tasks: dict[str, int]  # task -> results
    valid: int
    invalid: int
    score_names: list[str]
    journal_mode: str


def _as_list(value) -> list | None:
    if value is None:
        return None
    if isinstance(value, (str, int)):
        return [value]
    return list(value)


def _range(col, rng: Range):
    lo, hi = rng
    conds = []
    if lo is not None:
        conds.append(col >= float(lo))
    if hi is not None:
        conds.append(col <= float(hi))
    return conds


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _no_index(col):
    """``+col``: the same value, but SQLite's planner will not drive the query from an index on it."""
    return UnaryExpression(col, operator=custom_op("+"), type_=col.type)


def _ids_in(ids: Sequence[int]):
    ids = [int(i) for i in ids]
    if len(ids) <= 500:
        return R.c.id.in_(ids)
    # one JSON parameter instead of one per id (SQLite caps the number of parameters)
    each = func.json_each(json.dumps(ids)).table_valued("value")
    return R.c.id.in_(select(each.c.value))


# A substring filter asks the trigram index for candidates first; when it proposes more than
# max(CANDIDATES_MIN, CANDIDATES_SHARE * rows) the pattern is common and the scan (which stops
# after one page) is used instead. Measured on 100k MOSES SMILES: the probe costs 1-6 ms; the
# index wins clearly below ~2 % of the rows (a count, or a sort other than id: 10 ms instead of
# 30-250 ms), the scan is as fast or faster above.
CANDIDATES_MIN = 1000
CANDIDATES_SHARE = 0.02

Candidates = Mapping[str, "list[int] | None"]


def text_candidates(conn: Connection, q: ResultQuery) -> dict[str, list[int] | None]:
    """For ``smiles_contains`` / ``sequence_contains``: the ids the trigram index proposes
    (``textindex``), keyed "smiles" / "sequence"; a key is missing (or None) where the query
    scans instead: a pattern under 3 characters, a common pattern, or no index in the file."""
    wanted = []
    if q.smiles_contains and textindex.usable_pattern(q.smiles_contains):
        wanted.append(("smiles", textindex.SMILES_TABLE, q.smiles_contains))
    if q.sequence_contains and textindex.usable_pattern(q.sequence_contains.upper()):
        wanted.append(("sequence", textindex.SEQUENCE_TABLE, q.sequence_contains.upper()))
    if not wanted or not textindex.available() or not textindex.present(conn):
        return {}
    rows = conn.exec_driver_sql("SELECT max(id) FROM results").scalar() or 0
    cap = max(CANDIDATES_MIN, int(CANDIDATES_SHARE * rows))
    return {key: textindex.candidates(conn, table, pattern, cap) for key, table, pattern in wanted}


def filters(q: ResultQuery, use_indexes: bool = True, cand: Candidates | None = None) -> list:
    """SQL conditions for the query's filters. ``use_indexes=False`` keeps SQLite from choosing an
    index of ``results`` for them (used when another index, a score's, must drive the walk).
    ``cand``: candidate ids from ``text_candidates``; the exact substring conditions are kept."""
    c = (lambda col: col) if use_indexes else _no_index
    cand = cand or {}
    conds = []
    tasks = _as_list(q.task)
    if tasks:
        conds.append(c(R.c.task).in_(tasks) if len(tasks) > 1 else c(R.c.task) == tasks[0])
    runs = _as_list(q.run_id)
    if runs:
        conds.append(c(R.c.run_id).in_(runs) if len(runs) > 1 else c(R.c.run_id) == runs[0])
    if q.valid is not None:
        conds.append(c(R.c.valid) == bool(q.valid))
    if q.ids is not None:
        conds.append(_ids_in(q.ids))
    if q.parent_id is not None:
        conds.append(c(R.c.parent_id) == q.parent_id)
    if q.ppl is not None:
        conds += _range(c(R.c.ppl), q.ppl)
    if q.rating is not None:
        conds += _range(c(R.c.rating), q.rating)
    for name, rng in (q.scores or {}).items():
        # correlated EXISTS: a page walked along a sort index stops after `limit` matches
        conds.append(exists().where(S.c.result_id == R.c.id, S.c.name == name, *_range(S.c.value, rng)))
    for tag in q.tags or ():
        conds.append(exists().where(and_(T.c.result_id == R.c.id, T.c.tag == tag)))
    if q.text:
        pattern = f"%{_like_escape(q.text)}%"
        # one pass over the records (an IN list), not a record look-up for every row
        in_record = R.c.id.in_(select(PL.c.result_id).where(PL.c.record.like(pattern, escape="\\")))
        conds.append(or_(*(col.like(pattern, escape="\\") for col in (R.c.smiles, R.c.sequence, R.c.notes)),
                         in_record))
    if q.smiles_contains:
        if cand.get("smiles") is not None:
            conds.append(_ids_in(cand["smiles"]))
        conds.append(func.instr(R.c.smiles, q.smiles_contains) > 0)
    if q.sequence_contains:
        if cand.get("sequence") is not None:
            conds.append(_ids_in(cand["sequence"]))
        conds.append(func.instr(func.upper(R.c.sequence), q.sequence_contains.upper()) > 0)
    for col in q.has or ():
        if col in ("smiles", "sequence"):
            conds.append(R.c[col].is_not(None))
        elif col == "cif":
            conds.append(exists().where(PL.c.result_id == R.c.id, PL.c.cif.is_not(None)))
        else:
            raise ValueError(f"'has' takes smiles, sequence or cif, not {col!r}")
    return conds


ROW_COLUMNS = [R.c.id, R.c.run_id, R.c.idx, R.c.task, PL.c.record, PL.c.objects, R.c.smiles,
               R.c.sequence, PL.c.cif, R.c.valid, PL.c.reasons, PL.c.scores, R.c.ppl, R.c.notes,
               R.c.rating, R.c.parent_id, R.c.created_at]


def _check_sort(sort: str) -> None:
    if not (sort in SORTABLE or (sort.startswith("score:") and len(sort) > 6)):
        raise ValueError(f"cannot sort on {sort!r}: use one of {', '.join(sorted(SORTABLE))} or score:<name>")


def count_select(q: ResultQuery, cand: Candidates | None = None):
    count = select(func.count()).select_from(R)
    conds = filters(q, cand=cand)
    return count.where(*conds) if conds else count


def _ordered(q: ResultQuery, conds: list, key, extra_from=None):
    """select(id) under conds ordered by key then id, in the query's direction."""
    stmt = select(R.c.id).select_from(extra_from if extra_from is not None else R)
    if conds:
        stmt = stmt.where(*conds)
    if key is None:
        return stmt.order_by(R.c.id.desc() if q.descending else R.c.id.asc())
    if q.descending:
        return stmt.order_by(key.desc(), R.c.id.desc())
    return stmt.order_by(key.asc(), R.c.id.asc())


def _page(conn: Connection, stmt, offset: int, limit: int | None) -> list[int]:
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return list(conn.execute(stmt).scalars())


class _Stored(UserDefinedType):
    """A bound value passed to SQLite exactly as read from the file (no type conversion), so a
    page key compares with the column the way ORDER BY does."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return ""


def _beyond(q: ResultQuery, key, id_col, after: PageKey):
    """Rows after ``after`` in (key, id) order, in the query's direction. Row values let SQLite
    start an index walk at the key (``(value, result_id) < (?, ?)`` on the score index)."""
    if key is None:
        return id_col < after.id if q.descending else id_col > after.id
    value = bindparam(None, after.value, type_=_Stored(), unique=True)
    if isinstance(key, ScalarSelect):  # the record: no index to walk, the plain form
        if q.descending:
            return or_(key < value, and_(key == value, id_col < after.id))
        return or_(key > value, and_(key == value, id_col > after.id))
    pair = tuple_(key, id_col)
    other = tuple_(value, bindparam(None, after.id, unique=True))
    return pair < other if q.descending else pair > other


def _check_after(q: ResultQuery) -> None:
    a = q.after
    if not isinstance(a, PageKey):
        raise ValueError(f"after must be a PageKey (ResultPage.next_after), not {type(a).__name__}")
    if a.sort != (q.sort or "id") or a.descending != bool(q.descending):
        raise ValueError(f"the page key is for sort {a.sort!r}{' descending' if a.descending else ''}, "
                         f"not {q.sort!r}{' descending' if q.descending else ''}")


def page_ids(conn: Connection, q: ResultQuery, cand: Candidates | None = None) -> list[int]:
    """Ids of one page in sort order. A nullable sort key is read in two parts (rows with a value,
    in index order; then rows without one, by id) so that SQLite can walk an index in both.
    ``q.after`` starts the page after a row (keyset paging), ``q.offset`` skips rows after that."""
    sort = q.sort or "id"
    _check_sort(sort)
    if cand is None:
        cand = text_candidates(conn, q)
    after = q.after
    if after is not None:
        _check_after(q)
    conds = filters(q, cand=cand)
    offset, limit = int(q.offset or 0), (None if q.limit is None else int(q.limit))
    if sort in NOT_NULL_SORT or sort == "record":
        if sort == "record":
            key = select(PL.c.record).where(PL.c.result_id == R.c.id).scalar_subquery()
        else:
            key = None if sort == "id" else NOT_NULL_SORT[sort]
        if after is not None:
            conds = conds + [_beyond(q, key, R.c.id, after)]
        return _page(conn, _ordered(q, conds, key), offset, limit)
    # nullable keys: the rows with a value, then those without; a key from the second part
    # skips the first part entirely
    skip_with = after is not None and not after.has_value
    without_conds = [_beyond(q, None, R.c.id, after)] if skip_with else []
    if sort.startswith("score:"):
        name = sort[6:]
        sc = S.alias("sort_score")
        beyond = [_beyond(q, sc.c.value, sc.c.result_id, after)] if after is not None and not skip_with else []
        # the score index (name, value, result_id) drives the walk, results are looked up by id,
        # and the walk stops after offset + limit matches (no sort of every match)
        joined = sc.join(R, R.c.id == sc.c.result_id)
        # a short list of substring candidates drives the query instead (score looked up by id)
        driven = any(ids is not None for ids in cand.values())
        if driven:
            stmt = select(R.c.id).select_from(joined).where(_no_index(sc.c.name) == name, *conds, *beyond)
        elif conds:
            stmt = select(R.c.id).select_from(joined).where(
                sc.c.name == name, *filters(q, use_indexes=False, cand=cand), *beyond)
        else:  # no filter: the index alone answers (an offset skips index entries, not rows)
            stmt = select(sc.c.result_id).where(sc.c.name == name, *beyond)
        stmt = stmt.order_by(*((sc.c.value.desc(), sc.c.result_id.desc()) if q.descending
                               else (sc.c.value.asc(), sc.c.result_id.asc())))
        with_value = stmt
        if driven:  # a look-up for each candidate, not the set of every result with the score
            no_score = ~exists().where(S.c.result_id == R.c.id, S.c.name == name)
        else:
            no_score = ~R.c.id.in_(select(S.c.result_id).where(S.c.name == name))
        without = _ordered(q, conds + without_conds + [no_score], None)
        count_with = select(func.count()).select_from(joined).where(sc.c.name == name, *conds, *beyond)
    else:
        col = NULLABLE_SORT[sort]
        beyond = [_beyond(q, col, R.c.id, after)] if after is not None and not skip_with else []
        with_value = _ordered(q, conds + [col.is_not(None)] + beyond, col)
        without = _ordered(q, conds + without_conds + [col.is_(None)], None)
        count_with = select(func.count()).select_from(R).where(*conds, col.is_not(None), *beyond)
    first = [] if skip_with else _page(conn, with_value, offset, limit)
    if limit is not None and len(first) == limit:
        return first
    if first or offset == 0 or skip_with:
        n_with = offset + len(first) if not skip_with else 0
    else:
        n_with = int(conn.execute(count_with).scalar_one())
    rest_limit = None if limit is None else limit - len(first)
    return first + _page(conn, without, max(0, offset - n_with), rest_limit)


def page_key(conn: Connection, q: ResultQuery, last_id: int) -> PageKey:
    """The key of row ``last_id`` under the query's sort (its value as stored in the file)."""
    sort = q.sort or "id"
    _check_sort(sort)
    if sort == "id":
        value = last_id
    elif sort == "record":
        value = conn.exec_driver_sql("SELECT record FROM result_payloads WHERE result_id = ?",
                                     (last_id,)).scalar()
    elif sort.startswith("score:"):
        value = conn.exec_driver_sql("SELECT value FROM result_scores WHERE result_id = ? AND name = ?",
                                     (last_id, sort[6:])).scalar()
    else:  # a column of results: the name is one of SORTABLE's keys
        value = conn.exec_driver_sql(f"SELECT {sort} FROM results WHERE id = ?", (last_id,)).scalar()
    return PageKey(sort=sort, descending=bool(q.descending), has_value=value is not None, value=value,
                   id=int(last_id))


def fetch_rows(conn: Connection, ids: list[int]) -> list["ResultRow"]:
    """Full rows (payload and tags) for ids, in the order given."""
    found: dict[int, ResultRow] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        stmt = select(*ROW_COLUMNS).select_from(R.join(PL, PL.c.result_id == R.c.id)).where(R.c.id.in_(chunk))
        tags: dict[int, list[str]] = {}
        for rid, tag in conn.execute(select(T.c.result_id, T.c.tag).where(T.c.result_id.in_(chunk))
                                     .order_by(T.c.result_id, T.c.tag)):
            tags.setdefault(rid, []).append(tag)
        for m in conn.execute(stmt).mappings():
            found[m["id"]] = to_row(m, tags.get(m["id"], []))
    return [found[i] for i in ids if i in found]


def to_row(m: Mapping, tags: list[str]) -> ResultRow:
    return ResultRow(
        id=m["id"], run_id=m["run_id"], idx=m["idx"], task=m["task"], record=m["record"],
        objects=m["objects"], smiles=m["smiles"], sequence=m["sequence"], cif=m["cif"],
        valid=bool(m["valid"]), reasons=list(m["reasons"] or []), scores=dict(m["scores"] or {}),
        ppl=m["ppl"], tags=tags, notes=m["notes"], rating=m["rating"], parent_id=m["parent_id"],
        created_at=m["created_at"],
    )


def clean_number(value) -> float | None:
    """A finite float, or None (JSON has no NaN or infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ---- the CLI's --where expressions ------------------------------------------------------------

_WHERE = re.compile(r"^\s*([A-Za-z_][\w:.\-]*)\s*(>=|<=|==|!=|=|<|>|~)\s*(.*?)\s*$")


def parse_where(expressions: Sequence[str], base: ResultQuery | None = None) -> ResultQuery:
    """Read ``--where`` expressions into a ResultQuery (all AND-ed).

    ``task=retrosynthesis``, ``run=3``, ``valid=1``/``valid=0``, ``ppl<5``, ``score:qed>=0.5``,
    ``rating>=3``, ``tag=hit``, ``smiles~c1ccccc1``, ``sequence~MKT``, ``text~aspirin``, ``id=7``.
    Raises ValueError with a message naming the bad expression.
    """
    q = base or ResultQuery(limit=None)
    scores = dict(q.scores)
    tags = list(q.tags)
    for expr in expressions:
        m = _WHERE.match(expr)
        if not m:
            raise ValueError(f"cannot read --where {expr!r}: write NAME OP VALUE, e.g. 'score:qed>=0.5'")
        name, op, value = m.group(1).lower(), m.group(2), m.group(3)
        if op == "==":
            op = "="

        def num() -> float:
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"--where {expr!r}: {value!r} is not a number") from None

        def rng(old: Range | None) -> Range:
            lo, hi = old or (None, None)
            if op == "=":
                return (num(), num())
            if op in (">", ">="):
                return (num(), hi)
            if op in ("<", "<="):
                return (lo, num())
            raise ValueError(f"--where {expr!r}: {name} takes =, <, <=, > or >=")

        if name == "task" and op == "=":
            q.task = value
        elif name in ("run", "run_id") and op == "=":
            q.run_id = int(num())
        elif name == "id" and op == "=":
            q.ids = [int(num())]
        elif name == "valid" and op == "=":
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"--where {expr!r}: valid takes 1 or 0")
            q.valid = value.lower() in ("1", "true", "yes")
        elif name == "ppl":
            q.ppl = rng(q.ppl)
        elif name == "rating":
            q.rating = rng(q.rating)
        elif name.startswith("score:") and len(name) > 6:
            key = m.group(1)[6:]
            scores[key] = rng(scores.get(key))
        elif name == "tag" and op == "=":
            tags.append(value)
        elif name == "smiles" and op == "~":
            q.smiles_contains = value
        elif name == "sequence" and op == "~":
            q.sequence_contains = value
        elif name == "text" and op == "~":
            q.text = value
        else:
            raise ValueError(
                f"cannot read --where {expr!r}: known filters are task=, run=, id=, valid=, ppl<>, "
                "rating<>, score:NAME<>, tag=, smiles~, sequence~, text~")
    q.scores = scores
    q.tags = tags
    return q
