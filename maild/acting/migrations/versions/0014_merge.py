"""merging (issue 17): tickets.merged_into, the ticket a merged one lives on in

Nothing to fill: no ticket was merged before.
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # schema.sql's spelling on both: SQLite may add a column with a REFERENCES clause (its
    # default is NULL), PostgreSQL names the constraint as schema.sql's would be named.
    op.execute("ALTER TABLE tickets ADD COLUMN merged_into BIGINT REFERENCES tickets (id)")


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("merged_into")
