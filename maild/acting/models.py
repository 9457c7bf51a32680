"""SQLAlchemy mapping of ``schema.sql`` (the schema of record; tests prove they agree)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Always an aware UTC datetime in Python, whatever the database keeps (SQLite: text)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


# SQLite's rowid alias must be declared INTEGER; PostgreSQL gets BIGINT identity columns.
ID = BigInteger().with_variant(Integer(), "sqlite")


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    if TYPE_CHECKING:   # each model maps one Table (SQLAlchemy types __table__ as any FromClause)
        __table__: ClassVar[Table]


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    phone: Mapped[str] = mapped_column(String(100), default="")
    office: Mapped[str] = mapped_column(String(100), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    pending_profile: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("people_email", "email", unique=True),)


class TicketCounter(Base):
    __tablename__ = "ticket_counters"
    department: Mapped[str] = mapped_column(String(10), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    requester_id: Mapped[int | None] = mapped_column(ID, ForeignKey("people.id"))
    assignee: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(30))   # why it was closed
    filed_by: Mapped[str | None] = mapped_column(String(64))     # staff login (phone tickets)
    transferred_from: Mapped[str | None] = mapped_column(String(10))
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_minutes: Mapped[int | None] = mapped_column(Integer)
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    merged_into: Mapped[int | None] = mapped_column(ID, ForeignKey("tickets.id"))

    requester: Mapped[Person | None] = relationship(lazy="joined")
    entries: Mapped[list[Entry]] = relationship(back_populates="ticket", order_by="Entry.id")
    participants: Mapped[list[Participant]] = relationship(order_by="Participant.created_at")
    links: Mapped[list[TicketLink]] = relationship(foreign_keys="TicketLink.ticket_id",
                                                   order_by="TicketLink.created_at")
    __table_args__ = (
        Index("tickets_number", "number", unique=True),
        Index("tickets_department_status", "department", "status"),
        Index("tickets_requester", "requester_id"),
        Index("tickets_open_due", "status", "escalated"),
    )


class Inbound(Base):
    __tablename__ = "inbound"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    spool_id: Mapped[str] = mapped_column(String(40))
    message_key: Mapped[str] = mapped_column(String(1000))
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[str] = mapped_column(Text)
    peer: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archive_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ID, ForeignKey("tickets.id"))
    disposition: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)

    ticket: Mapped[Ticket | None] = relationship()
    __table_args__ = (
        Index("inbound_spool_id", "spool_id", unique=True),
        Index("inbound_message_key", "message_key", unique=True),
        Index("inbound_ticket", "ticket_id"),
    )


class Entry(Base):
    __tablename__ = "entries"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id"))
    type: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[int | None] = mapped_column(ID, ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    body: Mapped[str] = mapped_column(Text)
    full_body: Mapped[str] = mapped_column(Text)
    inbound_id: Mapped[int | None] = mapped_column(ID, ForeignKey("inbound.id"))
    unauthenticated: Mapped[bool] = mapped_column(Boolean, default=False)

    ticket: Mapped[Ticket] = relationship(back_populates="entries")
    author: Mapped[Person | None] = relationship(lazy="joined")
    inbound: Mapped[Inbound | None] = relationship()
    attachments: Mapped[list[AttachmentRow]] = relationship(order_by="AttachmentRow.id")
    __table_args__ = (Index("entries_ticket", "ticket_id"),)


class AttachmentRow(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ID, ForeignKey("entries.id"))
    filename: Mapped[str] = mapped_column(String(400))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str] = mapped_column(String(400), default="")
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    stored: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (Index("attachments_entry", "entry_id"),)


class Participant(Base):
    __tablename__ = "participants"
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ID, ForeignKey("people.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    person: Mapped[Person] = relationship(lazy="joined")


class TicketLink(Base):
    __tablename__ = "ticket_links"
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id"), primary_key=True)
    linked_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    linked: Mapped[Ticket] = relationship(foreign_keys=[linked_id], lazy="joined")


class TicketChange(Base):
    __tablename__ = "ticket_changes"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    field: Mapped[str] = mapped_column(String(20))
    old: Mapped[str | None] = mapped_column(String(30))
    new: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(String(30))
    department: Mapped[str] = mapped_column(String(10))
    __table_args__ = (Index("ticket_changes_at", "at"), Index("ticket_changes_ticket", "ticket_id"))


class ThreadId(Base):
    __tablename__ = "thread_ids"
    message_id: Mapped[str] = mapped_column(String(1000), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id"))
    outbound: Mapped[bool] = mapped_column(Boolean)

    ticket: Mapped[Ticket] = relationship()
    __table_args__ = (Index("thread_ids_ticket", "ticket_id"),)


class Outbox(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ID, ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(30))
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(1000))
    raw: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported: Mapped[bool] = mapped_column(Boolean, default=False)

    ticket: Mapped[Ticket | None] = relationship()
    __table_args__ = (
        Index("outbox_message_id", "message_id", unique=True),
        Index("outbox_recipient_kind", "recipient", "kind", "created_at"),
        Index("outbox_due", "status", "next_attempt_at"),
        Index("outbox_ticket", "ticket_id"),
    )


class SpoolRow(Base):
    """The cluster's spool (PostgreSQL): see schema.sql and intake/shared.py."""
    __tablename__ = "spool"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    envelope: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    node: Mapped[str] = mapped_column(String(100), default="")
    claim: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("spool_due", "state", "not_before"),)


class Node(Base):
    __tablename__ = "nodes"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    facts: Mapped[str] = mapped_column(Text, default="{}")


class JobRun(Base):
    __tablename__ = "job_runs"
    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(400), primary_key=True)
    node: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
