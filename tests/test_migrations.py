"""Schema revisions (Alembic, maild/migrations): they build exactly schema.sql, older databases
(made by a revision, or by a maild from before Alembic) reach the newest revision with their data,
and the db commands say what they did. On SQLite and, with MAILD_TEST_PG, PostgreSQL."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.types import NullType

from maild.acting import db, migrate, search
from maild.admin.cli import main

from conftest import DB_KINDS, IN_CI, PG_URL, PROJECT, pg_schema

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# schema.sql as the last release made without Alembic had it (git show 21a9272:schema.sql):
# CREATE ... IF NOT EXISTS, then the ALTER TABLE ... ADD COLUMN IF NOT EXISTS lines and the
# ticket_changes backfill that its `db init` ran on every start.
RELEASE_SCHEMA = FIXTURES / "schema-21a9272.sql"
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
HEAD = db.SCHEMA_REVISION
UP_TO_DATE = f"up to date (revision {HEAD})"


def applied(first: int) -> list[str]:
    """The start of the lines an upgrade prints from revision ``first`` to the newest."""
    return [f"applied {n:04d}" for n in range(first, int(HEAD) + 1)]


@pytest.fixture(params=DB_KINDS)
def new_db(request, tmp_path):
    """Makes empty databases of one kind: SQLite files, or fresh PostgreSQL schemas (as conftest's db_url)."""
    if IN_CI and not PG_URL:
        pytest.fail("CI must set MAILD_TEST_PG so the migration tests also run on PostgreSQL")
    engines = []
    with contextlib.ExitStack() as stack:
        def make(name: str = "maild"):
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / name / 'maild.db'}"
            else:
                url = stack.enter_context(pg_schema())
            engine = db.make_engine(url)
            engines.append(engine)
            return engine
        yield make
        for engine in engines:
            engine.dispose()


# -- what the schema is, as reflection tells it ------------------------------------------------
def _default(value) -> str | None:
    return None if value is None else re.sub(r"\s+", " ", str(value)).strip()


def described(engine) -> dict:
    """Tables, columns (type, nullability, default, identity), primary keys, indexes, unique and
    foreign keys, as the database reports them, Alembic's version table included. Column order
    is left out: PostgreSQL adds a column at the end, so a migrated entries.full_body follows
    inbound_id (nothing reads columns by position)."""
    inspector = inspect(engine)
    dialect = engine.dialect
    out = {}
    for name in sorted(inspector.get_table_names()):
        pk = inspector.get_pk_constraint(name)
        columns = {}
        for c in inspector.get_columns(name):
            # An FTS5 table's columns have no type (NullType), and nothing to compile.
            type_ = "untyped" if isinstance(c["type"], NullType) else c["type"].compile(dialect=dialect)
            nullable = c["nullable"]
            # SQLite reports its INTEGER PRIMARY KEY (the rowid) as nullable or not depending on
            # the spelling ("INTEGER PRIMARY KEY" or "INTEGER NOT NULL, PRIMARY KEY (id)"); it is
            # never NULL either way (the inserts without an id in the tests show it is the rowid).
            if dialect.name == "sqlite" and pk["constrained_columns"] == [c["name"]] and type_ == "INTEGER":
                nullable = "rowid"
            columns[c["name"]] = (type_, nullable, _default(c.get("default")), c.get("identity"))
        out[name] = {
            "columns": columns,
            "pk": (tuple(pk["constrained_columns"]), pk.get("name")),
            "indexes": {i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                        for i in inspector.get_indexes(name)},
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
            "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]), f.get("name") or "")
                                   for f in inspector.get_foreign_keys(name)),
            "checks": sorted(_default(c["sqltext"]) for c in inspector.get_check_constraints(name)),
        }
    return out


