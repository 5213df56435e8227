"""The first project schema (LOGOS Desktop 0.1.0).

Revision ID: v0.1.0.a
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "v0.1.0.a"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("last_written_by", sa.String, nullable=False),
        sa.Column("notes", sa.Text),
    )
    op.create_table(
        "inputs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("fmt", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("quant", sa.String),
        sa.Column("adapter", sa.Text),
        sa.Column("base", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_models_sha256", "models", ["sha256"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task", sa.String, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("seed", sa.Integer),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="RESTRICT")),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_task", "runs", ["task"])
    op.create_index("ix_runs_model_id", "runs", ["model_id"])
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("input_id", sa.Integer, sa.ForeignKey("inputs.id", ondelete="RESTRICT"), nullable=False),
    )
    op.create_index("ix_run_inputs_input_id", "run_inputs", ["input_id"])
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("task", sa.String, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("objects", sa.JSON),
        sa.Column("smiles", sa.Text),
        sa.Column("sequence", sa.Text),
        sa.Column("cif", sa.Text),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("ppl", sa.Float),
        sa.Column("notes", sa.Text),
        sa.Column("rating", sa.Integer),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("results.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_results_run_idx", "results", ["run_id", "idx"])
    op.create_index("ix_results_task_valid", "results", ["task", "valid"])
    op.create_index("ix_results_parent_id", "results", ["parent_id"])
    op.create_table(
        "result_scores",
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_index("ix_result_scores_name_value", "result_scores", ["name", "value"])
    op.create_table(
        "result_tags",
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String, primary_key=True),
    )
    op.create_index("ix_result_tags_tag", "result_tags", ["tag"])
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("base_model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="RESTRICT")),
        sa.Column("output_model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="RESTRICT")),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("n_examples", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "training_examples",
        sa.Column("training_run_id", sa.Integer, sa.ForeignKey("training_runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_training_examples_result_id", "training_examples", ["result_id"])


def downgrade() -> None:
    for table in ("training_examples", "training_runs", "result_tags", "result_scores", "results",
                  "run_inputs", "runs", "models", "inputs", "project"):
        op.drop_table(table)
