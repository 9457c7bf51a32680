"""What a message does to the conversation, once we know which ticket (if any) it names.

``decide`` is the policy, a pure function with the reason recorded:

| the message                                          | becomes                                   |
|------------------------------------------------------|-------------------------------------------|
| names no ticket                                      | a new ticket                              |
| automatic mail naming a ticket                       | an event on it (never reopens, no alert)  |
| from the requester or a participant                  | their entry; alerts the assignee (or the  |
|                                                      | department); reopens a closed ticket      |
| ... but the ticket was closed over ``reopen_days``   | a new ticket linked to the old one        |
| from staff of the ticket's department                | a response: mailed to the requester and   |
|                                                      | participants, the ticket becomes answered |
| from anyone else (a stranger quoting a number)       | a new ticket linked to the old one        |

What a decision then does — the entry, who joins the ticket, who hears — is planned by
``talk.Conversation``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from maild.deciding.auth import AuthResult
from maild.deciding.organisation import Organisation, Staff
from maild.reading.classify import Verdict
from maild.reading.mail import Mail
from maild.values import Disposition, PersonRef, Status, TicketRef

UNCATEGORISED = "uncategorised"     # the close template (and resolution) of that policy


class Role(enum.Enum):
    REQUESTER = "requester"
    PARTICIPANT = "participant"
    STAFF = "staff"
    STRANGER = "stranger"


class Effect(enum.Enum):
    NEW = "new"
    NEW_LINKED = "new-linked"
    REPLY = "reply"
    RESPONSE = "response"
    AUTOMATIC = "automatic"
    UNAUTHENTICATED = "unauthenticated"


@dataclass(frozen=True)
class Decision:
    effect: Effect
    reason: str
    ticket: TicketRef | None = None      # the ticket the message names, if any
    proof: AuthResult | None = None      # for staff mail: what auth.py found

    @property
    def disposition(self) -> Disposition:
        return {Effect.NEW: Disposition.TICKET_CREATED, Effect.NEW_LINKED: Disposition.TICKET_CREATED,
                Effect.REPLY: Disposition.REPLY_ADDED, Effect.RESPONSE: Disposition.RESPONSE_ADDED,
                Effect.AUTOMATIC: Disposition.AUTO_REPLY_RECORDED,
                Effect.UNAUTHENTICATED: Disposition.UNAUTHENTICATED_STAFF}[self.effect]


def role_of(org: Organisation, ticket: TicketRef, author: PersonRef | None,
            participant_ids: set[int], member: Staff | None = None) -> Role:
    """``member``: the staff member the mail speaks for, if any (worker.py decides: one
    unambiguous From)."""
    if author is None:
        return Role.STRANGER
    if author.id == ticket.requester_id:
        return Role.REQUESTER
    if member is not None and member.department == ticket.department:
        return Role.STAFF
    if author.id in participant_ids:
        return Role.PARTICIPANT
    return Role.STRANGER


def decide(ticket: TicketRef | None, how: str, role: Role | None, verdict: Verdict,
           now: datetime, reopen_days: int, proof: AuthResult | None = None) -> Decision:
    """``proof``: for a staff sender, whether the mail is really theirs (auth.py)."""
    if ticket is None:
        return Decision(Effect.NEW, "names no ticket of ours")
    found = f"{ticket.number} by {how}"
    if verdict.automatic:
        return Decision(Effect.AUTOMATIC, f"{found}; automatic mail ({verdict.reason})", ticket)
    if role is Role.STRANGER:
        return Decision(Effect.NEW_LINKED, f"{found}, but the sender is neither its requester, "
                        "a participant nor staff of its department", ticket)
    if role is Role.STAFF:
        if proof is None or not proof.ok:
            return Decision(Effect.UNAUTHENTICATED, f"{found}; claims staff of {ticket.department} but "
                            f"is not authenticated ({proof.how if proof else 'not checked'})", ticket, proof)
        return Decision(Effect.RESPONSE, f"{found}; staff of {ticket.department} answers ({proof.how})", ticket)
    if (ticket.status == Status.CLOSED and ticket.closed_at is not None
            and now - ticket.closed_at > timedelta(days=reopen_days)):
        return Decision(Effect.NEW_LINKED, f"{found}, closed more than {reopen_days} days ago", ticket)
    return Decision(Effect.REPLY, f"{found}; the {role.value if role else 'sender'} writes", ticket)


def sender_warning(mail: Mail) -> str:
    """What staff must know before trusting who a mail says it is from ("" when nothing)."""
    if mail.deceptive_name and mail.sender is not None:
        return (f"имя отправителя «{mail.sender.name}» выглядит как другой адрес; письмо пришло от "
                f"{mail.sender.email}. Не верьте имени: такое письмо не даёт ничьих полномочий и не "
                "добавляет людей в копию.")
    return ""
