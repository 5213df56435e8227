"""An index on results.smiles: pages sorted by SMILES walk it instead of sorting every match.

The results table sorts on any column. Sorted by SMILES, a page had to read and sort every
matching row (100k results: about 100 ms with a text filter); with the index the walk stops after
one page of matches. No table or column changes.

Revision ID: v0.1.0.d
Revises: v0.1.0.c
Create Date: 2026-11-26
"""

from alembic import op

revision = "v0.1.0.d"
down_revision = "v0.1.0.c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_results_smiles", "results", ["smiles"])


def downgrade() -> None:
    op.drop_index("ix_results_smiles", table_name="results")
