"""One file per schema revision, oldest first; Alembic loads them by path (this file it skips)."""
