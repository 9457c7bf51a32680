"""conversations (80f0f82): closed_at, full_body, attachments.stored, participants, ticket_links

Revision 0002. full_body (NOT NULL, no default) is added empty-allowed, filled from body (before
quote stripping, body was the whole text) and then made NOT NULL: SQLite cannot change a column
in place, so that last step is a batch table copy there.
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column("tickets", sa.Column("closed_at", TIME))
    op.add_column("entries", sa.Column("full_body", sa.Text()))
    op.execute("UPDATE entries SET full_body = body")
    with op.batch_alter_table("entries") as batch:
        batch.alter_column("full_body", existing_type=sa.Text(), nullable=False)
    op.add_column("attachments", sa.Column("stored", sa.Boolean(), nullable=False,
                                           server_default=sa.text("TRUE")))
    op.create_table(
        "participants",
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("person_id", sa.BigInteger(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "person_id"),
    )
    op.create_table(
        "ticket_links",
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("linked_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "linked_id"),
    )


def downgrade() -> None:
    op.drop_table("ticket_links")
    op.drop_table("participants")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("stored")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("full_body")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("closed_at")
