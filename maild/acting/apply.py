"""Carrying a plan out: the one place a message's decision becomes rows.

``apply`` walks the plan's operations in order through ``Actions`` (the statements) in the
caller's transaction, so a crash leaves all of a message or none of it. What the plan
created gets its real id here (a ticket its number from the department's counter, a
person their row), and every later operation naming it is given the real one.

The message's inbound record is written once, just before the first entry that links to
it (entries reference it) or at the end; it names the plan's ticket. Only a ticket the
plan opens *after* that moment (a command mail's ``#new`` below an entry-making line,
which the commands do not allow today) would need the record completed afterwards, and
it is.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import overload

from maild.acting import store
from maild.acting.actions import Actions
from maild.deciding import operations as ops, plan as p
from maild.values import PersonRef, TicketRef


@dataclass(frozen=True)
class InboundRecord:
    """The inbound row's columns other than its outcome (the plan gives those)."""
    spool_id: str
    message_key: str
    mail_from: str
    rcpt_to: str
    peer: str
    received_at: object
    size: int
    subject: str
    archive_path: str


@dataclass(frozen=True)
class Applied:
    inbound_id: int | None
    ticket: TicketRef | None        # the plan's ticket, with its real id and number


class _Ids:
    """The plan's negative ids and the real ones given to them."""

    def __init__(self) -> None:
        self.tickets: dict[int, TicketRef] = {}
        self.people: dict[int, int] = {}
        self.numbers: dict[str, str] = {}     # a planned ticket's placeholder number -> its real one

    def ticket(self, ticket: TicketRef | None) -> TicketRef | None:
        if ticket is None or ticket.id > 0:
            return ticket
        real = self.tickets.get(ticket.id)
        if real is None:
            return None
        requester = self.people.get(ticket.requester_id, ticket.requester_id) if ticket.requester_id else None
        return replace(ticket, id=real.id, number=real.number, requester_id=requester)

    def named(self, ticket: TicketRef) -> TicketRef:
        """The real ticket an operation names (the plan opens a ticket before naming it)."""
        real = self.ticket(ticket)
        if real is None:    # a planner bug: say so here, not as a None deep in Actions
            raise LookupError(f"an operation names planned ticket {ticket.number} before opening it")
        return real

    @overload
    def person(self, person: PersonRef) -> PersonRef: ...
    @overload
    def person(self, person: None) -> None: ...
    @overload
    def person(self, person: PersonRef | None) -> PersonRef | None: ...

    def person(self, person: PersonRef | None) -> PersonRef | None:
        if person is None or person.id > 0:
            return person
        return replace(person, id=self.people[person.id])

    def text(self, value: str | None) -> str | None:
        """Text rendered while planning (a canned answer below ``#новая``) names a planned
        ticket by its placeholder number: the real one instead."""
        for planned, real in self.numbers.items():
            if value and planned in value:
                value = value.replace(planned, real)
        return value

    def value(self, value: object) -> object:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, TicketRef):
            return self.ticket(value)
        if isinstance(value, PersonRef):
            return self.person(value)
        return value


def apply(actions: Actions, plan: p.Plan, record: InboundRecord | None) -> Applied:
    ids = _Ids()
    inbound_id: int | None = None
    recorded = not plan.record or record is None
    unnamed = False         # recorded before its ticket was opened: named at the end

    def write_record() -> int | None:
        nonlocal recorded, unnamed
        recorded = True
        ticket = ids.ticket(plan.ticket)
        unnamed = plan.ticket is not None and ticket is None
        values = dict(record.__dict__)
        if plan.record_key:
            values["message_key"] = plan.record_key
        return actions.record_inbound(**values, ticket_id=ticket.id if ticket else None,
                                      disposition=plan.disposition, reason=plan.reason)

    for op in plan.operations:
        if isinstance(op, ops.AddEntry) and op.of_this_mail and not recorded:
            inbound_id = write_record()
        _one(actions, op, ids, inbound_id)
    if not recorded:
        inbound_id = write_record()
    ticket = ids.ticket(plan.ticket)
    if unnamed and inbound_id is not None and ticket is not None:
        actions.update_inbound(inbound_id, ticket, plan.disposition, plan.reason)
    actions.finish()
    return Applied(inbound_id, ticket)


def _one(a: Actions, op: ops.Operation, ids: _Ids, inbound_id: int | None) -> None:
    if isinstance(op, ops.AddPerson):
        ids.people[op.person.id] = store.add_person(a.conn, op.person.email, op.person.name, a.clock.now())
    elif isinstance(op, ops.RenamePerson):
        store.rename_person(a.conn, ids.person(op.person).id, op.name, a.clock.now())
    elif isinstance(op, ops.OpenTicket):
        planned = op.ticket
        requester = ids.person(PersonRef(planned.requester_id, "", "")) if planned.requester_id else None
        ids.tickets[planned.id] = a.open_ticket(planned, requester.id if requester else None,
                                                op.transferred_from, op.source, op.filed_by)
        ids.numbers[planned.number] = ids.tickets[planned.id].number
    elif isinstance(op, ops.AddEntry):
        a.add_entry(ids.named(op.ticket), op.type, op.mail, ids.person(op.author),
                    inbound_id if op.of_this_mail else None, touch=op.touch, body=ids.text(op.body),
                    unauthenticated=op.unauthenticated)
    elif isinstance(op, ops.AddEvent):
        a.event(ids.named(op.ticket), op.text, ids.person(op.author))
    elif isinstance(op, ops.SetStatus):
        a.set_status(ids.named(op.ticket), op.status, op.resolution)
    elif isinstance(op, ops.SetCategory):
        a.set_category(ids.named(op.ticket), op.category, op.kind)
    elif isinstance(op, ops.SetFields):
        a.set_fields(ids.named(op.ticket), **dict(op.fields))
    elif isinstance(op, ops.RememberMessageId):
        a.remember_message_id(ids.named(op.ticket), op.mail)
    elif isinstance(op, ops.AddParticipants):
        a.add_participants(ids.named(op.ticket), [ids.person(person) for person in op.people])
    elif isinstance(op, ops.RemoveParticipant):
        a.remove_participant(ids.named(op.ticket), ids.person(op.person))
    elif isinstance(op, ops.Link):
        a.link(ids.named(op.a), ids.named(op.b), op.reason)
    elif isinstance(op, ops.Merge):
        a.merge(ids.named(op.ticket), ids.named(op.into))
    elif isinstance(op, ops.Send):
        a.queue(ids.ticket(op.ticket), op.department, op.notice, list(op.recipients), op.reply_to,
                thread=list(op.thread) if op.thread else None, files=op.files, signed_for=op.signed_for,
                **{k: ids.value(v) for k, v in op.context.items()})
    elif isinstance(op, ops.MarkBounced):
        store.mark_bounced(a.conn, op.outbox_id, op.why)
    elif isinstance(op, ops.SetProfile):
        store.set_profile(a.conn, ids.person(op.person), a.clock.now(), **dict(op.fields))
    else:   # a new operation without its writer is a bug to see at once, not a silent no-op
        raise TypeError(f"no writer for {type(op).__name__}")
