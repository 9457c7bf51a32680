"""Queries and writes on the database.

The pipeline's statements (the top half) are Core statements built once at import and run
on a ``Connection`` with parameters: building and compiling a statement per call cost ten
times the query itself. The command line's reads (the bottom half) use the ORM.
Every lookup uses an index (see schema.sql).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload

from maild.acting.models import Entry, Inbound, Outbox, Participant, Person, ThreadId, Ticket, TicketChange
from maild.values import PersonRef, TicketRef

NUMBER_WIDTH = 6


def ticket_number(department: str, n: int) -> str:
    return f"{department}-{n:0{NUMBER_WIDTH}d}"


_COUNTER_ROW = text("INSERT INTO ticket_counters (department, last_number) VALUES (:d, 0) "
                    "ON CONFLICT (department) DO NOTHING")
_COUNTER_NEXT = text("UPDATE ticket_counters SET last_number = last_number + 1 "
                     "WHERE department = :d RETURNING last_number")


def next_number(conn: Connection, department: str) -> int:
    """The next number of a department, from the database: safe with several writers
    (the UPDATE takes the row lock until commit)."""
    number = conn.execute(_COUNTER_NEXT, {"d": department}).scalar()
    if number is None:                       # the department's first ticket
        conn.execute(_COUNTER_ROW, {"d": department})
        number = conn.execute(_COUNTER_NEXT, {"d": department}).scalar_one()
    return number


T_TICKET, T_INBOUND, T_PERSON, T_THREAD = (Ticket.__table__, Inbound.__table__, Person.__table__,
                                           ThreadId.__table__)
T_PARTICIPANT, T_OUTBOX, T_CHANGE = Participant.__table__, Outbox.__table__, TicketChange.__table__
_TICKET_COLUMNS = (T_TICKET.c.id, T_TICKET.c.number, T_TICKET.c.department, T_TICKET.c.subject,
                   T_TICKET.c.status, T_TICKET.c.created_at, T_TICKET.c.requester_id,
                   T_TICKET.c.assignee, T_TICKET.c.closed_at, T_TICKET.c.category, T_TICKET.c.kind,
                   T_TICKET.c.resolution, T_TICKET.c.priority, T_TICKET.c.respond_by, T_TICKET.c.resolve_by,
                   T_TICKET.c.responded_at, T_TICKET.c.paused_minutes, T_TICKET.c.escalated,
                   T_TICKET.c.merged_into)
_INBOUND_BY_KEY = select(T_INBOUND.c.id, T_TICKET.c.number, T_INBOUND.c.spool_id, T_INBOUND.c.ticket_id,
                         T_INBOUND.c.mail_from).select_from(
    T_INBOUND.outerjoin(T_TICKET, T_INBOUND.c.ticket_id == T_TICKET.c.id)).where(
    T_INBOUND.c.message_key == bindparam("key"))
_TICKET_BY_NUMBER = select(*_TICKET_COLUMNS).where(T_TICKET.c.number == bindparam("number"))
_TICKET_BY_MESSAGE_IDS = select(T_THREAD.c.message_id, T_THREAD.c.outbound, *_TICKET_COLUMNS).select_from(
    T_THREAD.join(T_TICKET, T_THREAD.c.ticket_id == T_TICKET.c.id)).where(
    T_THREAD.c.message_id.in_(bindparam("ids", expanding=True)))
_PERSON_COLUMNS = (T_PERSON.c.id, T_PERSON.c.email, T_PERSON.c.name, T_PERSON.c.phone,
                   T_PERSON.c.office, T_PERSON.c.company, T_PERSON.c.pending_profile)
_PARTICIPANTS = select(*_PERSON_COLUMNS).select_from(
    T_PARTICIPANT.join(T_PERSON, T_PARTICIPANT.c.person_id == T_PERSON.c.id)).where(
    T_PARTICIPANT.c.ticket_id == bindparam("tid")).order_by(T_PARTICIPANT.c.created_at)
_PERSON_BY_ID = select(*_PERSON_COLUMNS).where(T_PERSON.c.id == bindparam("pid"))
_PERSON_BY_EMAIL = select(*_PERSON_COLUMNS).where(T_PERSON.c.email == bindparam("email"))
_PERSON_INSERT = insert(T_PERSON).returning(T_PERSON.c.id)
_PERSON_RENAME = update(T_PERSON).where(T_PERSON.c.id == bindparam("pid")).values(
    name=bindparam("new_name"), updated_at=bindparam("ts"))


@dataclass(frozen=True)
class Seen:
    """The inbound record of a message already received with the same key."""
    id: int
    number: str | None       # its ticket's
    spool_id: str
    ticket_id: int | None
    mail_from: str = ""      # its envelope sender: the same Message-ID from someone else is no duplicate


def duplicate_of(conn: Connection, key: str) -> Seen | None:
    row = conn.execute(_INBOUND_BY_KEY, {"key": key}).first()
    return Seen(row.id, row.number, row.spool_id, row.ticket_id, row.mail_from) if row else None


def ticket_by_number(conn: Connection, number: str) -> TicketRef | None:
    row = conn.execute(_TICKET_BY_NUMBER, {"number": number}).first()
    return TicketRef(*row) if row else None


def ticket_by_message_ids(conn: Connection, ids: tuple[str, ...]) -> TicketRef | None:
    """The ticket one of these Message-IDs belongs to; our own outbound ids win, then the
    most recent reference (the end of References is the parent)."""
    if not ids:
        return None
    rows = conn.execute(_TICKET_BY_MESSAGE_IDS, {"ids": list(ids)}).all()
    if not rows:
        return None
    order = {mid: i for i, mid in enumerate(ids)}
    best = max(rows, key=lambda r: (r.outbound, order.get(r.message_id, -1)))
    return TicketRef(*best[2:])


_CONVERSATION_IDS = select(T_INBOUND.c.message_key).where(
    T_INBOUND.c.ticket_id == bindparam("tid"), T_INBOUND.c.mail_from != bindparam("skip_from")
).order_by(T_INBOUND.c.id)


def conversation_ids(conn: Connection, ticket_id: int, except_from: str = "") -> list[str]:
    """Message-IDs of the mail received on a ticket, oldest first (not those of one sender)."""
    keys = conn.execute(_CONVERSATION_IDS, {"tid": ticket_id, "skip_from": except_from}).scalars()
    return [k for k in keys if not k.startswith("sha256:")]


def outbox_by_message_id(conn: Connection, message_id: str):
    return conn.execute(select(T_OUTBOX.c.id, T_OUTBOX.c.ticket_id, T_OUTBOX.c.recipient, T_OUTBOX.c.status)
                        .where(T_OUTBOX.c.message_id == message_id)).first()


def mark_bounced(conn: Connection, outbox_id: int, why: str) -> None:
    """A delivery report said our mail did not arrive: failed, and the department is told
    (``reported`` stays false for the sender's failure report)."""
    conn.execute(update(T_OUTBOX).where(T_OUTBOX.c.id == outbox_id).values(status="failed", last_error=why[:1000]))


_UNREPORTED = select(T_OUTBOX.c.id, T_OUTBOX.c.ticket_id, T_OUTBOX.c.recipient, T_OUTBOX.c.sender,
                     T_OUTBOX.c.subject, T_OUTBOX.c.kind, T_OUTBOX.c.last_error, T_OUTBOX.c.created_at,
                     T_TICKET.c.department).select_from(
    T_OUTBOX.outerjoin(T_TICKET, T_OUTBOX.c.ticket_id == T_TICKET.c.id)).where(
    T_OUTBOX.c.status == "failed", T_OUTBOX.c.reported.is_(False)).order_by(T_OUTBOX.c.id).limit(100)


def unreported_failures(conn: Connection) -> Sequence[Row]:
    return conn.execute(_UNREPORTED).all()


def release_held(conn: Connection, ids: list[int] | None, at: datetime) -> int:
    """Held mail (the loop guard) back to pending, sent with the next round; markers stay."""
    query = update(T_OUTBOX).where(T_OUTBOX.c.status == "held", T_OUTBOX.c.kind != "loop").values(
        status="pending", next_attempt_at=at, last_error=None)
    if ids is not None:
        query = query.where(T_OUTBOX.c.id.in_(ids))
    return conn.execute(query).rowcount


def mark_reported(conn: Connection, outbox_id: int) -> None:
    conn.execute(update(T_OUTBOX).where(T_OUTBOX.c.id == outbox_id).values(reported=True))


# Open tickets whose deadline in force has passed and whose last stage of telling is not
# reached (deciding/escalation.py decides which stage is due).
_OVERDUE = select(*_TICKET_COLUMNS).where(
    T_TICKET.c.status == "open", T_TICKET.c.escalated < 2,
    T_TICKET.c.department.in_(bindparam("departments", expanding=True)),
    ((T_TICKET.c.responded_at.is_(None) & (T_TICKET.c.respond_by <= bindparam("now")))
     | (T_TICKET.c.paused_minutes.is_(None) & (T_TICKET.c.resolve_by <= bindparam("now"))))).order_by(
    T_TICKET.c.id).limit(500)
# The ticket as it was read: same stage, same clock, still open (an answer or a #срок on
# another node in between makes the escalation stale, and it is not sent).
_CLOCK_FIELDS = ("respond_by", "resolve_by", "responded_at", "paused_minutes")
_CLAIM_ESCALATION = update(T_TICKET).where(
    T_TICKET.c.id == bindparam("tid"), T_TICKET.c.status == "open", T_TICKET.c.escalated == bindparam("seen"),
    *(T_TICKET.c[name].is_not_distinct_from(bindparam(f"was_{name}")) for name in _CLOCK_FIELDS)).values(
    escalated=bindparam("stage"))


def overdue(conn: Connection, now: datetime, departments: list[str]) -> list[TicketRef]:
    """Open tickets of these departments past a deadline, with a stage left to tell."""
    return [TicketRef(*row) for row in conn.execute(_OVERDUE, {"now": now, "departments": departments})]


def claim_escalation(conn: Connection, ticket: TicketRef, stage: int) -> bool:
    """This run tells ``stage`` of the ticket as it was read (in the transaction that queues
    the mail); False: another node did or is doing it, or the ticket changed since."""
    was = {f"was_{name}": getattr(ticket, name) for name in _CLOCK_FIELDS}
    return conn.execute(_CLAIM_ESCALATION, {"tid": ticket.id, "seen": ticket.escalated, "stage": stage,
                                            **was}).rowcount == 1


MAX_MERGES = 10     # a chain of merges longer than this is a loop (it cannot be made): stop


def surviving(conn: Connection, ticket: TicketRef) -> TicketRef:
    """The ticket a merged one lives on in (#объединить), through a chain of merges."""
    for _ in range(MAX_MERGES):
        if ticket.merged_into is None:
            break
        found = ticket_by_id(conn, ticket.merged_into)
        if found is None:
            break
        ticket = found
    return ticket


def ticket_by_id(conn: Connection, ticket_id: int) -> TicketRef | None:
    row = conn.execute(select(*_TICKET_COLUMNS).where(T_TICKET.c.id == ticket_id)).first()
    return TicketRef(*row) if row else None


_RECENT_NOTICE = select(T_OUTBOX.c.id).where(
    T_OUTBOX.c.recipient == bindparam("to"), T_OUTBOX.c.kind == bindparam("kind"),
    T_OUTBOX.c.created_at > bindparam("since")).limit(1)


_COUNT_SINCE = select(func.count()).select_from(T_OUTBOX).where(
    T_OUTBOX.c.recipient == bindparam("to"), T_OUTBOX.c.kind == bindparam("kind"),
    T_OUTBOX.c.created_at > bindparam("since"))


# Outbox kinds the loop guard does not count (config [loop_guard]): mail to staff, markers,
# and mail a staff member wrote (a response, a status change): a loop needs a robot on
# both sides, and those are people's words. What is left answers automatically.
STAFF_KINDS = frozenset({"alert", "receipt", "security", "failure", "digest", "report", "loop", "loop-notice",
                         "response", "status", "deadline"})
_BUDGETED = (T_OUTBOX.c.created_at > bindparam("since"), T_OUTBOX.c.kind.not_in(sorted(STAFF_KINDS)))
_BUDGET_TO = select(func.count()).select_from(T_OUTBOX).where(T_OUTBOX.c.recipient == bindparam("to"), *_BUDGETED)
_BUDGET_ABOUT = select(func.count()).select_from(T_OUTBOX).where(T_OUTBOX.c.ticket_id == bindparam("tid"), *_BUDGETED)


_BUDGET_BY_RECIPIENT = select(T_OUTBOX.c.recipient, func.count()).where(
    T_OUTBOX.c.recipient.in_(bindparam("to", expanding=True)), *_BUDGETED).group_by(T_OUTBOX.c.recipient)


def budgeted_by_recipient(conn: Connection, since: datetime, recipients: set[str]) -> dict[str, int]:
    """count_budgeted for many addresses in one query (every one of them in the answer)."""
    if not recipients:
        return {}
    found: dict[str, int] = dict(conn.execute(_BUDGET_BY_RECIPIENT, {"to": sorted(recipients), "since": since}).all())
    return {r: found.get(r, 0) for r in recipients}


def count_budgeted(conn: Connection, since: datetime, recipient: str | None = None,
                   ticket_id: int | None = None) -> int:
    """Automatic mail to people outside the staff since then, to one address or about one
    ticket (the loop guard)."""
    if recipient is not None:
        return conn.execute(_BUDGET_TO, {"to": recipient, "since": since}).scalar_one()
    return conn.execute(_BUDGET_ABOUT, {"tid": ticket_id, "since": since}).scalar_one()


_OPENED_BY = select(func.count()).select_from(T_TICKET).where(
    T_TICKET.c.requester_id == bindparam("pid"), T_TICKET.c.created_at >= bindparam("since"))
_HELD_FROM = select(func.count()).select_from(T_INBOUND).where(
    T_INBOUND.c.mail_from == bindparam("sender"), T_INBOUND.c.disposition == "held-over-budget",
    T_INBOUND.c.received_at >= bindparam("since"))


_JOINED_SINCE = select(func.count()).select_from(T_PARTICIPANT).where(
    T_PARTICIPANT.c.person_id == bindparam("pid"), T_PARTICIPANT.c.created_at >= bindparam("since"))


def joined_since(conn: Connection, person_id: int, since: datetime) -> int:
    """Tickets the person joined as a participant since ``since`` (#от имени counts them)."""
    return conn.execute(_JOINED_SINCE, {"pid": person_id, "since": since}).scalar_one()


def opened_by(conn: Connection, person_id: int, since: datetime) -> int:
    """Tickets this person opened since then (the per-sender budget)."""
    return conn.execute(_OPENED_BY, {"pid": person_id, "since": since}).scalar_one()


def held_from(conn: Connection, sender: str, since: datetime) -> int:
    """Mails of this envelope sender held over the budget since then."""
    return conn.execute(_HELD_FROM, {"sender": sender, "since": since}).scalar_one()


def count_since(conn: Connection, recipient: str, kind: str, since: datetime) -> int:
    """How many mails of this kind went to this address since then (rate limits)."""
    return conn.execute(_COUNT_SINCE, {"to": recipient.lower(), "kind": kind, "since": since}).scalar_one()


def noticed_since(conn: Connection, recipient: str, kind: str, since: datetime) -> bool:
    """Whether a mail of this kind went to this address since then (rate limits)."""
    return conn.execute(_RECENT_NOTICE, {"to": recipient, "kind": kind, "since": since}).first() is not None


def participants(conn: Connection, ticket_id: int) -> list[PersonRef]:
    return [PersonRef(*row) for row in conn.execute(_PARTICIPANTS, {"tid": ticket_id})]


def person_by_id(conn: Connection, person_id: int | None) -> PersonRef | None:
    row = conn.execute(_PERSON_BY_ID, {"pid": person_id}).first() if person_id else None
    return PersonRef(*row) if row else None


def person_ref(conn: Connection, email: str) -> PersonRef | None:
    """The person with this address, if known (read only)."""
    row = conn.execute(_PERSON_BY_EMAIL, {"email": email.strip().lower()}).first()
    return PersonRef(*row) if row else None


def add_person(conn: Connection, email: str, name: str, at: datetime) -> int:
    """A person met for the first time (the plan looked them up and found nobody)."""
    return conn.execute(_PERSON_INSERT, {"email": email, "name": name, "created_at": at,
                                         "updated_at": at}).scalar_one()


def rename_person(conn: Connection, person_id: int, name: str, at: datetime) -> None:
    conn.execute(_PERSON_RENAME, {"pid": person_id, "new_name": name, "ts": at})


_SET_PROFILE = update(T_PERSON).where(T_PERSON.c.id == bindparam("pid"))


def set_profile(conn: Connection, person: PersonRef, at: datetime, **fields: str) -> PersonRef:
    """Change a person's phone, office or company (what they wrote with #profile)."""
    conn.execute(_SET_PROFILE.values(updated_at=at, **fields), {"pid": person.id})
    changed: dict[str, Any] = fields       # phone, office, company: never the int id
    return replace(person, **changed)


T_ENTRY = Entry.__table__
_FIRST_MESSAGE = select(T_ENTRY.c.body).where(T_ENTRY.c.ticket_id == bindparam("tid"),
                                              T_ENTRY.c.type == "message").order_by(T_ENTRY.c.id).limit(1)


_RECENT = select(T_TICKET.c.number, T_TICKET.c.subject, T_TICKET.c.created_at,
                 select(T_ENTRY.c.body).where(T_ENTRY.c.ticket_id == T_TICKET.c.id, T_ENTRY.c.type == "message")
                 .order_by(T_ENTRY.c.id).limit(1).scalar_subquery()).where(
    T_TICKET.c.requester_id == bindparam("pid"), T_TICKET.c.department == bindparam("dept"),
    T_TICKET.c.created_at >= bindparam("since"), T_TICKET.c.status != "closed",
    T_TICKET.c.merged_into.is_(None)).order_by(T_TICKET.c.id.desc()).limit(10)


def recent_open(conn: Connection, person_id: int, department: str, since: datetime
                ) -> list[tuple[str, str, datetime, str]]:
    """A requester's open tickets in a department opened since ``since``, newest first (at
    most ten): number, subject, opened, first message — one query (every new ticket asks)."""
    return [(r[0], r[1], r[2], r[3] or "") for r in conn.execute(_RECENT, {"pid": person_id, "dept": department,
                                                                          "since": since})]


def first_message(conn: Connection, ticket_id: int) -> str:
    """The request as the requester wrote it (for staff who take a ticket over)."""
    return conn.execute(_FIRST_MESSAGE, {"tid": ticket_id}).scalar() or ""


# -- the command line's reads (ORM) ----------------------------------------------------------
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
        .options(selectinload(Ticket.entries).selectinload(Entry.attachments),
                 selectinload(Ticket.participants), selectinload(Ticket.links))).first()


def inbound_rows(session: Session, since: datetime | None, until: datetime | None,
                 disposition: str | None, limit: int) -> list[Inbound]:
    """The newest ``limit`` inbound records in the range, oldest first."""
    query = select(Inbound).options(selectinload(Inbound.ticket)).order_by(Inbound.id.desc()).limit(limit)
    if since is not None:
        query = query.where(Inbound.received_at >= since)
    if until is not None:
        query = query.where(Inbound.received_at < until)
    if disposition:
        query = query.where(Inbound.disposition == disposition)
    return list(reversed(list(session.scalars(query))))


def inbound_row(session: Session, inbound_id: int) -> Inbound | None:
    return session.get(Inbound, inbound_id)


def outbox_rows(session: Session, status: str | None = None) -> list[Outbox]:
    query = select(Outbox).order_by(Outbox.id).options(selectinload(Outbox.ticket))
    if status:
        query = query.where(Outbox.status == status)
    return list(session.scalars(query))
