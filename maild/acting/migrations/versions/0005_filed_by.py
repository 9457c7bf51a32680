"""staff commands by mail (fbc0d77): tickets.filed_by

Revision 0005; the first column schema.sql added with ALTER TABLE ... ADD COLUMN IF NOT EXISTS.
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("filed_by", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("filed_by")
