"""self-service profile and transfers (bcb27bf): people.phone, people.office, people.company, tickets.transferred_from

Revision 0006.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("transferred_from", sa.String(10)))
    op.add_column("people", sa.Column("phone", sa.String(100), nullable=False, server_default=sa.text("''")))
    op.add_column("people", sa.Column("office", sa.String(100), nullable=False, server_default=sa.text("''")))
    op.add_column("people", sa.Column("company", sa.String(200), nullable=False, server_default=sa.text("''")))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        for column in ("company", "office", "phone"):
            batch.drop_column(column)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("transferred_from")
