"""Schema revisions with Alembic, for ``maild db upgrade`` and ``maild db init`` (docs/migrations.md).

Only those commands import this module, and so Alembic: ``maild serve`` checks the revision
with one query and gives a fresh database schema.sql itself (``db.init_schema``).

The revisions are ``maild/acting/migrations/versions/``, found by the package path; the Alembic
configuration is made here, so no alembic.ini is needed. Every change runs on one connection in
one transaction: on SQLite that is ``BEGIN IMMEDIATE`` (the write lock from the start) with
foreign keys off while batch mode copies a table, checked before a change is committed; on
PostgreSQL an advisory lock makes a second upgrade wait and then find the work done.

A database from before Alembic has no ``alembic_version``. Its tables, columns and indexes are
compared with those of each revision up to ``LAST_UNVERSIONED`` (built once in an in-memory
SQLite from the revisions themselves); the one it matches is stamped and the rest applied.

For developers: ``python -m maild.acting.migrate revision "what changes"`` writes the next revision
file from ``script.py.mako``; ``history`` lists them; ``stamp REV DB_URL`` marks a database
whose revision an admin has established by hand.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection, Engine

from maild.acting import db

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# The newest revision a maild from before Alembic could have made: schema.sql as of the last
# such release (21a9272). An unversioned database is one of the revisions up to this one.
LAST_UNVERSIONED = "0009"

# A table's shape for recognising a revision: its column names and index names.
Shape = dict[str, tuple[frozenset[str], frozenset[str]]]


class MigrationError(Exception):
    """The database cannot be brought to the newest revision as it is (worded for the admin)."""


def alembic_config(connection: Connection | None = None, on_version_apply=()) -> Config:
    """Alembic's configuration, made in code: the migrations' folder and, for env.py, the
    connection to work on (see migrations/env.py)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    cfg.attributes["on_version_apply"] = on_version_apply
    return cfg


@functools.cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    current = scripts().get_current_head()
    if current is None:     # the package ships its revisions: none is a broken install
        raise MigrationError("no schema revisions found under maild/acting/migrations")
    return current


def revision(rev: str) -> Script:
    """One revision's script; ``.module`` is its loaded file."""
    return scripts().get_revision(rev)


