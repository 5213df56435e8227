"""The project store: one SQLite file per project (the only importer of SQLAlchemy).

    from engine.store import Project, ResultQuery
    with Project.open("screen.logos", create=True) as p:
        ...

See ``project.py`` for the API, ``schema.py`` for the tables, ``queries.py`` for the dataclasses
handed out, ``export.py`` for SDF/CSV/CIF/FASTA export and SDF/CSV import.
"""

from engine.store.errors import (
    CorruptProjectError,
    DiskFullError,
    NewerSchemaError,
    NotAProjectError,
    ProjectError,
    ProjectLockedError,
    ReadOnlyProjectError,
)
from engine.store.project import Project
from engine.store.queries import (
    DockingRow,
    InputInfo,
    ModelInfo,
    PageKey,
    PoseRow,
    ProjectSummary,
    ResultPage,
    ResultQuery,
    ResultRow,
    RunInfo,
    TrainingRunInfo,
    parse_where,
)

__all__ = [
    "CorruptProjectError", "DiskFullError", "DockingRow", "InputInfo", "ModelInfo", "NewerSchemaError",
    "NotAProjectError", "PageKey", "PoseRow", "Project", "ProjectError", "ProjectLockedError", "ProjectSummary",
    "ReadOnlyProjectError", "ResultPage", "ResultQuery", "ResultRow", "RunInfo", "TrainingRunInfo",
    "parse_where",
]