def rows(engine, *tables: str) -> dict[str, list[tuple]]:
    """What the tables hold, but PostgreSQL's search vectors (derived, added by 0012)."""
    with engine.connect() as conn:
        return {t: [tuple(v for k, v in r._mapping.items() if k != "search_vector")
                    for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in tables}


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def apply_release_schema(engine) -> None:
    """What the last release's db.init_schema did with its schema.sql (SQLite has no ADD COLUMN
    IF NOT EXISTS: it looked the column up first)."""
    with engine.begin() as conn:
        for statement in db.schema_statements(engine.dialect.name, RELEASE_SCHEMA.read_text(encoding="utf-8")):
            added = re.match(r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+)", statement, re.I)
            if added and engine.dialect.name == "sqlite":
                table, column = added.groups()
                if column in {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table})")}:
                    continue
                statement = statement.replace(" IF NOT EXISTS", "", 1)
            conn.execute(text(statement))


def insert(conn, table: str, **values) -> int | None:
    names = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    returning = " RETURNING id" if "id" in columns(conn, table) else ""
    result = conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({marks}){returning}"), values)
    return result.scalar_one() if returning else None


def seed_first_revision(conn) -> None:
    """Rows with the columns revision 0001 has (and what later made required): a person, a closed-later ticket, its
    message, an attachment, the thread id, the inbound record and the acknowledgement."""
    person = insert(conn, "people", email="ivan@torex.ru", name="Иван", created_at=T0, updated_at=T0)
    ticket = insert(conn, "tickets", number="OSA-000001", department="OSA", subject="Не печатает принтер",
                    status="open", requester_id=person, source="email", created_at=T0, updated_at=T0)
    inbound = insert(conn, "inbound", spool_id="s1", message_key="m1@torex.ru", mail_from="ivan@torex.ru",
                     rcpt_to="osticket@torex.ru", peer="127.0.0.1", received_at=T0, archive_path="a/s1",
                     size=100, subject="Не печатает принтер", ticket_id=ticket, disposition="new-ticket",
                     reason="names no ticket of ours")
    body = "Принтер на 3 этаже не печатает."
    later = {"full_body": body} if "full_body" in columns(conn, "entries") else {}   # NOT NULL from 0002
    entry = insert(conn, "entries", ticket_id=ticket, type="message", author_id=person, created_at=T0,
                   body=body, inbound_id=inbound, **later)
    insert(conn, "attachments", entry_id=entry, filename="скан.pdf", content_type="application/pdf",
           size=10, sha256="0" * 64)
    insert(conn, "thread_ids", message_id="m1@torex.ru", ticket_id=ticket, outbound=False)
    insert(conn, "ticket_counters", department="OSA", last_number=1)
    insert(conn, "outbox", ticket_id=ticket, kind="ack", sender="osticket@torex.ru", recipient="ivan@torex.ru",
           subject="[#OSA-000001] Не печатает принтер", message_id="ack1@maild", raw="Subject: x\r\n\r\nx",
           status="sent", next_attempt_at=T0, created_at=T0, sent_at=T0)


FIRST_TABLES = ("people", "tickets", "inbound", "entries", "attachments", "thread_ids", "ticket_counters", "outbox")


def old_columns(snapshot: dict[str, list[tuple]], engine, before: dict[str, list[str]]) -> dict:
    """The rows of ``snapshot`` cut to the columns they had (``before``), read again now."""
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT {', '.join(before[t])} FROM {t} ORDER BY 1"))]
                for t in snapshot}


def column_lists(engine, tables) -> dict[str, list[str]]:
    inspector = inspect(engine)
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in tables}


def assert_usable(engine) -> None:
    """The upgraded database takes the pipeline's writes: ids come from the rowid / identity."""
    from sqlalchemy.orm import Session

    from maild.acting import store
    from maild.acting.models import Entry, Person, Ticket
    with Session(engine) as s, s.begin():
        person = Person(email="new@torex.ru", name="Новый")
        s.add(person)
        s.flush()
        ticket = Ticket(number=f"OSA-{store.next_number(s.connection(), 'OSA'):06d}", department="OSA",
                        subject="после обновления", status="open", source="email", requester_id=person.id)
        s.add(ticket)
        s.flush()
        s.add(Entry(ticket_id=ticket.id, type="message", author_id=person.id, body="x", full_body="x"))
        s.flush()
        assert person.id is not None and ticket.id is not None and ticket.number == "OSA-000002"


