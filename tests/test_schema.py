"""schema.sql is the schema of record: the mapped models must describe exactly it."""
from __future__ import annotations

import threading

from sqlalchemy import event, inspect

from maild.acting import db, lists, search, store
from maild.acting.models import Base


def _kind(type_, dialect) -> str:
    """A type's category as both databases see it: INT, VARCHAR(n), TEXT, TIME or BOOL."""
    text = type_.compile(dialect=dialect).upper()
    if "CHAR" in text:
        return text.replace("CHARACTER VARYING", "VARCHAR")
    for kind in ("INT", "TEXT", "BOOL"):
        if kind in text:
            return kind
    if "TIME" in text or "DATE" in text:
        return "TIME"
    return text


def test_models_match_schema_sql(db_url):
    engine = db.make_engine(db_url)
    db.init_schema(engine)
    db.init_schema(engine)                     # again: `maild serve` runs it on every start
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) == set(Base.metadata.tables) | {db.VERSION_TABLE} | set(
        search.tables(engine.dialect.name))
    for name, table in Base.metadata.tables.items():
        extra = search.POSTGRESQL_COLUMNS.get(name) if engine.dialect.name == "postgresql" else None
        columns = {c["name"]: c for c in inspector.get_columns(name) if c["name"] != extra}
        assert list(columns) == [c.name for c in table.columns], name
        for column in table.columns:
            found = columns[column.name]
            # SQLite reports its INTEGER PRIMARY KEY (the rowid) as nullable; it is not.
            rowid = (column.primary_key and engine.dialect.name == "sqlite"
                     and _kind(column.type, engine.dialect) == "INT")
            if not rowid:
                assert found["nullable"] == column.nullable, f"{name}.{column.name} nullability"
            assert _kind(found["type"], engine.dialect) == _kind(column.type, engine.dialect), (
                f"{name}.{column.name}: {found['type']} vs {column.type}")
        pk = inspector.get_pk_constraint(name)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], name
        indexes = {i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                   for i in inspector.get_indexes(name) if i["name"] not in search.POSTGRESQL_INDEXES}
        declared = {i.name: (tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes}
        assert indexes == declared, name
        fks = {(tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys(name)}
        declared_fks = {((fk.parent.name,), fk.column.table.name) for fk in table.foreign_keys}
        assert fks == declared_fks, name
    engine.dispose()


def test_ticket_numbers_unique_with_concurrent_writers(db_url):
    engine = db.make_engine(db_url)
    db.init_schema(engine)
    got: list[int] = []
    errors: list[BaseException] = []

    def writer():
        try:
            for _ in range(15):
                with engine.begin() as conn:
                    got.append(store.next_number(conn, "OSA"))
        except BaseException as exc:   # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, 61))
    with engine.begin() as conn:
        assert store.next_number(conn, "DAB") == 1
    engine.dispose()


def test_every_lookup_of_the_pipeline_uses_an_index(tmp_path):
    """The cost per message must not grow with the number of tickets: no table scans in
    any statement the pipeline runs for a message (checked with SQLite's query plans)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    db.init_schema(engine)
    executed: list[tuple[str, tuple]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: executed.append((sql, params)))
    with engine.begin() as conn:
        store.duplicate_of(conn, "x@y")
        store.ticket_by_number(conn, "OSA-000001")
        store.ticket_by_message_ids(conn, ("a@b", "c@d"))
        store.person_ref(conn, "a@torex.ru")           # the planner's lookup
        from maild.acting.models import now
        store.rename_person(conn, store.add_person(conn, "a@torex.ru", "A", now()), "B", now())
        store.next_number(conn, "OSA")
        store.next_number(conn, "OSA")
        store.first_message(conn, 1)                     # staff commands
        lists.queue(conn, "OSA")
        lists.queue(conn, "OSA", assignee="petrov", closed_too=True)
        from maild.acting.models import now
        store.count_budgeted(conn, now(), recipient="ivan@torex.ru")        # the loop guard
        store.count_budgeted(conn, now(), ticket_id=1)
        lookups = [(sql, params) for sql, params in executed
                   if sql.lstrip().upper().startswith(("SELECT", "UPDATE"))]
        assert len(lookups) >= 7
        for sql, params in lookups:
            plan = " / ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "SCAN" not in plan, f"{sql}: {plan}"
    engine.dispose()


def test_db_init_brings_an_older_database_up_to_date(db_url):
    """A database made before a column was added gets it from ``db init``, data intact: now
    through the revisions (maild/migrations). Here one from before revisions were kept, as a
    maild of 847f03d left it (revision 0004, no tickets.filed_by), which is recognised first."""
    from maild.acting import migrate
    engine = db.make_engine(db_url)
    migrate.upgrade(engine, "0004")
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {db.VERSION_TABLE}"))
        conn.execute(text("INSERT INTO tickets (number, department, subject, status, source, created_at, "
                          "updated_at) VALUES ('OSA-000001', 'OSA', 'старая', 'open', 'email', "
                          "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    assert "filed_by" not in {c["name"] for c in inspect(engine).get_columns("tickets")}
    assert migrate.init(engine)[0].startswith("stamped 0004:")
    assert migrate.init(engine) == [f"up to date (revision {db.SCHEMA_REVISION})"]
    db.init_schema(engine)                     # and `maild serve` starts on it
    assert "filed_by" in {c["name"] for c in inspect(engine).get_columns("tickets")}
    with engine.begin() as conn:
        assert conn.execute(text("SELECT subject, filed_by FROM tickets")).all() == [("старая", None)]
    engine.dispose()


def test_the_senders_poll_uses_its_index_even_after_an_analyze(tmp_path):
    """The sender asks for due mail every poll. SQLite's statistics of an outbox whose rows are
    all 'sent' (what ANALYZE or PRAGMA optimize leave) made it scan the table for that, a cost
    that grows with every mail ever sent (found with bench/preload.py)."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from maild.config import RelayConfig
    from maild.sending.relay import Relay
    engine = db.make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    db.init_schema(engine)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 3000) "
            "INSERT INTO outbox (id, kind, sender, recipient, subject, message_id, raw, status, next_attempt_at, "
            "created_at) SELECT n, 'ack', 'a@torex.ru', 'b@torex.ru', 's', 'm' || n, 'x', 'sent', ?, ? FROM seq",
            (at.isoformat(" "), at.isoformat(" ")))
        conn.exec_driver_sql("ANALYZE")
    executed: list[tuple[str, tuple]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: executed.append((sql, params)))
    with Session(engine) as session:
        assert Relay(RelayConfig(host="relay.torex.ru"), tmp_path / "outbox", "maild.test").due(session, 200) == []
    with engine.begin() as conn:
        polls = [(sql, params) for sql, params in executed if sql.lstrip().upper().startswith("SELECT")]
        assert len(polls) == 1
        for sql, params in polls:
            plan = " / ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "outbox_due" in plan and "SCAN outbox" not in plan, f"{sql}: {plan}"
    engine.dispose()