def current(conn: Connection) -> str | None:
    """The database's revision, or None when it has none (empty, or from before Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One connection, one transaction for the whole change (see the module's docstring)."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # Only outside a transaction does this take effect: on the driver's connection,
            # before our BEGIN IMMEDIATE. Batch mode drops and recreates a table that others
            # refer to, which SQLite refuses while it enforces foreign keys.
            driver = conn.connection.driver_connection
            assert driver is not None       # a checked-out connection has its driver's
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                db.lock_for_schema_change(conn)
                yield conn
        finally:
            if sqlite:
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute("PRAGMA foreign_keys=ON")


def _check_references(conn: Connection) -> None:
    """SQLite, after a change made with foreign keys off: every reference still points somewhere
    (only then: the check reads every row)."""
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise MigrationError(f"the change would leave rows whose references point nowhere "
                                 f"(first: {tuple(broken[0])}); nothing was changed")


def upgrade(engine: Engine, target: str = "head", *, create: bool = False) -> list[str]:
    """Bring the database to ``target``: the lines say what was done, one per revision.

    An unversioned database with maild's tables is recognised and stamped first. An empty one
    runs every revision, or with ``create`` (``maild db init``) gets schema.sql stamped at the
    newest revision, as ``maild serve`` gives it."""
    _check_schema_revision()
    lines: list[str] = []

    def applied(ctx, step, heads, run_args) -> None:
        script = revision(step.up_revision_id)
        lines.append(f"applied {script.revision}: {script.doc}")

    with _migrating(engine) as conn:
        found = current(conn)
        if found is None and db.maild_tables(conn):
            found = recognise(conn)
            MigrationContext.configure(conn).stamp(scripts(), found)
            lines.append(f"stamped {found}: the database predates schema revisions and has "
                         f"exactly revision {found}'s tables, columns and indexes")
        elif found is None and create:
            db.create_schema(conn)
            return [f"created the schema from schema.sql, stamped at revision {db.SCHEMA_REVISION}"]
        try:
            command.upgrade(alembic_config(conn, [applied]), target)
        except CommandError as exc:
            raise MigrationError(_unknown(found, exc)) from None
        if lines:
            _check_references(conn)
        if target == "head" and (missing := sorted(set(db.schema_tables()) - db.maild_tables(conn))):
            # Stamped as current but tables gone: "up to date" would send the admin round in a loop.
            raise MigrationError(f"the database is stamped at revision {current(conn)} but has lost the tables "
                                 f"{', '.join(missing)}: it is damaged; restore it from a backup "
                                 "(docs/operations.md#restore)")
    return lines or [f"up to date (revision {found})"]


def downgrade(engine: Engine, target: str) -> list[str]:
    """Take the database back to ``target`` (a revision or "base"): for developers and tests."""
    lines: list[str] = []

    def reverted(ctx, step, heads, run_args) -> None:
        lines.append(f"reverted {step.up_revision_id}")

    with _migrating(engine) as conn:
        found = current(conn)
        try:
            command.downgrade(alembic_config(conn, [reverted]), target)
        except CommandError as exc:
            raise MigrationError(_unknown(found, exc)) from None
        if lines:
            _check_references(conn)
    return lines or [f"already at {target}"]


def init(engine: Engine) -> list[str]:
    """``maild db init``: create (from schema.sql) or upgrade; safe to run again."""
    return upgrade(engine, create=True)


def _unknown(found: str | None, exc: CommandError) -> str:
    if found is not None and found not in {s.revision for s in scripts().walk_revisions()}:
        return (f"the database is at revision {found}, which this maild does not know "
                f"(its newest is {head()}): was it upgraded by a newer maild?")
    return f"cannot upgrade: {exc}"


def _check_schema_revision() -> None:
    if head() != db.SCHEMA_REVISION:
        raise MigrationError(f"maild/acting/migrations' newest revision is {head()} but db.SCHEMA_REVISION, the "
                             f"revision schema.sql is, says {db.SCHEMA_REVISION}: they must agree")


# -- databases from before Alembic ------------------------------------------------------------
def shape(conn: Connection, tables: set[str] | None = None) -> Shape:
    """Each table's column and index names (``tables``: only these), Alembic's own left out."""
    inspector = inspect(conn)
    return {name: (frozenset(c["name"] for c in inspector.get_columns(name)),
                   frozenset(i["name"] for i in inspector.get_indexes(name) if i["name"]))
            for name in inspector.get_table_names()
            if name != db.VERSION_TABLE and (tables is None or name in tables)}


@functools.cache
def unversioned_shapes() -> tuple[tuple[str, Shape], ...]:
    """What each revision up to LAST_UNVERSIONED looks like, oldest first: built by running
    the revisions in an in-memory SQLite (names are the same on every database)."""
    revisions = [s.revision for s in scripts().iterate_revisions(LAST_UNVERSIONED, "base")][::-1]
    engine = create_engine("sqlite://")
    shapes = []
    try:
        with engine.connect() as conn:
            for rev in revisions:
                command.upgrade(alembic_config(conn), rev)
                shapes.append((rev, shape(conn)))
    finally:
        engine.dispose()
    return tuple(shapes)


def recognise(conn: Connection) -> str:
    """The revision an unversioned database is at, by its tables, columns and indexes."""
    shapes = unversioned_shapes()
    known = set().union(*(s for _, s in shapes))
    found = shape(conn, known)
    for rev, expected in reversed(shapes):
        if found == expected:
            return rev
    rev, expected = min(reversed(shapes), key=lambda item: len(_differences(found, item[1])))
    raise MigrationError(
        f"the database has no schema revision and matches none up to {LAST_UNVERSIONED}; the "
        f"closest is {rev} ({revision(rev).doc.split(':')[0]}), which it differs from in: "
        f"{'; '.join(_differences(found, expected))}. Bring it to one revision's shape by hand, "
        f"or check that this is a maild database")


def _differences(found: Shape, expected: Shape) -> list[str]:
    out = []
    for table in sorted(set(found) | set(expected)):
        if table not in found:
            out.append(f"no table {table}")
            continue
        if table not in expected:
            out.append(f"extra table {table}")
            continue
        (columns, indexes), (want_columns, want_indexes) = found[table], expected[table]
        out += [f"no column {table}.{c}" for c in sorted(want_columns - columns)]
        out += [f"extra column {table}.{c}" for c in sorted(columns - want_columns)]
        out += [f"no index {i}" for i in sorted(want_indexes - indexes)]
        out += [f"extra index {i}" for i in sorted(indexes - want_indexes)]
    return out


# -- for developers ---------------------------------------------------------------------------
def _main(argv: list[str]) -> int:
    usage = ("usage: python -m maild.acting.migrate revision MESSAGE   (a new revision file, after the newest)\n"
             "       python -m maild.acting.migrate history            (the revisions, oldest first)\n"
             "       python -m maild.acting.migrate stamp REV DB_URL   (mark a database as at REV, nothing else)")
    if argv[:1] == ["revision"] and len(argv) == 2:
        rev_id = f"{int(head()) + 1:04d}"
        script = command.revision(alembic_config(), message=argv[1], rev_id=rev_id)
        assert script is not None and not isinstance(script, list)     # one head, one new file
        print(f"wrote {script.path}: now write upgrade() and downgrade(), change schema.sql and "
              f"models.py to match, and set db.SCHEMA_REVISION = {rev_id!r}")
        return 0
    if argv[:1] == ["stamp"] and len(argv) == 3:
        engine = db.make_engine(argv[2])
        try:
            with _migrating(engine) as conn:
                MigrationContext.configure(conn).stamp(scripts(), argv[1])
        finally:
            engine.dispose()
        print(f"stamped {argv[1]}")
        return 0
    if argv == ["history"]:
        for script in reversed(list(scripts().walk_revisions())):
            print(f"{script.revision}  {script.doc}")
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
