"""A plan: what one message is to do, decided before anything is done.

The deciding modules (``dispatch`` and the conversation, commands and self-service it
calls) never write: they call a ``Planner``, whose verbs are the writer's verbs
(``open_ticket``, ``add_entry``, ``send``...) but which only records them as typed
operations and answers what the ticket or the person will look like afterwards. The
worker hands the finished ``Plan`` to ``acting/apply.py``, the only writer; the dry run
(``maild rules test``, ``maild replay``) prints the same plan. So the dry run cannot drift
from the real run: it *is* the real decision, stopped before the writing.

Things a plan creates (a ticket, a person met for the first time) get negative ids here;
the writer replaces them with the real ones as it goes. A planner reads the database
through ``conn`` (never writes it) and sees its own operations on top of what is stored:
the participants a line above added, the person a line above created.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Connection

from maild.acting import store
from maild.config import NotificationsConfig
from maild.deciding.deadlines import Clock, Deadlines, clock_of, held_to
from maild.deciding.operations import (
    AddEntry,
    AddEvent,
    AddParticipants,
    AddPerson,
    Link,
    MarkBounced,
    Merge,
    OpenTicket,
    Operation,
    RememberMessageId,
    RemoveParticipant,
    RenamePerson,
    Send,
    SetCategory,
    SetFields,
    SetProfile,
    SetStatus,
)
from maild.deciding.organisation import Department
from maild.reading.mail import Mail
from maild.sending.render import File
from maild.values import Disposition, Notice, PersonRef, Recipient, Status, TicketRef

if TYPE_CHECKING:
    from maild.deciding.rules import Routing

MAX_NAME = 400
MERGED = "merged"           # tickets.resolution of a ticket merged into another
NEW_NUMBER = "NNNNNN"       # what a ticket a plan opens is numbered until it is written


# The local parts maild writes to: a dot-atom without "%" or "!" (source routes through the
# company's relay: "victim%evil.com@torex.ru") and without quotes.
_LOCAL = re.compile(r"^[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*$")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def mailable(address: str, department: Department) -> bool:
    """An address maild sends to: plain local@domain, and not the helpdesk's own."""
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL.match(local) or not _DOMAIN.match(domain):
        return False
    return not (domain.lower() == department.domain.lower()
                and local.split("+", 1)[0].lower() == department.local_part.lower())


@dataclass
class Plan:
    """What a message comes to: its record (disposition, reason, ticket) and the operations.
    ``record=False``: nothing at all is written (this very file again after a crash: its
    record is there already); ``record_key`` files the record under a key of its own (a
    duplicate's)."""
    disposition: str
    reason: str
    ticket: TicketRef | None = None
    operations: list[Operation] = field(default_factory=list)
    record: bool = True
    record_key: str | None = None
    routing: object | None = None   # rules.Routing of a new ticket, for the dry run's account
    warnings: list[str] = field(default_factory=list)   # for the security log, once it is done

    @property
    def outcome(self) -> Disposition | str:
        try:
            return Disposition(self.disposition)
        except ValueError:
            return self.disposition     # closed-<template>: a rule's own


class Pending(Protocol):
    """Mail this batch has queued and not yet written (the worker's batch, or nothing)."""

    def waiting(self, recipient: str, kind: str) -> int: ...


class NothingPending:
    def waiting(self, recipient: str, kind: str) -> int:
        return 0


