"""profile changes wait for confirmation (69677f5): people.pending_profile

Revision 0008.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("people", sa.Column("pending_profile", sa.Text(), nullable=False,
                                      server_default=sa.text("''")))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("pending_profile")
