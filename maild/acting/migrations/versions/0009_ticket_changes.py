"""tickets' history for the reports (c59b45e): table ticket_changes, filled for the tickets already there

Revision 0009, the schema of the last release made without Alembic (21a9272). The tickets that
exist get the history their row can tell: opened (in their present department) and, if
closed, closed at closed_at with their resolution; earlier reopenings and transfers are not
known. (schema.sql did this on every ``db init`` for tickets with no history; once is enough.)
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.TIMESTAMP(timezone=True)

BACKFILL = (
    "INSERT INTO ticket_changes (ticket_id, at, field, old, new, detail, department) "
    "SELECT id, closed_at, 'status', NULL, 'closed', resolution, department FROM tickets "
    "WHERE closed_at IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM ticket_changes c WHERE c.ticket_id = tickets.id)",
    "INSERT INTO ticket_changes (ticket_id, at, field, old, new, detail, department) "
    "SELECT id, created_at, 'opened', NULL, department, NULL, department FROM tickets "
    "WHERE NOT EXISTS (SELECT 1 FROM ticket_changes c WHERE c.ticket_id = tickets.id AND c.field = 'opened')",
)


def backfill(conn) -> None:
    """History for the tickets that have none (also what tests give tickets they insert bare)."""
    for statement in BACKFILL:
        conn.execute(sa.text(statement))


def upgrade() -> None:
    op.create_table(
        "ticket_changes",
        sa.Column("id", ID, sa.Identity(always=False), primary_key=True),
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("field", sa.String(20), nullable=False),
        sa.Column("old", sa.String(30)),
        sa.Column("new", sa.String(30)),
        sa.Column("detail", sa.String(30)),
        sa.Column("department", sa.String(10), nullable=False),
    )
    op.create_index("ticket_changes_at", "ticket_changes", ["at"])
    op.create_index("ticket_changes_ticket", "ticket_changes", ["ticket_id"])
    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("ticket_changes")
