"""Where the results table gets its rows: the project store (engine.store), one page at a time.

``ResultRow`` is the GUI's read-only view of one stored result; ``StoreResultSource`` turns the
table's filter/sort/page into ``engine.store`` queries. The GUI never copies a whole project.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ResultFilter:
    text: str = ""  # substring of SMILES / sequence / record
    valid: bool | None = None  # None = all
    task: str | None = None
    run_id: int | None = None


@dataclass
class ResultRow:
    id: int
    run_id: int | None
    task: str | None
    record: str
    smiles: str | None = None
    sequence: str | None = None
    cif: str | None = None
    valid: bool = True
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    ppl: float | None = None
    created: Any = None  # datetime or ISO text
    tags: list[str] = field(default_factory=list)
    objects: Any = None
    raw: Any = None  # the store's own row object

    @property
    def text(self) -> str:
        return self.smiles or self.sequence or self.record

    def created_text(self) -> str:
        c = self.created
        if c is None:
            return ""
        if isinstance(c, (int, float)):
            c = _dt.datetime.fromtimestamp(c)
        if isinstance(c, str):
            try:
                c = _dt.datetime.fromisoformat(c)
            except ValueError:
                return c
        if c.tzinfo is None:  # the store keeps naive UTC; show local time
            c = c.replace(tzinfo=_dt.timezone.utc)
        return c.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class ResultSource(Protocol):
    def count(self, flt: ResultFilter) -> int: ...

    def fetch(self, flt: ResultFilter, sort_key: str, descending: bool, offset: int,
              limit: int) -> list[ResultRow]: ...


_SORT_KEYS = {"created": "created_at"}


class StoreResultSource:
    """Pages of results from an open ``engine.store`` project (``Project.query_results``)."""

    def __init__(self, project) -> None:
        self.project = project
        self._poses: dict[int, object] = {}  # result id -> best pose (tooltips), until forget()

    def best_pose(self, result_id: int):
        """The best pose of the newest docking of a result (``engine.store`` PoseRow), or None."""
        if result_id not in self._poses:
            poses = getattr(self.project, "poses", None)
            found = poses(result_id) if poses is not None else []
            if len(self._poses) > 500:
                self._poses.clear()
            self._poses[result_id] = found[0] if found else None
        return self._poses[result_id]

    def forget(self) -> None:
        """Rows may have changed in the file (a docking added poses): read them again."""
        self._poses.clear()

    def _query(self, flt: ResultFilter, **kw):
        from engine.store.queries import ResultQuery

        return ResultQuery(task=flt.task, run_id=flt.run_id, valid=flt.valid, text=flt.text or None, **kw)

    def count(self, flt: ResultFilter) -> int:
        return int(self.project.count_results(self._query(flt)))

    def fetch(self, flt: ResultFilter, sort_key: str, descending: bool, offset: int,
              limit: int) -> list[ResultRow]:
        q = self._query(flt, sort=_SORT_KEYS.get(sort_key, sort_key), descending=descending,
                        offset=offset, limit=limit, count_total=False)
        return [from_store(r) for r in self.project.query_results(q).rows]


def from_store(r) -> ResultRow:
    return ResultRow(id=r.id, run_id=r.run_id, task=r.task, record=r.record, smiles=r.smiles,
                     sequence=r.sequence, cif=r.cif, valid=bool(r.valid), reasons=list(r.reasons or []),
                     scores=dict(r.scores or {}), ppl=r.ppl, created=r.created_at, tags=list(r.tags or []),
                     objects=r.objects, raw=r)
