"""Full-text search over tickets' subjects and entries (issue 17): ``#найти`` by mail and
``maild tickets search``. Russian word forms find each other (принтеры, принтера, принтер).

- PostgreSQL: its own ``russian`` configuration: a stored generated column
  ``search_vector`` (``to_tsvector('russian', body)`` on entries, the same on tickets'
  subjects) with a GIN index; nothing to write but the rows themselves. Stored, not an
  expression index: the planner often walks the newest rows backwards and tests each one,
  and testing a stored vector is cheap where stemming the body again is not (a rare word:
  10 ms instead of 213 at 100,000 entries, docs/benchmarks.md).
- SQLite: two contentless FTS5 tables whose rowids are the entry's and the ticket's id,
  holding the stems reading/stems.py makes with the same Snowball stemmers; the writer
  (actions.py) adds a row with every entry and ticket.

Neither is in schema.sql, which both databases are built from: ``create`` adds them after it
(db.create_schema, migration 0011). Events are not searched (they are maild's own lines).
A search returns one hit a ticket, newest first, with the lines of its text that matched.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import column, text
from sqlalchemy.engine import Connection

from maild.acting.store import T_ENTRY
from maild.reading.stems import Stems, stems

# The SQLite tables FTS5 makes: the two named here and their shadow tables.
SQLITE_TABLES = tuple(f"{name}{part}" for name in ("entries_fts", "tickets_fts")
                      for part in ("", "_data", "_idx", "_docsize", "_config"))

POSTGRESQL_INDEXES = ("entries_search", "tickets_search")
POSTGRESQL_COLUMNS = {"entries": "search_vector", "tickets": "search_vector"}   # not in schema.sql


def tables(dialect: str) -> tuple[str, ...]:
    """The tables the search adds to schema.sql's in this database."""
    return SQLITE_TABLES if dialect == "sqlite" else ()


_DDL = {
    "sqlite": ["CREATE VIRTUAL TABLE IF NOT EXISTS entries_fts USING fts5(stems, content='', "
               "tokenize='unicode61 remove_diacritics 0')",
               "CREATE VIRTUAL TABLE IF NOT EXISTS tickets_fts USING fts5(stems, content='', "
               "tokenize='unicode61 remove_diacritics 0')"],
    "postgresql": [statement for table, field in (("entries", "body"), ("tickets", "subject")) for statement in (
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_vector tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('russian', {field})) STORED",
        f"CREATE INDEX IF NOT EXISTS {table}_search ON {table} USING GIN (search_vector)")],
}
_DROP = {"sqlite": ["DROP TABLE IF EXISTS entries_fts", "DROP TABLE IF EXISTS tickets_fts"],
         "postgresql": ["DROP INDEX IF EXISTS entries_search", "DROP INDEX IF EXISTS tickets_search",
                        "ALTER TABLE entries DROP COLUMN IF EXISTS search_vector",
                        "ALTER TABLE tickets DROP COLUMN IF EXISTS search_vector"]}
SEARCHED = ("message", "response", "note")      # not events
PUBLIC = ("message", "response")                # what a requester sees (lists.public_conversation)
LINES_SHOWN = 3
LINE_LENGTH = 160


def create(conn: Connection) -> None:
    for statement in _DDL[conn.dialect.name]:
        conn.execute(text(statement))


def drop(conn: Connection) -> None:
    for statement in _DROP[conn.dialect.name]:
        conn.execute(text(statement))


def fill(conn: Connection, batch: int = 2000) -> int:
    """SQLite: index what the database already holds (a database upgraded to 0011); returns
    how many rows. PostgreSQL's indexes fill themselves."""
    if conn.dialect.name != "sqlite":
        return 0
    reader, done = stems(), 0
    for table, fts, field in (("entries", "entries_fts", "body"), ("tickets", "tickets_fts", "subject")):
        last = 0
        while rows := conn.execute(text(f"SELECT id, {field} FROM {table} WHERE id > :last ORDER BY id LIMIT :n"),
                                   {"last": last, "n": batch}).all():
            conn.execute(text(f"INSERT INTO {fts} (rowid, stems) VALUES (:id, :stems)"),
                         [{"id": row[0], "stems": reader.indexed(row[1])} for row in rows])
            last, done = rows[-1][0], done + len(rows)
    return done


