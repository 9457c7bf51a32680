"""rules as files (b6187fc): tickets.resolution, index outbox_recipient_kind

Revision 0003.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("resolution", sa.String(30)))
    op.create_index("outbox_recipient_kind", "outbox", ["recipient", "kind", "created_at"])


def downgrade() -> None:
    op.drop_index("outbox_recipient_kind", table_name="outbox")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("resolution")
