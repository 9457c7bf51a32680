"""${message}

Revision ${up_revision} (after ${down_revision | comma,n}), ${create_date}.
Write it for both databases: plain ``op`` calls where SQLite can do the change in place
(add a column, create a table or index), ``op.batch_alter_table`` where it cannot (change or
drop a column). Then bring schema.sql and maild/models.py to the same state and set
db.SCHEMA_REVISION to ${repr(up_revision)}; tests/test_migrations.py checks they agree.
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