class Index:
    """What the writer adds to the index with each row (SQLite only: PostgreSQL's indexes
    are on the rows)."""

    _ENTRY = text("INSERT INTO entries_fts (rowid, stems) VALUES (:id, :stems)")
    _TICKET = text("INSERT INTO tickets_fts (rowid, stems) VALUES (:id, :stems)")

    def __init__(self, conn: Connection, reader: Stems | None = None):
        self.conn = conn
        self.active = conn.dialect.name == "sqlite"
        self.reader = reader or stems()

    def entry(self, entry_id: int, type_: str, body: str) -> None:
        if self.active and type_ in SEARCHED:
            self.conn.execute(self._ENTRY, {"id": entry_id, "stems": self.reader.indexed(body)})

    def ticket(self, ticket_id: int, subject: str) -> None:
        if self.active:
            self.conn.execute(self._TICKET, {"id": ticket_id, "stems": self.reader.indexed(subject)})


@dataclass(frozen=True)
class Scope:
    """Whose tickets a search looks at. Staff: their department's, notes included; an
    employee: their own, and only what they may see (messages and responses)."""
    department: str | None = None
    requester_id: int | None = None
    public_only: bool = False

    @classmethod
    def staff(cls, department: str) -> Scope:
        return cls(department=department)

    @classmethod
    def requester(cls, person_id: int) -> Scope:
        return cls(requester_id=person_id, public_only=True)


@dataclass(frozen=True)
class Hit:
    number: str
    department: str
    status: str
    subject: str
    requester: str
    at: datetime                # when the newest matching text was written
    where: str                  # subject | message | response | note
    lines: tuple[str, ...]      # the lines that matched, cut to LINE_LENGTH


@dataclass(frozen=True)
class Found:
    words: tuple[str, ...]      # the stems searched for (empty: nothing to search)
    hits: tuple[Hit, ...]
    cut: bool                   # more tickets matched than were shown


# What each query returns, typed: a plain SQL text gives SQLite's times as strings otherwise.
_RESULT = ([column(name) for name in ("id", "number", "department", "status", "subject", "requester")]
           + [column("at", T_ENTRY.c.created_at.type), column("kind"), column("body")])
_TICKET_COLUMNS = "t.id, t.number, t.department, t.status, t.subject, p.email"
_PERSON = "LEFT JOIN people p ON p.id = t.requester_id"
_MATCH = {
    "sqlite": {
        # Staff: the FTS table's matches, newest first, joined to their tickets.
        "entries": (f"SELECT {_TICKET_COLUMNS}, e.created_at, e.type, e.body FROM entries_fts f "
                    f"JOIN entries e ON e.id = f.rowid JOIN tickets t ON t.id = e.ticket_id {_PERSON} "
                    "WHERE entries_fts MATCH :q AND {where} ORDER BY f.rowid DESC LIMIT :n"),
        # An employee: their few tickets first, then each entry's FTS row (CROSS JOIN keeps
        # SQLite to that order; FTS first reads every match of a common word: 50 ms, not 1).
        "own entries": (f"SELECT {_TICKET_COLUMNS}, e.created_at, e.type, e.body FROM tickets t "
                        "CROSS JOIN entries e ON e.ticket_id = t.id CROSS JOIN entries_fts f ON f.rowid = e.id "
                        f"{_PERSON} WHERE entries_fts MATCH :q AND {{where}} ORDER BY e.id DESC LIMIT :n"),
        "tickets": (f"SELECT {_TICKET_COLUMNS}, t.created_at, 'subject', t.subject FROM tickets_fts f "
                    f"JOIN tickets t ON t.id = f.rowid {_PERSON} WHERE tickets_fts MATCH :q AND {{where}} "
                    "ORDER BY f.rowid DESC LIMIT :n"),
        "own tickets": (f"SELECT {_TICKET_COLUMNS}, t.created_at, 'subject', t.subject FROM tickets t "
                        f"CROSS JOIN tickets_fts f ON f.rowid = t.id {_PERSON} WHERE tickets_fts MATCH :q "
                        "AND {where} ORDER BY t.id DESC LIMIT :n"),
    },
    "postgresql": {
        "entries": (f"SELECT {_TICKET_COLUMNS}, e.created_at, e.type, e.body FROM entries e "
                    f"JOIN tickets t ON t.id = e.ticket_id {_PERSON} "
                    "WHERE e.search_vector @@ plainto_tsquery('russian', :q) AND {where} "
                    "ORDER BY e.id DESC LIMIT :n"),
        "tickets": (f"SELECT {_TICKET_COLUMNS}, t.created_at, 'subject', t.subject FROM tickets t {_PERSON} "
                    "WHERE t.search_vector @@ plainto_tsquery('russian', :q) AND {where} "
                    "ORDER BY t.id DESC LIMIT :n"),
    },
}
# PostgreSQL's planner finds the requester's tickets first by itself.
_MATCH["postgresql"].update({"own entries": _MATCH["postgresql"]["entries"],
                             "own tickets": _MATCH["postgresql"]["tickets"]})