# -- 1. the revisions build schema.sql -----------------------------------------------------------
def test_schema_revision_is_the_newest_revision():
    """schema.sql says which revision it is; the revisions are one line, numbered 0001, 0002..."""
    assert migrate.head() == db.SCHEMA_REVISION
    revisions = list(reversed(list(migrate.scripts().walk_revisions())))
    assert [s.revision for s in revisions] == [f"{n:04d}" for n in range(1, len(revisions) + 1)]
    assert [s.down_revision for s in revisions] == [None] + [s.revision for s in revisions[:-1]]
    assert migrate.LAST_UNVERSIONED == "0009"


def test_revisions_from_the_first_to_head_build_exactly_schema_sql(new_db):
    from_schema = new_db("schema")
    db.init_schema(from_schema)                       # what db init and serve do on an empty database
    migrated = new_db("revisions")
    assert migrate.upgrade(migrated, "0001") == [f"applied 0001: {migrate.revision('0001').doc}"]
    lines = migrate.upgrade(migrated)
    assert [line.split(":")[0] for line in lines] == applied(2)
    want, got = described(from_schema), described(migrated)
    assert set(got) == set(want) == set(db.schema_tables()) | {db.VERSION_TABLE} | set(search.tables(
        from_schema.dialect.name))
    for table in want:                                # one table at a time, for a readable failure
        assert got[table] == want[table], table
    # The version table db.create_schema writes by hand is Alembic's, and Alembic reads it.
    with from_schema.connect() as conn:
        assert migrate.current(conn) == db.SCHEMA_REVISION
    with migrated.connect() as conn:
        assert db.database_revision(conn) == db.SCHEMA_REVISION
    db.init_schema(migrated)                          # serve accepts the migrated database
    for engine in (from_schema, migrated):
        with engine.begin() as conn:                  # ids are the rowid / an identity on both
            person = insert(conn, "people", email="a@torex.ru", name="", created_at=T0, updated_at=T0)
            assert person == 1


def test_downgrade_to_base_and_back(new_db):
    engine = new_db()
    migrate.upgrade(engine)
    assert migrate.downgrade(engine, "base") == [f"reverted {n:04d}" for n in range(int(HEAD), 0, -1)]
    assert set(inspect(engine).get_table_names()) == {db.VERSION_TABLE}
    migrate.upgrade(engine)
    fresh = new_db("fresh")
    db.init_schema(fresh)
    assert described(engine) == described(fresh)


# -- 2. a database the last release made ---------------------------------------------------------
def test_a_database_of_the_last_release_is_stamped_and_keeps_its_data(new_db):
    engine = new_db()
    apply_release_schema(engine)
    apply_release_schema(engine)                      # as its `db init` ran on every start
    with engine.begin() as conn:
        seed_first_revision(conn)
        conn.execute(text("UPDATE people SET phone = '1234', office = '305'"))
        conn.execute(text("UPDATE tickets SET status = 'closed', closed_at = :t, resolution = 'resolved', "
                          "filed_by = 'petrov'"), {"t": T0})
        conn.execute(text("UPDATE entries SET full_body = 'Принтер...\n\n> quoted', unauthenticated = TRUE"))
        conn.execute(text("UPDATE outbox SET reported = TRUE"))
        insert(conn, "ticket_changes", ticket_id=1, at=T0, field="opened", new="OSA", department="OSA")
    tables = FIRST_TABLES + ("ticket_changes",)
    before_columns = column_lists(engine, tables)
    before = rows(engine, *tables)
    assert db.VERSION_TABLE not in inspect(engine).get_table_names()
    with pytest.raises(db.SchemaOutdated, match="maild db upgrade"):
        db.init_schema(engine)                        # serve: no Alembic, so it asks for the command

    lines = migrate.upgrade(engine)
    assert lines[0] == ("stamped 0009: the database predates schema revisions and has exactly "
                        "revision 0009's tables, columns and indexes")
    assert [line.split(":")[0] for line in lines[1:]] == applied(10)
    assert old_columns(before, engine, before_columns) == before
    with engine.connect() as conn:
        assert migrate.current(conn) == db.SCHEMA_REVISION
    assert migrate.upgrade(engine) == [UP_TO_DATE]
    db.init_schema(engine)
    fresh = new_db("fresh")
    db.init_schema(fresh)
    assert described(engine) == described(fresh)
    assert_usable(engine)


