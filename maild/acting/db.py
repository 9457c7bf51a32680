"""Connecting to the database; creating it from ``schema.sql`` and checking its revision.

SQLite (the default) runs in WAL mode with ``synchronous=FULL`` (a commit is on disk when
it returns: the spool file is deleted right after) and takes the write lock at ``BEGIN``
(``BEGIN IMMEDIATE``), so two processes never deadlock upgrading a read lock. PostgreSQL
goes through the same code.

Upgrading an older database is Alembic's (``maild/migrate.py``, ``maild db upgrade``); this
module only creates a fresh one and tells whether a database is at the revision the code needs.
"""
from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maild.acting import search
from maild.config import PROJECT_DIR, ConfigError

SCHEMA_FILE = PROJECT_DIR / "schema.sql"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written now; the work is to be retried later."""


class OutageLog:
    """Log a database outage when it starts and when it ends, not on every poll (a poll is
    a fraction of a second: an outage would fill the log)."""

    def __init__(self, log: logging.Logger):
        self.log = log
        self.down = False

    def state(self, up: bool, why: str = "", exc: BaseException | None = None) -> None:
        """``why`` is what waits; the line gives the driver's words, not SQL (issue 14)."""
        said = f"{why}: {cause(exc)}" if exc is not None else why
        if up and self.down:
            self.log.warning("the database is reachable again")
        elif not up and not self.down:
            self.log.warning("%s (said once; the next line is when it is back)", said)
        if not up and exc is not None:
            self.log.debug("%s", exc)
        self.down = not up


