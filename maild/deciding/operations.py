"""The operations a plan is made of (plan.py records them, acting/apply.py carries them
out, admin/dryrun.py prints them): typed values, one per thing a message may do.
Things the plan creates carry negative ids until they are written."""
from __future__ import annotations

from dataclasses import dataclass, field

from maild.deciding.organisation import Department
from maild.reading.mail import Mail
from maild.sending.render import File
from maild.values import Notice, PersonRef, Recipient, TicketRef


@dataclass(frozen=True)
class AddPerson:
    """A person met for the first time (``person.id`` is the plan's negative id)."""
    person: PersonRef


@dataclass(frozen=True)
class RenamePerson:
    person: PersonRef
    name: str


@dataclass(frozen=True)
class OpenTicket:
    ticket: TicketRef           # as planned: negative id, number ``<DEPT>-NNNNNN``
    transferred_from: str | None
    source: str
    filed_by: str | None
    priority: str


@dataclass(frozen=True)
class AddEntry:
    ticket: TicketRef
    type: str                   # message, response, note, event
    mail: Mail
    author: PersonRef | None
    of_this_mail: bool          # linked to this message's inbound record
    touch: bool
    body: str | None
    unauthenticated: bool = False


@dataclass(frozen=True)
class AddEvent:
    ticket: TicketRef
    text: str
    author: PersonRef | None = None


@dataclass(frozen=True)
class SetStatus:
    ticket: TicketRef           # as it was before
    status: str
    resolution: str | None


@dataclass(frozen=True)
class SetCategory:
    ticket: TicketRef
    category: str
    kind: str


@dataclass(frozen=True)
class SetFields:
    ticket: TicketRef
    fields: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class RememberMessageId:
    ticket: TicketRef
    mail: Mail


@dataclass(frozen=True)
class AddParticipants:
    ticket: TicketRef
    people: tuple[PersonRef, ...]


@dataclass(frozen=True)
class RemoveParticipant:
    ticket: TicketRef
    person: PersonRef


@dataclass(frozen=True)
class Link:
    a: TicketRef
    b: TicketRef
    reason: str


@dataclass(frozen=True)
class Merge:
    """``ticket``'s entries, conversation and participants move to ``into``."""
    ticket: TicketRef
    into: TicketRef


@dataclass(frozen=True)
class Send:
    ticket: TicketRef | None
    department: Department
    notice: Notice
    recipients: tuple[Recipient, ...]
    reply_to: Mail | None
    thread: tuple[str, ...] | None = None
    files: tuple[File, ...] = ()
    signed_for: str | None = None
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MarkBounced:
    outbox_id: int
    why: str


@dataclass(frozen=True)
class SetProfile:
    person: PersonRef
    fields: tuple[tuple[str, str], ...]


Operation = (AddPerson | RenamePerson | OpenTicket | AddEntry | AddEvent | SetStatus | SetCategory | SetFields
             | RememberMessageId | AddParticipants | RemoveParticipant | Link | Merge | Send | MarkBounced
             | SetProfile)