# -- 3. a database of the first revision -------------------------------------------------------
def test_a_database_of_the_first_revision_upgrades_with_its_data(new_db):
    engine = new_db()
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        seed_first_revision(conn)
    before_columns = column_lists(engine, FIRST_TABLES)
    before = rows(engine, *FIRST_TABLES)
    with pytest.raises(db.SchemaOutdated, match="at revision 0001"):
        db.init_schema(engine)

    lines = migrate.upgrade(engine)
    assert [line.split(":")[0] for line in lines] == applied(2)
    assert old_columns(before, engine, before_columns) == before
    with engine.connect() as conn:
        one = lambda sql: conn.execute(text(sql)).one()  # noqa: E731
        # The new columns as their revisions fill them.
        assert one("SELECT full_body, unauthenticated FROM entries") == ("Принтер на 3 этаже не печатает.", False)
        assert one("SELECT stored FROM attachments") == (True,)
        assert one("SELECT phone, office, company, pending_profile FROM people") == ("", "", "", "")
        assert one("SELECT closed_at, resolution, filed_by, transferred_from FROM tickets") == (None,) * 4
        assert one("SELECT reported FROM outbox") == (False,)
        # 0009 gave the ticket the history its row tells: opened, in its department.
        assert conn.execute(text("SELECT ticket_id, field, new, department FROM ticket_changes")).all() \
            == [(1, "opened", "OSA", "OSA")]
    fresh = new_db("fresh")
    db.init_schema(fresh)
    assert described(engine) == described(fresh)
    assert_usable(engine)


def test_an_unversioned_database_of_an_older_revision_is_recognised(new_db):
    """A maild from before Alembic that never ran a later `db init` (here: as of 847f03d)."""
    engine = new_db()
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {db.VERSION_TABLE}"))
        seed_first_revision(conn)
    lines = migrate.upgrade(engine)
    assert lines[0].startswith("stamped 0004:")
    assert [line.split(":")[0] for line in lines[1:]] == applied(5)
    assert rows(engine, "people")["people"][0][:3] == (1, "ivan@torex.ru", "Иван")


def test_an_unversioned_database_that_matches_no_revision_is_left_alone(new_db):
    engine = new_db()
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {db.VERSION_TABLE}"))
        conn.execute(text("ALTER TABLE people ADD COLUMN phone VARCHAR(100) NOT NULL DEFAULT ''"))
    before = described(engine)
    with pytest.raises(migrate.MigrationError) as raised:
        migrate.upgrade(engine)
    assert "closest is 0004" in str(raised.value) and "extra column people.phone" in str(raised.value)
    assert described(engine) == before


# -- 4. the commands -----------------------------------------------------------------------------
def _cli(engine, tmp_path, *args):
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "--db", url, *args])


def test_db_upgrade_on_an_up_to_date_database_says_so_and_changes_nothing(new_db, tmp_path):
    engine = new_db()
    result = _cli(engine, tmp_path, "db", "init")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"created the schema from schema.sql, stamped at revision {HEAD}"
    with engine.begin() as conn:
        seed_first_revision(conn)
    tables = FIRST_TABLES + ("ticket_changes", db.VERSION_TABLE)
    schema, data = described(engine), rows(engine, *tables)
    result = _cli(engine, tmp_path, "db", "upgrade")
    assert result.exit_code == 0 and result.output == UP_TO_DATE + "\n", result.output
    result = _cli(engine, tmp_path, "db", "init")
    assert result.exit_code == 0 and result.output.startswith(UP_TO_DATE + "\nschema ready in ")
    assert described(engine) == schema and rows(engine, *tables) == data


