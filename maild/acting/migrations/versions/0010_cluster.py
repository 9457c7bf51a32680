"""two nodes on one PostgreSQL (issue 16): tables spool (the cluster's spool), nodes, job_runs

Nothing to fill: a database that gets these is a single node until a second one starts.
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIME = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "spool",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("not_before", TIME, nullable=False),
        sa.Column("node", sa.String(100), nullable=False, server_default=sa.text("''")),
        sa.Column("claim", sa.String(40)),
        sa.Column("lease_until", TIME),
        sa.Column("done_at", TIME),
        sa.Column("reason", sa.Text(), nullable=False, server_default=sa.text("''")),
    )
    op.create_index("spool_due", "spool", ["state", "not_before"])
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("seen_at", TIME, nullable=False),
        sa.Column("facts", sa.Text(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(400), primary_key=True),
        sa.Column("node", sa.String(100), nullable=False),
        sa.Column("at", TIME, nullable=False),
    )


def downgrade() -> None:
    for table in ("job_runs", "nodes", "spool"):
        op.drop_table(table)
