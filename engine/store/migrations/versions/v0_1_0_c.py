"""Substring indexes: FTS5 trigram tables on results.smiles and results.sequence, kept by triggers.

``smiles~PATTERN`` and ``sequence~PATTERN`` scanned every result. This revision adds one FTS5
table per column (trigram tokenizer: case-sensitive for SMILES, case-folding for sequences) with
``results`` as its external content, so the text is not stored twice: the index holds the
trigrams of each result with that column set. Triggers on ``results`` update it on insert,
delete and change. Queries use them only to propose candidates and keep
their exact conditions (``engine/store/textindex.py``). No table or column changes.

SQLite before 3.34 (or built without FTS5) has no trigram tokenizer: the revision then creates
nothing and queries scan as before; opening such a file later with a SQLite that has it adds the
index then (``Project._ensure_text_index``).

The statements are written out here (not imported) so that this revision stays what it was when
``textindex.py`` changes; a test checks that both build the same objects.

Revision ID: v0.1.0.c
Revises: v0.1.0.b
Create Date: 2026-11-27
"""

from alembic import op

revision = "v0.1.0.c"
down_revision = "v0.1.0.b"
branch_labels = None
depends_on = None

_TABLES = ("result_smiles_fts", "result_sequence_fts")

_UPGRADE = [
    "CREATE VIRTUAL TABLE result_smiles_fts USING fts5(smiles, content='results', content_rowid='id', "
    "columnsize=0, tokenize='trigram case_sensitive 1')",
    "INSERT INTO result_smiles_fts(rowid, smiles) SELECT id, smiles FROM results WHERE smiles IS NOT NULL",
    "CREATE TRIGGER result_smiles_fts_ai AFTER INSERT ON results WHEN new.smiles IS NOT NULL BEGIN "
    "INSERT INTO result_smiles_fts(rowid, smiles) VALUES (new.id, new.smiles); END",
    "CREATE TRIGGER result_smiles_fts_ad AFTER DELETE ON results WHEN old.smiles IS NOT NULL BEGIN "
    "INSERT INTO result_smiles_fts(result_smiles_fts, rowid, smiles) VALUES ('delete', old.id, old.smiles); END",
    "CREATE TRIGGER result_smiles_fts_au AFTER UPDATE OF id, smiles ON results BEGIN "
    "INSERT INTO result_smiles_fts(result_smiles_fts, rowid, smiles) "
    "SELECT 'delete', old.id, old.smiles WHERE old.smiles IS NOT NULL; "
    "INSERT INTO result_smiles_fts(rowid, smiles) SELECT new.id, new.smiles WHERE new.smiles IS NOT NULL; END",
    "CREATE VIRTUAL TABLE result_sequence_fts USING fts5(sequence, content='results', content_rowid='id', "
    "columnsize=0, tokenize='trigram case_sensitive 0')",
    "INSERT INTO result_sequence_fts(rowid, sequence) SELECT id, sequence FROM results WHERE sequence IS NOT NULL",
    "CREATE TRIGGER result_sequence_fts_ai AFTER INSERT ON results WHEN new.sequence IS NOT NULL BEGIN "
    "INSERT INTO result_sequence_fts(rowid, sequence) VALUES (new.id, new.sequence); END",
    "CREATE TRIGGER result_sequence_fts_ad AFTER DELETE ON results WHEN old.sequence IS NOT NULL BEGIN "
    "INSERT INTO result_sequence_fts(result_sequence_fts, rowid, sequence) "
    "VALUES ('delete', old.id, old.sequence); END",
    "CREATE TRIGGER result_sequence_fts_au AFTER UPDATE OF id, sequence ON results BEGIN "
    "INSERT INTO result_sequence_fts(result_sequence_fts, rowid, sequence) "
    "SELECT 'delete', old.id, old.sequence WHERE old.sequence IS NOT NULL; "
    "INSERT INTO result_sequence_fts(rowid, sequence) SELECT new.id, new.sequence "
    "WHERE new.sequence IS NOT NULL; END",
]


def upgrade() -> None:
    from engine.store import textindex

    if not textindex.available():
        return
    for sql in _UPGRADE:
        op.execute(sql)


def downgrade() -> None:
    for table in _TABLES:
        for suffix in ("_ai", "_ad", "_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {table}")
