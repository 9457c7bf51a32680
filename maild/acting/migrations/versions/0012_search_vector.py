"""search on PostgreSQL (issue 17): stored search_vector columns instead of expression indexes

A search walks the newest entries and tests each, or reads the GIN index, as the planner
chooses; with an expression index every tested row was stemmed again (a rare word took
213 ms at 100,000 entries, 10 with the column). Adding a stored column rewrites the table:
about 5 s for 100,000 entries. SQLite: nothing (its FTS5 tables hold stems already).
"""
from alembic import op
from sqlalchemy import text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_FIELDS = (("entries", "body"), ("tickets", "subject"))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, field in _FIELDS:
        conn.execute(text(f"DROP INDEX IF EXISTS {table}_search"))
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
                          f"GENERATED ALWAYS AS (to_tsvector('russian', {field})) STORED"))
        conn.execute(text(f"CREATE INDEX {table}_search ON {table} USING GIN (search_vector)"))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, field in _FIELDS:
        conn.execute(text(f"DROP INDEX IF EXISTS {table}_search"))
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN search_vector"))
        conn.execute(text(f"CREATE INDEX {table}_search ON {table} USING GIN (to_tsvector('russian', {field}))"))