def search(conn: Connection, words: str, scope: Scope, limit: int = 20, reader: Stems | None = None) -> Found:
    """The tickets in ``scope`` whose subject or one entry holds every word of ``words``
    (in any form), newest first, at most ``limit``."""
    reader = reader or stems()
    wanted = reader.query(words)
    if not wanted:
        return Found((), (), False)
    dialect = conn.dialect.name
    q = " ".join(f'"{w}"' for w in wanted) if dialect == "sqlite" else " ".join(reader.query_words(words))
    where, params = _where(scope)
    # Entries of one ticket often match together: read several a ticket, group them here.
    rows: list = []
    for kind, types in (("entries", PUBLIC if scope.public_only else SEARCHED), ("tickets", None)):
        clause = where + (f" AND e.type IN ({', '.join(repr(t) for t in types)})" if types else "")
        if kind == "entries" and scope.public_only:
            clause += " AND e.unauthenticated = :no"
        shape = f"own {kind}" if scope.requester_id is not None else kind
        sql = text(_MATCH[dialect][shape].format(where=clause)).columns(*_RESULT)
        rows += conn.execute(sql, {**params, "q": q, "n": limit * 5, "no": False}).all()
    rows.sort(key=lambda r: r[6], reverse=True)
    hits: dict[int, Hit] = {}
    for row in rows:
        if row[0] not in hits:
            hits[row[0]] = Hit(row[1], row[2], row[3], row[4], row[5] or "", row[6], row[7],
                               matching_lines(row[8], set(wanted), reader))
    ordered = tuple(hits.values())
    return Found(tuple(wanted), ordered[:limit], len(ordered) > limit)


def _where(scope: Scope) -> tuple[str, dict[str, object]]:
    clauses, params = ["1 = 1"], dict[str, object]()
    if scope.department is not None:
        clauses.append("t.department = :department")
        params["department"] = scope.department
    if scope.requester_id is not None:
        clauses.append("t.requester_id = :requester")
        params["requester"] = scope.requester_id
    return " AND ".join(clauses), params


def matching_lines(body: str, wanted: set[str], reader: Stems) -> tuple[str, ...]:
    """The lines of ``body`` that hold a word searched for, the first LINES_SHOWN of them."""
    found = []
    for line in body.splitlines():
        if line.strip() and wanted & set(reader.of(line)):
            line = " ".join(line.split())
            found.append(line if len(line) <= LINE_LENGTH else line[:LINE_LENGTH - 1] + "…")
            if len(found) == LINES_SHOWN:
                break
    return tuple(found)