def test_db_commands_on_a_database_they_cannot_upgrade_exit_78(new_db, tmp_path):
    engine = new_db()
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {db.VERSION_TABLE}"))
        conn.execute(text("ALTER TABLE people ADD COLUMN phone VARCHAR(100) NOT NULL DEFAULT ''"))
    for command in ("upgrade", "init"):
        result = _cli(engine, tmp_path, "db", command)
        assert result.exit_code == 78 and "matches none" in result.output, result.output
        assert "Traceback" not in result.output
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {db.VERSION_TABLE} (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text(f"INSERT INTO {db.VERSION_TABLE} VALUES ('9999')"))
    result = _cli(engine, tmp_path, "db", "upgrade")
    assert result.exit_code == 78 and "revision 9999, which this maild does not know" in result.output


def test_serve_refuses_a_database_behind_the_code(new_db, tmp_path):
    engine = new_db()
    migrate.upgrade(engine, "0008")
    result = _cli(engine, tmp_path, "serve")
    assert result.exit_code == 78 and "at revision 0008" in result.output and "maild db upgrade" in result.output


def test_db_upgrade_as_a_command_on_a_fresh_sqlite_file(tmp_path):
    path = tmp_path / "new" / "maild.db"
    command = [sys.executable, "-m", "maild", "--data-dir", str(tmp_path / "data"), "--db", f"sqlite:///{path}",
               "db", "upgrade"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"applied {s.revision}: {s.doc}"
                                        for s in reversed(list(migrate.scripts().walk_revisions()))]
    assert "alembic" not in done.stderr.lower()          # Alembic's own INFO lines are not repeated
    again = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT, env=env, timeout=120)
    assert again.returncode == 0 and again.stdout == UP_TO_DATE + "\n"


def test_the_daemon_does_not_load_alembic(tmp_path):
    """serve's start (db.init_schema) creates or checks the schema with no Alembic in memory."""
    code = ("import sys\n"
            "from maild import app\nfrom maild.admin import cli\nfrom maild.acting import db\n"
            f"engine = db.make_engine('sqlite:///{tmp_path / 'd' / 'maild.db'}')\n"
            "db.init_schema(engine)\n"
            "db.init_schema(engine)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')], 'alembic loaded'\n"
            "assert 'maild.acting.migrate' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_upgraded_database_finds_what_it_held_before(new_db):
    """Revision 0011 indexes the entries and subjects already there (SQLite's FTS tables are
    filled; PostgreSQL's indexes fill themselves)."""
    engine = new_db()
    migrate.upgrade(engine, "0010")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO people (id, email, name, created_at, updated_at) "
                          "VALUES (1, 'ivan@torex.ru', '', :t, :t)"), {"t": T0})
        conn.execute(text("INSERT INTO tickets (id, number, department, subject, status, requester_id, source, "
                          "created_at, updated_at) VALUES (1, 'OSA-000001', 'OSA', 'Сканеры не видят сеть', "
                          "'open', 1, 'email', :t, :t)"), {"t": T0})
        conn.execute(text("INSERT INTO entries (ticket_id, type, author_id, created_at, body, full_body) "
                          "VALUES (1, 'message', 1, :t, 'Сканер в бухгалтерии не сканирует', '')"), {"t": T0})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        by_subject = search.search(conn, "сети", search.Scope.staff("OSA"))
        by_body = search.search(conn, "бухгалтерией", search.Scope.staff("OSA"))
    assert [(h.number, h.where) for h in by_subject.hits] == [("OSA-000001", "subject")]
    assert [(h.number, h.where) for h in by_body.hits] == [("OSA-000001", "message")]
    assert by_body.hits[0].lines == ("Сканер в бухгалтерии не сканирует",)