class Planner:
    """Records a message's operations; reads through ``conn`` with its own on top."""

    def __init__(self, conn: Connection, now: datetime, notifications: NotificationsConfig,
                 pending: Pending | None = None, deadlines: Deadlines | None = None):
        self.conn = conn
        self.now = now
        self.notifications = notifications
        self.pending = pending or NothingPending()
        self.deadlines = deadlines or Deadlines()
        self.operations: list[Operation] = []
        self.warnings: list[str] = []
        self._people: dict[str, PersonRef] = {}         # by address: planned or looked up
        self._next_id = -1

    def finish(self, disposition: str, reason: str, ticket: TicketRef | None = None, **more: object) -> Plan:
        return Plan(str(disposition), reason, ticket, self.operations, warnings=self.warnings,
                    **more)  # type: ignore[arg-type]

    def warn(self, text: str) -> None:
        """Something the security log must say once the plan is carried out (a dry run
        prints it instead)."""
        self.warnings.append(text)

    def _new_id(self) -> int:
        self._next_id -= 1
        return self._next_id + 1

    # -- people ---------------------------------------------------------------------
    def person_ref(self, email: str) -> PersonRef | None:
        """The person with this address as the plan leaves them, or None."""
        email = email.strip().lower()
        if email in self._people:
            return self._people[email]
        return store.person_ref(self.conn, email)

    def person(self, email: str, name: str = "", rename: bool = True) -> PersonRef:
        """The person with this address, added on first contact; the name follows changes
        (``rename``: only when the mail really speaks for them)."""
        email = email.strip().lower()
        name = (name or "")[:MAX_NAME]
        known = self.person_ref(email)
        if known is None:
            known = PersonRef(self._new_id(), email, name)
            self.operations.append(AddPerson(known))
        elif rename and name and name != known.name:
            self.operations.append(RenamePerson(known, name))
            known = replace(known, name=name)
        self._people[email] = known
        return known

    def person_by_id(self, person_id: int | None) -> PersonRef | None:
        if person_id is None:
            return None
        planned = next((p for p in self._people.values() if p.id == person_id), None)
        if planned is not None or person_id < 0:      # a negative id is only ever the plan's
            return planned
        return store.person_by_id(self.conn, person_id)

    def participants(self, ticket: TicketRef) -> list[PersonRef]:
        people = store.participants(self.conn, ticket.id) if ticket.id > 0 else []
        for op in self.operations:
            if isinstance(op, AddParticipants) and op.ticket.id == ticket.id:
                people += [p for p in op.people if p.id not in {q.id for q in people}]
            elif isinstance(op, RemoveParticipant) and op.ticket.id == ticket.id:
                people = [p for p in people if p.id != op.person.id]
        return people

    def set_profile(self, person: PersonRef, **fields: str) -> PersonRef:
        self.operations.append(SetProfile(person, tuple(fields.items())))
        values: dict[str, Any] = fields         # phone, office, company, pending_profile
        changed = replace(person, **values)
        self._people[person.email] = changed
        return changed

    # -- tickets --------------------------------------------------------------------
    def open_ticket(self, department: Department, subject: str, requester: PersonRef | None,
                    routing: Routing | None = None, source: str = "email",
                    filed_by: str | None = None) -> TicketRef:
        category = routing.category.name if routing and routing.category else None
        clock = self.deadlines.opened(department.code, category, self.now)
        ticket = TicketRef(self._new_id(), f"{department.code}-{NEW_NUMBER}", department.code, subject,
                           Status.OPEN, self.now, requester.id if requester else None,
                           routing.assign if routing else None, None, category,
                           routing.kind if routing else None, None,
                           routing.priority if routing else "normal",
                           respond_by=clock.respond_by, resolve_by=clock.resolve_by)
        transferred = routing.transferred_from.code if routing and routing.transferred_from else None
        self.operations.append(OpenTicket(ticket, transferred, source, filed_by, ticket.priority))
        return ticket

    def add_entry(self, ticket: TicketRef, type_: str, mail: Mail, author: PersonRef | None,
                  of_this_mail: bool = True, touch: bool = True, body: str | None = None,
                  unauthenticated: bool = False) -> None:
        """An entry for the message: ``body`` is what the person wrote (default: the whole
        text); ``of_this_mail``: linked to this message's record. A response is the first
        response if none was given (whatever the status becomes: a reply with #закрыть too)."""
        self.operations.append(AddEntry(ticket, type_, mail, author, of_this_mail, touch, body, unauthenticated))
        if type_ == "response" and not unauthenticated and ticket.responded_at is None:
            self.operations.append(SetFields(ticket, (("responded_at", self.now),)))

    def event(self, ticket: TicketRef, text: str, author: PersonRef | None = None) -> None:
        self.operations.append(AddEvent(ticket, text, author))

    def set_status(self, ticket: TicketRef, status: str, resolution: str | None = None) -> TicketRef:
        """The status, and the deadlines' clock with it: it stops when the ticket leaves
        the department's hands (answered: the first response, if it was; closed) and runs
        again when it comes back (deciding/deadlines.py)."""
        self.operations.append(SetStatus(ticket, status, resolution))
        changed = replace(ticket, status=status, closed_at=self.now if status == Status.CLOSED else None,
                          resolution=resolution)
        if ticket.status == Status.OPEN and status != Status.OPEN:
            return self.set_clock(changed, self.deadlines.stopped(ticket, self.now, status == Status.ANSWERED))
        if ticket.status != Status.OPEN and status == Status.OPEN:
            return self.set_clock(changed, self.deadlines.resumed(ticket, self.now))
        return changed

    def set_category(self, ticket: TicketRef, category: str, kind: str) -> TicketRef:
        """The category, and its terms: while the ticket waits for its first response (the
        triage), the deadlines are counted again from the opening in the new terms; later
        the clock is left as it is (a pause, a #срок are the department's own)."""
        self.operations.append(SetCategory(ticket, category, kind))
        changed = replace(ticket, category=category, kind=kind)
        if category != ticket.category and ticket.status == Status.OPEN and ticket.responded_at is None:
            return self.set_clock(changed, self.deadlines.recounted(ticket, ticket.department, category,
                                                                    ticket.created_at))
        return changed

    def set_fields(self, ticket: TicketRef, **fields: object) -> TicketRef:
        """Fields the staff steer: assignee, priority, department (and where it came from).
        A transfer counts the deadlines again, from now, in the new department's terms."""
        self.operations.append(SetFields(ticket, tuple(fields.items())))
        known: dict[str, Any] = {k: v for k, v in fields.items() if k in TicketRef.__dataclass_fields__}
        changed = replace(ticket, **known)
        if "department" in fields and fields["department"] != ticket.department:
            return self.set_clock(changed, self.deadlines.recounted(ticket, changed.department, changed.category,
                                                                    self.now))
        return changed

    def set_clock(self, ticket: TicketRef, clock: Clock) -> TicketRef:
        """The ticket's deadline fields (nothing when they stay as they are). Who was told
        of a missed deadline stays told unless the deadline held to moved: a pause and a
        resume of an overdue ticket, or a recount to the same moment, tell nobody again."""
        values: dict[str, Any] = clock.fields()
        if held_to(replace(ticket, **values)) == held_to(ticket):
            values["escalated"] = ticket.escalated
        if Clock(**values) == clock_of(ticket):
            return ticket
        self.operations.append(SetFields(ticket, tuple(values.items())))
        return replace(ticket, **values)

    def restart_clock(self, ticket: TicketRef) -> TicketRef:
        """The deadlines counted afresh from now, in the ticket's terms (a ticket closed at
        once by the rules and reopened by its requester is, for the department, new)."""
        return self.set_clock(ticket, self.deadlines.recounted(ticket, ticket.department, ticket.category, self.now))

    def remember_message_id(self, ticket: TicketRef, mail: Mail) -> None:
        """The mail belongs to the ticket's conversation even without an entry of its own."""
        self.operations.append(RememberMessageId(ticket, mail))

    def add_participants(self, ticket: TicketRef, people: list[PersonRef]) -> None:
        if people:
            self.operations.append(AddParticipants(ticket, tuple(people)))

    def remove_participant(self, ticket: TicketRef, person: PersonRef) -> None:
        self.operations.append(RemoveParticipant(ticket, person))

    def link(self, a: TicketRef, b: TicketRef, reason: str) -> None:
        """Two tickets linked both ways, with an event on each."""
        self.operations.append(Link(a, b, reason))

    def merge(self, ticket: TicketRef, into: TicketRef) -> TicketRef:
        """``ticket`` into ``into`` (#объединить): its entries (with their attachments), its
        conversation's Message-IDs and its people move; it is closed as merged and points to
        ``into``, so a later reply to it lands there (store.surviving)."""
        self.operations.append(Merge(ticket, into))
        closed = self.set_status(ticket, Status.CLOSED, resolution=MERGED)
        return replace(closed, merged_into=into.id)

    def mark_bounced(self, outbox_id: int, why: str) -> None:
        self.operations.append(MarkBounced(outbox_id, why))

    # -- mail -----------------------------------------------------------------------
    def send(self, ticket: TicketRef | None, department: Department, notice: Notice,
             recipients: list[Recipient], reply_to: Mail | None, thread: list[str] | None = None,
             files: tuple[File, ...] = (), signed_for: str | None = None, **context: object) -> None:
        """A notice to render and send (in the writer: once, an outbox row per recipient;
        nothing when the department switched this kind off or the list is empty)."""
        for r in recipients:
            if not mailable(r.email, department):
                self.warn(f"not mailing {r.email!r} ({notice.template}): not an address maild writes to")
        recipients = [r for r in recipients if mailable(r.email, department)]
        if recipients and self.notifications.allows(department.code, notice.template):
            self.operations.append(Send(ticket, department, notice, tuple(recipients), reply_to,
                                        tuple(thread) if thread else None, files, signed_for, dict(context)))

    def pending_count(self, recipient: str, kind: str) -> int:
        """Mail of this kind to this address not yet written: this batch's and this plan's
        (a rate limit must count them: a burst arrives in one batch)."""
        recipient = recipient.lower()
        mine = sum(1 for op in self.operations if isinstance(op, Send) and op.notice.kind == kind
                   for r in op.recipients if r.email.lower() == recipient)
        return self.pending.waiting(recipient, kind) + mine

    def pending_to(self, recipient: str, kind: str) -> bool:
        return self.pending_count(recipient, kind) > 0
