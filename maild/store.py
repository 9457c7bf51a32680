"""Queries the pipeline and the CLI share; each one uses an index (see schema.sql)."""
from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from .models import Entry, Inbound, Outbox, Person, ThreadId, Ticket, now

NUMBER_WIDTH = 6


def ticket_number(department: str, n: int) -> str:
    return f"{department}-{n:0{NUMBER_WIDTH}d}"


def next_number(session: Session, department: str) -> int:
    """The next number of a department, from the database: safe with several writers
    (the UPDATE takes the row lock until commit)."""
    session.execute(text("INSERT INTO ticket_counters (department, last_number) VALUES (:d, 0) "
                         "ON CONFLICT (department) DO NOTHING"), {"d": department})
    return session.execute(text("UPDATE ticket_counters SET last_number = last_number + 1 "
                                "WHERE department = :d RETURNING last_number"),
                           {"d": department}).scalar_one()


def inbound_by_spool_id(session: Session, spool_id: str) -> Inbound | None:
    return session.scalars(select(Inbound).where(Inbound.spool_id == spool_id)).first()


def inbound_by_key(session: Session, key: str) -> Inbound | None:
    return session.scalars(select(Inbound).where(Inbound.message_key == key)).first()


def ticket_by_number(session: Session, number: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.number == number)).first()


def ticket_by_message_ids(session: Session, ids: tuple[str, ...]) -> Ticket | None:
    """The ticket one of these Message-IDs belongs to; our own outbound ids win, then the
    most recent reference (the end of References is the parent)."""
    if not ids:
        return None
    rows = session.execute(select(ThreadId.message_id, ThreadId.ticket_id, ThreadId.outbound)
                           .where(ThreadId.message_id.in_(ids))).all()
    if not rows:
        return None
    order = {mid: i for i, mid in enumerate(ids)}
    best = max(rows, key=lambda r: (r.outbound, order.get(r.message_id, -1)))
    return session.get(Ticket, best.ticket_id)


def person(session: Session, email: str, name: str = "") -> Person:
    """The person with this address, created on first contact; the name follows changes."""
    email = email.strip().lower()
    found = session.scalars(select(Person).where(Person.email == email)).first()
    if found is None:
        found = Person(email=email, name=name or "")
        session.add(found)
        session.flush()
    elif name and name != found.name:
        found.name = name
        found.updated_at = now()
    return found


def tickets(session: Session, department: str | None = None, status: str | None = None,
            limit: int | None = None) -> list[Ticket]:
    query = select(Ticket).order_by(Ticket.id)
    if department:
        query = query.where(Ticket.department == department.upper())
    if status:
        query = query.where(Ticket.status == status)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def ticket_with_entries(session: Session, number: str) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(Ticket.number == number)
        .options(selectinload(Ticket.entries).selectinload(Entry.attachments))).first()


def outbox_rows(session: Session, status: str | None = None) -> list[Outbox]:
    query = select(Outbox).order_by(Outbox.id).options(selectinload(Outbox.ticket))
    if status:
        query = query.where(Outbox.status == status)
    return list(session.scalars(query))
