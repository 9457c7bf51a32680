"""``#история`` / ``#history`` and ``#профиль`` / ``#profile``: anyone's, not only staff's.
They are read by the same parser as the staff commands (deciding/selfservice.py finds the
request and keeps the hourly limit); what each answers is here. The dispatch table's
``self_service`` case comes before staff commands.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

from maild.acting import lists, store
from maild.deciding.auth import AuthResult
from maild.deciding.commands.base import Command
from maild.deciding.organisation import Department
from maild.deciding.plan import Planner
from maild.reading.mail import Mail
from maild.values import Disposition, Notice, OutboxKind, PersonRef, Recipient

# The signed reply address of "confirm your profile" mail is made for this pseudo-ticket
# and the person (auth.signed_address): a reply to it proves the mailbox is theirs.
PROFILE_SIGNATURE = "PROFILE-0"


@dataclass(frozen=True)
class Request:
    kind: str                               # history | profile | find | confirm (a reply to "confirm")
    number: str | None = None               # history of one ticket
    fields: tuple[tuple[str, str], ...] = ()     # profile: (field, value)
    unread: tuple[str, ...] = ()            # profile lines not understood
    leftover: bool = False                  # text besides the request: not registered anywhere
    words: str = ""                         # find: what to search for


@dataclass(frozen=True)
class Asking:
    """What answering a request may use: the answer always goes to ``person``'s address."""
    plan: Planner
    request: Request
    person: PersonRef
    department: Department
    mail: Mail
    proof: AuthResult

    @property
    def to(self) -> list[Recipient]:
        return [Recipient(self.person.email, self.person.name)]


class SelfServiceCommand(Command, ABC):
    """Anyone's: answered by mail, no ticket touched; never a staff command line."""
    section = "anyone"
    on_ticket = False

    @abstractmethod
    def answer(self, ask: Asking) -> tuple[Disposition, str]:
        """Plan the answer to ``ask.person``; returns (disposition, reason)."""


class History(SelfServiceCommand):
    """Every ticket the sender opened, in both departments; with a number, the public
    conversation of one of their own (never notes or events). A number that is not theirs
    gets the same answer as one that does not exist."""
    key = "history"
    words = ("история", "history")
    usage, usage_en = "#история [номер]", "#history [number]"
    help = "ваши заявки; с номером — переписка по одной из них"

    def answer(self, ask: Asking) -> tuple[Disposition, str]:
        plan, request, person = ask.plan, ask.request, ask.person
        if request.number is None:
            tickets = lists.tickets_of(plan.conn, person.id) if person.id > 0 else []
            plan.send(None, ask.department, Notice(OutboxKind.HISTORY, "history", "auto-replied"), ask.to, ask.mail,
                      person=person.card(), tickets=tickets, leftover=request.leftover)
            return Disposition.HISTORY_SENT, f"history of {person.email}: {len(tickets)} tickets"
        ticket = store.ticket_by_number(plan.conn, request.number)
        mine = ticket is not None and ticket.requester_id == person.id
        entries = lists.public_conversation(plan.conn, ticket.id) if ticket is not None and mine else []
        plan.send(None, ask.department, Notice(OutboxKind.HISTORY, "history_ticket", "auto-replied"), ask.to,
                  ask.mail, person=person.card(), number=request.number, found=mine,
                  item=ticket if mine else None, entries=entries, leftover=request.leftover)
        return Disposition.HISTORY_SENT, (f"conversation of {request.number} sent to its requester" if mine else
                                          f"{request.number} is not a ticket of {person.email}: nothing shown")


class Profile(SelfServiceCommand):
    """The sender's phone, office and company, which staff see on every ticket. A change
    applies when the mail is proven theirs (auth.py); otherwise it waits and the person —
    the real one, at their address — is asked to confirm it by replying to an address
    signed for them (a reply there is a ``confirm`` request)."""
    key = "profile"
    words = ("профиль", "profile")
    usage, usage_en = "#профиль", "#profile"
    help = "ваши телефон, кабинет и компания; строки «Телефон: …» ниже меняют их"

    def answer(self, ask: Asking) -> tuple[Disposition, str]:
        plan, request, person, proof = ask.plan, ask.request, ask.person, ask.proof
        changes = dict(request.fields)
        if request.kind == "confirm":
            changes = json.loads(person.pending_profile or "{}") if proof.ok else {}
        pending = False
        if changes and proof.ok:
            person = plan.set_profile(person, pending_profile="", **changes)
        elif changes:
            plan.set_profile(person, pending_profile=json.dumps(changes, ensure_ascii=False))
            pending = True
        plan.send(None, ask.department, Notice(OutboxKind.PROFILE, "profile", "auto-replied", True), ask.to,
                  ask.mail, signed_for=PROFILE_SIGNATURE, person=person.card(), changed=sorted(changes),
                  pending=changes if pending else {}, unread=request.unread if proof.ok else (),
                  unread_count=len(request.unread))
        done = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "shown"
        if pending:
            return (Disposition.PROFILE_PENDING,
                    f"profile of {person.email}: {done} waits for confirmation ({proof.how})")
        return (Disposition.PROFILE_UPDATED if changes else Disposition.PROFILE_SENT,
                f"profile of {person.email}: {done}")
