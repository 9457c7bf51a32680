"""staff mail must prove its sender (847f03d): entries.unauthenticated

Revision 0004.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("unauthenticated", sa.Boolean(), nullable=False,
                                       server_default=sa.text("FALSE")))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("unauthenticated")
