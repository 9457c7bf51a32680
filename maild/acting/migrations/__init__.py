"""maild's Alembic environment: ``env.py``, ``script.py.mako`` and ``versions/`` (one file a revision).

Found by its package path (``maild.acting.migrate.MIGRATIONS``); run through ``maild.acting.migrate``, never with an
alembic.ini. See docs/migrations.md.
"""
