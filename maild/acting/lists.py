"""The lists people are shown by mail: an employee's tickets and one ticket's public
conversation (``#история``), a department's queue (``#список``, the digest). Reads only,
Core statements built once, like store.py's.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from maild.acting.store import T_CHANGE, T_ENTRY, T_PERSON, T_TICKET
from maild.values import Status


@dataclass(frozen=True)
class HistoryRow:
    number: str
    department: str
    status: str
    category: str | None
    created_at: datetime
    updated_at: datetime
    subject: str


_TICKETS_OF = select(T_TICKET.c.number, T_TICKET.c.department, T_TICKET.c.status, T_TICKET.c.category,
                     T_TICKET.c.created_at, T_TICKET.c.updated_at, T_TICKET.c.subject).where(
    T_TICKET.c.requester_id == bindparam("pid")).order_by(T_TICKET.c.id.desc())


def tickets_of(conn: Connection, person_id: int, limit: int = 500) -> list[HistoryRow]:
    """A requester's tickets in every department, newest first."""
    return [HistoryRow(*row) for row in conn.execute(_TICKETS_OF.limit(limit), {"pid": person_id})]


@dataclass(frozen=True)
class PublicEntry:
    type: str               # message (the requester's side) or response (the department's)
    created_at: datetime
    author: str
    body: str
    department: str = ""    # the ticket's department when it was written (a transfer comes later)


_PUBLIC = select(T_ENTRY.c.type, T_ENTRY.c.created_at, T_PERSON.c.name, T_PERSON.c.email, T_ENTRY.c.body
                 ).select_from(T_ENTRY.outerjoin(T_PERSON, T_ENTRY.c.author_id == T_PERSON.c.id)).where(
    T_ENTRY.c.ticket_id == bindparam("tid"), T_ENTRY.c.type.in_(("message", "response")),
    T_ENTRY.c.unauthenticated.is_(False)).order_by(T_ENTRY.c.id)


def public_conversation(conn: Connection, ticket_id: int) -> list[PublicEntry]:
    """What the requester may see of a ticket: messages and responses, never internal
    notes, events or mail refused as unauthenticated."""
    moves = conn.execute(_DEPARTMENT_MOVES, {"tid": ticket_id}).all()
    current = conn.execute(select(T_TICKET.c.department).where(T_TICKET.c.id == ticket_id)).scalar() or ""

    def department_at(moment: datetime) -> str:
        later = [m for m in moves if m.at > moment]
        return later[0].old if later and later[0].old else current

    return [PublicEntry(row.type, row.created_at, row.name or row.email or "", row.body, department_at(row.created_at))
            for row in conn.execute(_PUBLIC, {"tid": ticket_id})]


_DEPARTMENT_MOVES = select(T_CHANGE.c.at, T_CHANGE.c.old, T_CHANGE.c.new).where(
    T_CHANGE.c.ticket_id == bindparam("tid"), T_CHANGE.c.field == "department").order_by(T_CHANGE.c.id)


@dataclass(frozen=True)
class QueueRow:
    """A line of a department's queue, as ``#list`` mails it back."""
    number: str
    subject: str
    status: str
    priority: str
    assignee: str | None
    created_at: datetime
    requester: str
    updated_at: datetime
    respond_by: datetime | None = None          # the deadlines' clock (deciding/deadlines.py)
    resolve_by: datetime | None = None
    responded_at: datetime | None = None
    paused_minutes: int | None = None


_QUEUE = select(T_TICKET.c.number, T_TICKET.c.subject, T_TICKET.c.status, T_TICKET.c.priority,
                T_TICKET.c.assignee, T_TICKET.c.created_at, T_PERSON.c.email, T_TICKET.c.updated_at,
                T_TICKET.c.respond_by, T_TICKET.c.resolve_by, T_TICKET.c.responded_at,
                T_TICKET.c.paused_minutes).select_from(
    T_TICKET.outerjoin(T_PERSON, T_TICKET.c.requester_id == T_PERSON.c.id)).where(
    T_TICKET.c.department == bindparam("dept"))


def queue(conn: Connection, department: str, assignee: str | None = None,
          closed_too: bool = False, limit: int = 200) -> list[QueueRow]:
    """A department's tickets: the open ones (not closed) oldest first, as a queue is
    worked; with ``closed_too`` all of them, newest first."""
    query = _QUEUE.order_by(T_TICKET.c.id.desc() if closed_too else T_TICKET.c.id)
    if not closed_too:
        query = query.where(T_TICKET.c.status != Status.CLOSED)
    if assignee is not None:
        query = query.where(T_TICKET.c.assignee == assignee)
    return [QueueRow(*row) for row in conn.execute(query.limit(limit), {"dept": department})]
