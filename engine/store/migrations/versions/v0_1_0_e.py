"""Docking: the ``dockings`` table (receptor, box, settings, versions, what preparation removed,
the reference ligand, failures, summary) and the ``poses`` table (every docked pose of a result,
with its Vina score, RMSD, PoseBusters checks and interactions).

New tables only: no row already in the file changes. A result's best Vina score goes into its
scores (``vina``), where the existing score index sorts and filters it.

Revision ID: v0.1.0.e
Revises: v0.1.0.d
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "v0.1.0.e"
down_revision = "v0.1.0.d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dockings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("receptor_input_id", sa.Integer, sa.ForeignKey("inputs.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("receptor_sha256", sa.String(64), nullable=False),
        sa.Column("receptor_name", sa.String, nullable=False),
        sa.Column("box", sa.JSON, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("reference", sa.JSON),
        sa.Column("failures", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_dockings_run_id", "dockings", ["run_id"])
    op.create_index("ix_dockings_receptor_input_id", "dockings", ["receptor_input_id"])
    op.create_table(
        "poses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), nullable=False),
        sa.Column("docking_id", sa.Integer, sa.ForeignKey("dockings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("rmsd", sa.Float),
        sa.Column("molblock", sa.Text, nullable=False),
        sa.Column("checks", sa.JSON),
        sa.Column("interactions", sa.JSON),
    )
    op.create_index("ix_poses_result_docking_rank", "poses", ["result_id", "docking_id", "rank"])
    op.create_index("ix_poses_docking_id", "poses", ["docking_id"])


def downgrade() -> None:
    # the docked scores stay in the results' scores (plain numbers, readable by the older program)
    op.drop_index("ix_poses_docking_id", table_name="poses")
    op.drop_index("ix_poses_result_docking_rank", table_name="poses")
    op.drop_table("poses")
    op.drop_index("ix_dockings_receptor_input_id", table_name="dockings")
    op.drop_index("ix_dockings_run_id", table_name="dockings")
    op.drop_table("dockings")