def cause(exc: BaseException) -> str:
    """The driver's first line, without SQLAlchemy's SQL, parameters and links."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(inner).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(inner).__name__
    # libpq: "connection failed: connection to server at ... failed: FATAL:  <the reason>"
    return " ".join(first.rpartition("FATAL:")[2].split()) if "FATAL:" in first else first


def is_conflict(exc: BaseException) -> bool:
    """A transaction the server rolled back because another one got in its way (SQLSTATE class
    40: a deadlock, a serialization failure; two nodes writing at once): done again, it goes
    through. Not an outage."""
    inner = exc.orig if isinstance(exc, DBAPIError) else None
    return str(getattr(inner, "sqlstate", "") or "").startswith("40")


def is_unavailable(exc: BaseException) -> bool:
    """Errors that say 'the database is not there' rather than 'this message is bad'."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, OperationalError):
        return not is_conflict(exc)
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def check_url(url: str) -> None:
    """A database URL maild can use, or one sentence saying what is wrong with it (issue 14:
    ``--db nonsense`` printed a 45-line traceback)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):     # ValueError: a port that is no number
        raise ConfigError(f"the database URL {url!r} is not a URL SQLAlchemy reads; for instance "
                          "sqlite:///var/maild.db or postgresql+psycopg://user:password@host/maild") from None
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        # Each process would have a database of its own, gone when it ends: mail would be lost.
        raise ConfigError(f"the database URL {url!r} names no file: an in-memory database forgets every "
                          "ticket when the command ends; give a file, sqlite:////path/maild.db") from None
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ConfigError(f"the database URL {parsed.render_as_string(hide_password=True)} needs a driver for "
                          f"{parsed.drivername!r} that is not installed; maild works with sqlite:/// and "
                          "postgresql+psycopg://") from None


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def make_engine(url: str, lease: int | None = None) -> Engine:
    """``lease``: PostgreSQL sessions of a node of a cluster (the daemon's), see _pg_session."""
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None   # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # A reader (``read_only``) takes no write lock: it must not hold up the worker.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, connect_args=_pg_session(url, lease))


def _pg_session(url: str, lease: int | None) -> dict[str, object]:
    """The server ends what a dead or stopped node leaves open (issue 16): a transaction idle
    for half a lease (its row locks would hold the other nodes up), and a connection whose
    machine is gone (keepalives, about 25 s)."""
    if lease is None:
        return {}
    options = (f"-c idle_in_transaction_session_timeout={lease * 500} -c tcp_keepalives_idle=10 "
               "-c tcp_keepalives_interval=5 -c tcp_keepalives_count=3")
    given = make_url(url).query.get("options")     # the URL's own (a search_path) are kept: these replace them
    given = " ".join(given) if isinstance(given, tuple) else given
    return {"options": f"{given} {options}" if given else options}


def _driver(conn: Connection) -> DBAPIConnection:
    raw = conn.connection.dbapi_connection
    assert raw is not None      # a checked-out connection always has its driver's
    return raw


@contextlib.contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection that refuses every write (SQLite ``query_only``, PostgreSQL ``READ
    ONLY``), rolled back at the end: what the dry run decides on."""
    conn = engine.connect().execution_options(read_only=True)
    sqlite = engine.dialect.name == "sqlite"
    try:
        if sqlite:      # outside any transaction, on the driver's connection
            _driver(conn).execute("PRAGMA query_only = ON")
        else:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield conn
    finally:
        try:
            conn.rollback()
            if sqlite:  # the pooled connection goes back able to write
                _driver(conn).execute("PRAGMA query_only = OFF")
        finally:
            conn.close()


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def schema_statements(dialect: str, schema: str | None = None) -> list[str]:
    sql = schema if schema is not None else SCHEMA_FILE.read_text(encoding="utf-8")
    sql = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    if dialect == "sqlite":
        sql = sql.replace("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "INTEGER PRIMARY KEY")
        # Same storage in SQLite, but a type name its reflection (and so the schema test) knows.
        sql = sql.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMP").replace(" BYTEA ", " BLOB ")
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", sql) if s.strip()]


# The revision of maild/migrations that schema.sql is. A database made from schema.sql is stamped
# with it, and ``maild serve`` starts only on a database at it; tests/test_migrations.py checks
# that it is the newest revision and that the revisions build exactly schema.sql.
SCHEMA_REVISION = "0014"
VERSION_TABLE = "alembic_version"          # Alembic's, in Alembic's layout (see create_schema)
_SCHEMA_LOCK = 0x6D61696C64                # pg_advisory_xact_lock key: one schema change at a time


class SchemaOutdated(Exception):
    """The database is not at SCHEMA_REVISION: the admin runs ``maild db upgrade``."""


class ForeignDatabase(Exception):
    """A SQLite file holding others' tables: maild does not make its schema among them."""


class SchemaMissing(Exception):
    """An empty database maild was not to create by itself (not the SQLite file): ``maild db init``."""


def schema_tables(schema: str | None = None) -> list[str]:
    """The tables schema.sql creates."""
    return [m.group(1) for statement in schema_statements("postgresql", schema)
            if (m := re.match(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", statement, re.I))]


def maild_tables(conn) -> set[str]:
    """Which of schema.sql's tables the database has (others' tables are none of ours)."""
    return set(inspect(conn).get_table_names()) & set(schema_tables())


def database_revision(conn) -> str | None:
    """The revision the database is stamped with; None without a version table (or row)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def lock_for_schema_change(conn) -> None:
    """PostgreSQL: hold off a second process changing the schema until this transaction ends
    (SQLite's BEGIN IMMEDIATE already has the write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database (or one in memory)."""
    parsed = make_url(url)
    database = parsed.database if parsed.drivername.startswith("sqlite") else None
    return Path(database) if database and database != ":memory:" else None


def init_schema(engine: Engine, create: bool = True, only_into_empty: bool = False) -> bool:
    """What every command that uses the database runs first, without Alembic (only the db
    commands import it): a database at SCHEMA_REVISION is left alone; an empty one gets
    schema.sql stamped with it when ``create`` (True: it was made), SchemaMissing otherwise;
    any other raises SchemaOutdated naming the command that upgrades it."""
    with engine.begin() as conn:
        if database_revision(conn) == SCHEMA_REVISION:
            return False
        lock_for_schema_change(conn)
        found = database_revision(conn)       # again: another process may have just made it
        if found == SCHEMA_REVISION:
            return False
        if found is None and not maild_tables(conn):
            if not create:
                raise SchemaMissing("the database has no maild schema yet: run 'maild db init'")
            others = sorted(inspect(conn).get_table_names())
            if only_into_empty and others:
                raise ForeignDatabase(", ".join(others[:5]) + (" ..." if len(others) > 5 else ""))
            create_schema(conn)
            return True
    if found is not None and found.isdigit() and int(found) > int(SCHEMA_REVISION):
        raise SchemaOutdated(f"the database schema is at revision {found}, newer than this maild's "
                             f"{SCHEMA_REVISION}: it was upgraded by a newer maild; run that one")
    if found is None:
        raise SchemaOutdated("the database was made before maild kept schema revisions: run "
                             "'maild db upgrade' once (it recognises the schema and upgrades it)")
    raise SchemaOutdated(f"the database schema is at revision {found}, this maild works with "
                         f"{SCHEMA_REVISION}: run 'maild db upgrade'")


def create_schema(conn) -> None:
    """schema.sql on an empty database, stamped at SCHEMA_REVISION. The version table is
    Alembic's, written here the way Alembic writes it, so the daemon need not import Alembic
    (a test checks that Alembic reads it)."""
    for statement in schema_statements(conn.dialect.name):
        conn.execute(text(statement))
    search.create(conn)     # each database's own full-text index, not in schema.sql's common SQL
    conn.execute(text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
                      f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"))
    conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:rev)"), {"rev": SCHEMA_REVISION})
