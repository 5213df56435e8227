"""What the store hands out: plain dataclasses (never ORM objects) and the results query.

``ResultQuery`` describes one page of the results table: filters (task, run, validity, score
ranges, text, substrings of SMILES and sequences, tags, rating), a sort column and a page.
``build_select`` turns it into SQL; ``parse_where`` reads the CLI's ``--where`` expressions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select

from engine.store.schema import ResultRowORM, ResultScoreRow, ResultTagRow

R = ResultRowORM.__table__
S = ResultScoreRow.__table__
T = ResultTagRow.__table__

# columns of the results table a query may sort on; "score:<name>" sorts on a numeric score.
SORTABLE = {
    "id": R.c.id, "run_id": R.c.run_id, "idx": R.c.idx, "task": R.c.task, "valid": R.c.valid,
    "ppl": R.c.ppl, "rating": R.c.rating, "smiles": R.c.smiles, "sequence": R.c.sequence,
    "created_at": R.c.created_at, "parent_id": R.c.parent_id, "notes": R.c.notes,
    "record": R.c.record,
}

Range = tuple[float | None, float | None]


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
    offset: int = 0
    limit: int | None = 100  # None: every matching row
    count_total: bool = True  # also count every matching row (ResultPage.total)


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


def filters(q: ResultQuery) -> list:
    """SQL conditions for the query's filters."""
    conds = []
    tasks = _as_list(q.task)
    if tasks:
        conds.append(R.c.task.in_(tasks) if len(tasks) > 1 else R.c.task == tasks[0])
    runs = _as_list(q.run_id)
    if runs:
        conds.append(R.c.run_id.in_(runs) if len(runs) > 1 else R.c.run_id == runs[0])
    if q.valid is not None:
        conds.append(R.c.valid == bool(q.valid))
    if q.ids is not None:
        conds.append(R.c.id.in_(list(q.ids)))
    if q.parent_id is not None:
        conds.append(R.c.parent_id == q.parent_id)
    if q.ppl is not None:
        conds += _range(R.c.ppl, q.ppl)
    if q.rating is not None:
        conds += _range(R.c.rating, q.rating)
    for name, rng in (q.scores or {}).items():
        inner = [S.c.result_id == R.c.id, S.c.name == name] + _range(S.c.value, rng)
        conds.append(exists().where(and_(*inner)))
    for tag in q.tags or ():
        conds.append(exists().where(and_(T.c.result_id == R.c.id, T.c.tag == tag)))
    if q.text:
        pattern = f"%{_like_escape(q.text)}%"
        conds.append(or_(*(col.like(pattern, escape="\\")
                           for col in (R.c.record, R.c.smiles, R.c.sequence, R.c.notes))))
    if q.smiles_contains:
        conds.append(func.instr(R.c.smiles, q.smiles_contains) > 0)
    if q.sequence_contains:
        conds.append(func.instr(func.upper(R.c.sequence), q.sequence_contains.upper()) > 0)
    for col in q.has or ():
        if col not in ("smiles", "sequence", "cif"):
            raise ValueError(f"'has' takes smiles, sequence or cif, not {col!r}")
        conds.append(R.c[col].is_not(None))
    return conds


ROW_COLUMNS = [R.c.id, R.c.run_id, R.c.idx, R.c.task, R.c.record, R.c.objects, R.c.smiles,
               R.c.sequence, R.c.cif, R.c.valid, R.c.reasons, R.c.scores, R.c.ppl, R.c.notes,
               R.c.rating, R.c.parent_id, R.c.created_at]


def build_select(q: ResultQuery):
    """(page select, count select or None) for a query."""
    conds = filters(q)
    stmt = select(*ROW_COLUMNS).select_from(R)
    sort = q.sort or "id"
    if sort.startswith("score:"):
        name = sort.split(":", 1)[1]
        sc = S.alias("sort_score")
        stmt = stmt.select_from(R.outerjoin(sc, and_(sc.c.result_id == R.c.id, sc.c.name == name)))
        key = sc.c.value
    elif sort in SORTABLE:
        key = SORTABLE[sort]
    else:
        raise ValueError(f"cannot sort on {sort!r}: use one of {', '.join(sorted(SORTABLE))} "
                         "or score:<name>")
    if conds:
        stmt = stmt.where(*conds)
    order = key.desc() if q.descending else key.asc()
    tie = R.c.id.desc() if q.descending else R.c.id.asc()
    if key is R.c.id:
        stmt = stmt.order_by(order)
    else:  # empty values last whichever the direction
        stmt = stmt.order_by(key.is_(None), order, tie)
    if q.limit is not None:
        stmt = stmt.limit(int(q.limit))
    if q.offset:
        stmt = stmt.offset(int(q.offset))
    count = None
    if q.count_total:
        count = select(func.count()).select_from(R)
        if conds:
            count = count.where(*conds)
    return stmt, count


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
