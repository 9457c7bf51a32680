"""What "мои заявки" reads of the database, on a connection that refuses writes: the
person's own tickets and the public conversation of one — exactly what ``#история`` mails
(acting/lists.py), never internal notes, never anyone else's.

The web process never makes the database: until the worker has made the embedded SQLite
file, nobody has tickets. Failure: a database that is away or has no schema is
``Unavailable`` (the page says to ask by mail, ``#история``).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from maild.acting import db, lists, store
from maild.values import TicketRef


class Unavailable(Exception):
    pass


@dataclass(frozen=True)
class Conversation:
    ticket: TicketRef
    entries: tuple[lists.PublicEntry, ...]


class Records:
    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None

    def _ready(self) -> Engine | None:
        if self._engine is None:
            path = db.sqlite_file(self.url)
            if path is not None and not path.exists():
                return None             # not made yet: nobody has tickets
            self._engine = db.make_engine(self.url)
        return self._engine

    def tickets(self, address: str) -> list[lists.HistoryRow]:
        engine = self._ready()
        if engine is None:
            return []
        try:
            with db.read_only(engine) as conn:
                person = store.person_ref(conn, address)
                return lists.tickets_of(conn, person.id) if person is not None else []
        except SQLAlchemyError as exc:
            raise Unavailable(db.cause(exc)) from None

    def conversation(self, address: str, number: str) -> Conversation | None:
        """None when the ticket is not there or not the person's (the page says the same)."""
        engine = self._ready()
        if engine is None:
            return None
        try:
            with db.read_only(engine) as conn:
                person = store.person_ref(conn, address)
                ticket = store.ticket_by_number(conn, number) if person is not None else None
                if ticket is None or person is None or ticket.requester_id != person.id:
                    return None
                return Conversation(ticket, tuple(lists.public_conversation(conn, ticket.id)))
        except SQLAlchemyError as exc:
            raise Unavailable(db.cause(exc)) from None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
