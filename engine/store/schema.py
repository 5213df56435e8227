"""The project file schema: SQLAlchemy 2 declarative models, one class per table.

A project is one SQLite file (``*.logos``). The schema is created and changed only through the
Alembic revisions in ``engine/store/migrations/versions``; a test checks that these models and the
newest revision describe the same tables (``tests/engine/store/test_store_migrations.py``).

Not modelled here: the FTS5 substring indexes on ``results.smiles`` / ``results.sequence`` and the
triggers that keep them (``textindex.py``, revision v0.1.0.c); schema comparisons leave their
tables out (``textindex.is_index_table``).

Times are stored as naive UTC. JSON columns hold plain JSON values (dicts, lists, numbers).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Alembic revision that these models correspond to (the newest file in migrations/versions).
HEAD_REVISION = "v0.1.0.e"

RUN_STATUSES = ("running", "finished", "failed", "cancelled")
TRAINING_STATUSES = ("running", "finished", "failed", "cancelled")
DOCKING_STATUSES = ("running", "finished", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


_JSON = JSON(none_as_null=True)


class Base(DeclarativeBase):
    pass


class ProjectInfoRow(Base):
    """One row: the project itself."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String, nullable=False)  # "LOGOS Desktop 0.1.0"
    last_written_by: Mapped[str] = mapped_column(String, nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)


class InputRow(Base):
    """An input structure, stored whole and addressed by the SHA-256 of its bytes."""

    __tablename__ = "inputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    fmt: Mapped[str] = mapped_column(String, nullable=False)
    name: Mapped[str] = mapped_column(String, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class ModelRow(Base):
    """A model file used by a run (GGUF), with its quantisation, adapter and base model."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    quant: Mapped[str | None] = mapped_column(String)
    adapter: Mapped[str | None] = mapped_column(Text)
    base: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class RunRow(Base):
    """One generation run: the prompt exactly as sent and everything needed to repeat it."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String, nullable=False, index=True)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    params: Mapped[dict] = mapped_column(_JSON, nullable=False)
    seed: Mapped[int | None] = mapped_column(Integer)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    versions: Mapped[dict] = mapped_column(_JSON, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String, nullable=False, default="running")
    error: Mapped[str | None] = mapped_column(Text)


class RunInputRow(Base):
    """The inputs of a run, in the order they were given."""

    __tablename__ = "run_inputs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    input_id: Mapped[int] = mapped_column(ForeignKey("inputs.id", ondelete="RESTRICT"), nullable=False,
                                          index=True)


class ResultRowORM(Base):
    """One generated (or imported) candidate: the columns the results table filters and sorts on.

    The bulky parts (record text, parsed objects, CIF, reasons, all scores) live in
    ``result_payloads`` so that a scan over every result reads as few pages as possible.
    """

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)  # order within the run
    task: Mapped[str] = mapped_column(String, nullable=False)  # copied from the run, for filtering
    smiles: Mapped[str | None] = mapped_column(Text, index=True)  # canonical SMILES (sorting)
    sequence: Mapped[str | None] = mapped_column(Text)
    valid: Mapped[bool] = mapped_column(Boolean, nullable=False)
    ppl: Mapped[float | None] = mapped_column(Float, index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("results.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, index=True)

    __table_args__ = (
        Index("ix_results_run_idx", "run_id", "idx"),
        Index("ix_results_task_valid", "task", "valid"),
    )


class ResultPayloadRow(Base):
    """The bulky part of a result, one row per result."""

    __tablename__ = "result_payloads"

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    record: Mapped[str] = mapped_column(Text, nullable=False)  # the generated text as decoded
    objects: Mapped[dict | list | None] = mapped_column(_JSON)  # parsed objects
    cif: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list] = mapped_column(_JSON, nullable=False)
    scores: Mapped[dict] = mapped_column(_JSON, nullable=False)  # every score, numeric or not


class ResultScoreRow(Base):
    """Numeric scores of a result, one row each, so they can be filtered and sorted with an index."""

    __tablename__ = "result_scores"

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)

    # WITHOUT ROWID: the primary key is the table, one b-tree less to write per score.
    # (name, value, result_id): a sort on a score walks this index in order, ties broken by id.
    __table_args__ = (Index("ix_result_scores_name_value_result", "name", "value", "result_id"),
                      {"sqlite_with_rowid": False})


class ResultTagRow(Base):
    """User tags on results."""

    __tablename__ = "result_tags"

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String, primary_key=True)

    __table_args__ = (Index("ix_result_tags_tag", "tag"),)


class TrainingRunRow(Base):
    """A fine-tuning run: base model, configuration, the rows it learnt from, the model it made."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    output_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    config: Mapped[dict] = mapped_column(_JSON, nullable=False)
    versions: Mapped[dict] = mapped_column(_JSON, nullable=False)
    n_examples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    metrics: Mapped[dict | None] = mapped_column(_JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String, nullable=False, default="running")
    error: Mapped[str | None] = mapped_column(Text)


class TrainingExampleRow(Base):
    """Which results a training run learnt from."""

    __tablename__ = "training_examples"

    training_run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"),
                                                 primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)


class DockingRowORM(Base):
    """One docking run: candidates judged against a receptor with AutoDock Vina.

    The receptor file is stored whole in ``inputs`` (content-addressed); the box, the settings,
    the library versions and what receptor preparation removed are kept with it, so that a pose
    can be traced to exactly what made it. ``run_id`` is the generation run whose results were
    docked (or the ``dock`` run that the docked ligands were stored in), if any.
    """

    __tablename__ = "dockings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    receptor_input_id: Mapped[int] = mapped_column(ForeignKey("inputs.id", ondelete="RESTRICT"), nullable=False,
                                                   index=True)
    receptor_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    receptor_name: Mapped[str] = mapped_column(String, nullable=False)
    box: Mapped[dict] = mapped_column(_JSON, nullable=False)  # {"center", "size", "source"}
    settings: Mapped[dict] = mapped_column(_JSON, nullable=False)  # exhaustiveness, n_poses, seed, cpus, ...
    versions: Mapped[dict] = mapped_column(_JSON, nullable=False)  # vina, meeko, ... versions
    report: Mapped[dict] = mapped_column(_JSON, nullable=False)  # removed residues, summary lines
    reference: Mapped[dict | None] = mapped_column(_JSON)  # the reference ligand (and its own docking)
    failures: Mapped[list] = mapped_column(_JSON, nullable=False)  # [{"result_id", "smiles", "message"}]
    summary: Mapped[dict | None] = mapped_column(_JSON)  # docked, failed, mean -Vina, ...
    status: Mapped[str] = mapped_column(String, nullable=False, default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)


class PoseRowORM(Base):
    """A docked pose of a result: its rank and Vina score in one docking, the pose itself
    (molblock in the receptor's frame), its RMSD to the reference ligand, PoseBusters' checks and
    ProLIF's interactions."""

    __tablename__ = "poses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), nullable=False)
    docking_id: Mapped[int] = mapped_column(ForeignKey("dockings.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)  # kcal/mol
    rmsd: Mapped[float | None] = mapped_column(Float)  # Å, to the reference ligand
    molblock: Mapped[str] = mapped_column(Text, nullable=False)
    checks: Mapped[dict | None] = mapped_column(_JSON)  # {"passed", "failures": [{"check", "reason"}], "n_checks"}
    interactions: Mapped[list | None] = mapped_column(_JSON)

    __table_args__ = (Index("ix_poses_result_docking_rank", "result_id", "docking_id", "rank"),)


metadata = Base.metadata
