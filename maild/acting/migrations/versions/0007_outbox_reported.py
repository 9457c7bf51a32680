"""loop guard and bounces (92659c9): outbox.reported

Revision 0007.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("reported", sa.Boolean(), nullable=False,
                                      server_default=sa.text("FALSE")))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("reported")
