"""full-text search (issue 17): indexes of entries' bodies and tickets' subjects

PostgreSQL: GIN indexes on to_tsvector('russian', ...). SQLite: FTS5 tables of their stems,
filled here from what the database holds.
"""
from alembic import op

from maild.acting import search

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    search.create(conn)
    search.fill(conn)


def downgrade() -> None:
    search.drop(op.get_bind())
