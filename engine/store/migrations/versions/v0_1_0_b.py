"""Faster results table: bulky columns move to result_payloads; indexes for sorting.

The 100k-result benchmark showed scans over ``results`` reading every record text, parsed-objects
JSON, reasons and scores. This revision moves those columns into ``result_payloads`` (one row per
result), adds indexes on ``ppl`` and ``created_at`` for sorting, and extends the score index with
``result_id`` so a sort on a score walks the index in order with ties broken by id; the score
table becomes WITHOUT ROWID (one b-tree less to write per score).

Revision ID: v0.1.0.b
Revises: v0.1.0.a
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "v0.1.0.b"
down_revision = "v0.1.0.a"
branch_labels = None
depends_on = None

_MOVED = ("record", "objects", "cif", "reasons", "scores")


def upgrade() -> None:
    op.create_table(
        "result_payloads",
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("objects", sa.JSON),
        sa.Column("cif", sa.Text),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
    )
    op.execute("INSERT INTO result_payloads (result_id, record, objects, cif, reasons, scores) "
               "SELECT id, record, objects, cif, reasons, scores FROM results")
    with op.batch_alter_table("results") as batch:
        for name in _MOVED:
            batch.drop_column(name)
    op.create_index("ix_results_ppl", "results", ["ppl"])
    op.create_index("ix_results_created_at", "results", ["created_at"])
    _rebuild_scores(with_rowid=False)
    op.create_index("ix_result_scores_name_value_result", "result_scores", ["name", "value", "result_id"])


def _rebuild_scores(with_rowid: bool) -> None:
    op.create_table(
        "_result_scores_new",
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sqlite_with_rowid=with_rowid,
    )
    op.execute("INSERT INTO _result_scores_new (result_id, name, value) "
               "SELECT result_id, name, value FROM result_scores")
    op.drop_table("result_scores")
    op.rename_table("_result_scores_new", "result_scores")


def downgrade() -> None:
    op.drop_index("ix_result_scores_name_value_result", table_name="result_scores")
    _rebuild_scores(with_rowid=True)
    op.create_index("ix_result_scores_name_value", "result_scores", ["name", "value"])
    op.drop_index("ix_results_created_at", table_name="results")
    op.drop_index("ix_results_ppl", table_name="results")
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("record", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("objects", sa.JSON))
        batch.add_column(sa.Column("cif", sa.Text))
        batch.add_column(sa.Column("reasons", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("scores", sa.JSON, nullable=False, server_default="{}"))
    op.execute(
        "UPDATE results SET "
        + ", ".join(f"{c} = (SELECT p.{c} FROM result_payloads p WHERE p.result_id = results.id)" for c in _MOVED)
        + " WHERE id IN (SELECT result_id FROM result_payloads)")
    op.drop_table("result_payloads")
