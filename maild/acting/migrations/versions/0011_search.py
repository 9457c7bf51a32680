"""full-text search (issue 17): indexes of entries' bodies and tickets' subjects

PostgreSQL: GIN indexes on to_tsvector('russian', ...) (0012 replaces them with stored
columns). SQLite: FTS5 tables of their stems, filled here from what the database holds.
The statements are this revision's own: search.py may move on, a revision may not.
"""
from alembic import op
from sqlalchemy import text

from maild.acting import search

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_DDL = {
    "sqlite": [f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(stems, content='', "
               "tokenize='unicode61 remove_diacritics 0')" for name in ("entries_fts", "tickets_fts")],
    "postgresql": ["CREATE INDEX IF NOT EXISTS entries_search ON entries USING GIN (to_tsvector('russian', body))",
                   "CREATE INDEX IF NOT EXISTS tickets_search ON tickets USING GIN (to_tsvector('russian', subject))"],
}
_DROP = {"sqlite": ["DROP TABLE IF EXISTS entries_fts", "DROP TABLE IF EXISTS tickets_fts"],
         "postgresql": ["DROP INDEX IF EXISTS entries_search", "DROP INDEX IF EXISTS tickets_search"]}


def upgrade() -> None:
    conn = op.get_bind()
    for statement in _DDL[conn.dialect.name]:
        conn.execute(text(statement))
    search.fill(conn)


def downgrade() -> None:
    conn = op.get_bind()
    for statement in _DROP[conn.dialect.name]:
        conn.execute(text(statement))
