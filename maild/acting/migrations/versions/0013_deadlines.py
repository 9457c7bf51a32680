"""deadlines (issue 17): tickets.respond_by, resolve_by, responded_at, paused_minutes, escalated

Tickets already there get no deadlines (their terms were never said); a ticket's clock
starts with the first change that counts one (a category set, a transfer, #срок).
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TIME = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    for name in ("respond_by", "resolve_by", "responded_at"):
        op.add_column("tickets", sa.Column(name, TIME))
    op.add_column("tickets", sa.Column("paused_minutes", sa.Integer()))
    op.add_column("tickets", sa.Column("escalated", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index("tickets_open_due", "tickets", ["status", "escalated"])


def downgrade() -> None:
    op.drop_index("tickets_open_due", "tickets")
    with op.batch_alter_table("tickets") as batch:
        for name in ("escalated", "paused_minutes", "responded_at", "resolve_by", "respond_by"):
            batch.drop_column(name)
