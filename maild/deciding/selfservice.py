"""What any employee may ask of maild by mail, with no registration: their history and
their profile. The corporate address is the identity; the answer always goes to that
address (a forged From only sends someone their own history).

- history: the subject ``история``, ``мои заявки`` or ``history`` (behind any Re:/Fwd:),
  or ``#history`` / ``#история`` at the top of the body: every ticket the sender opened,
  in both departments;
- ``#history OSA-000123``: the public conversation of one of the sender's own tickets
  (what they wrote and the department's responses; never internal notes or events). A
  number that is not theirs gets the same answer as one that does not exist;
- ``#profile`` / ``#профиль`` with lines ``Телефон: …``, ``Кабинет: …``, ``Компания: …``:
  the sender's record, which staff see on every ticket; ``#профиль`` alone shows it. A
  change applies at once only when the mail is proven theirs (the company mail server's
  Authentication-Results, a trusted network: auth.py); otherwise it waits, and the answer —
  at their address — asks them to confirm by replying to an address signed for them.

``read`` is pure; ``SelfService.answer`` plans the reply and says what it does.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

from maild.acting import lists, store
from maild.deciding import auth, commands, match
from maild.deciding.auth import AuthResult
from maild.deciding.organisation import Department
from maild.deciding.plan import Planner
from maild.reading.mail import Mail, _printable
from maild.values import Disposition, Notice, OutboxKind, PersonRef, Recipient

HISTORY_SUBJECTS = {"история", "мои заявки", "history", "my tickets"}
_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|ответ|отв|пересл)(?:\[\d+\])?\s?:)+", re.I)
# profile field -> the words people write for it
PROFILE_FIELDS = {
    "phone": ("телефон", "тел", "phone", "моб", "мобильный"),
    "office": ("кабинет", "каб", "комната", "офис", "office", "room"),
    "company": ("компания", "организация", "предприятие", "company"),
}
_FIELD_OF = {word: field for field, words in PROFILE_FIELDS.items() for word in words}
_FIELD_LINE = re.compile(r"^\s*([^\W\d_]+)\.?\s*[:=—-]\s*(.*?)\s*$")
FIELD_LIMITS = {"phone": 100, "office": 100, "company": 200}
UNREAD_LINE = 100                # a line not understood is shown back this long at most
ANSWERS_PER_HOUR = 5
# The signed reply address of "confirm your profile" mail is made for this pseudo-ticket
# and the person (auth.signed_address): a reply to it proves the mailbox is theirs.
PROFILE_SIGNATURE = "PROFILE-0"


@dataclass(frozen=True)
class Request:
    kind: str                               # history | profile | confirm (a reply to "confirm")
    number: str | None = None               # history of one ticket
    fields: tuple[tuple[str, str], ...] = ()     # profile: (field, value)
    unread: tuple[str, ...] = ()            # profile lines not understood
    leftover: bool = False                  # text besides the request: not registered anywhere


def confirms(recipients: tuple[str, ...]) -> bool:
    """Sent to the address of a "confirm your profile" mail."""
    return any((auth.signed_ticket(r) or ("",))[0] == PROFILE_SIGNATURE for r in recipients)


def asks_by_subject(subject: str) -> bool:
    return _PREFIX.sub("", subject).strip(" .!?").lower() in HISTORY_SUBJECTS


def read(subject: str, written: str, codes: set[str], names_ticket: bool = False) -> Request | None:
    """The request in a mail: ``written`` is what the sender wrote (quotes stripped), read
    by the commands' own parser. A subject asks for history only in new mail: a reply to
    a ticket titled "история" is a reply."""
    block = commands.read(written)
    first = block.commands[0] if block is not None else None
    if block is not None and first is not None and first.keyword == "history":
        return Request("history", match.parse_number(first.args, codes) if first.args else None,
                       leftover=len(block.commands) > 1 or bool(block.text.strip()))
    if block is not None and first is not None and first.keyword == "profile":
        rest = [c.line for c in block.commands[1:]] + block.text.splitlines()
        return _profile([first.args] + [line.strip() for line in rest])
    if not names_ticket and asks_by_subject(subject):
        return Request("history", leftover=bool(written.strip()))
    return None


def _profile(lines: list[str]) -> Request:
    """Field lines up to the first blank line after them (a signature below never counts);
    the first of each field wins."""
    fields: dict[str, str] = {}
    unread = []
    started = False
    for line in lines:
        if not line:
            if started:
                break
            continue
        if line in ("--", "-- ", "—"):
            break
        started = True
        field = _FIELD_LINE.match(line)
        name = _FIELD_OF.get(field.group(1).lower()) if field else None
        if field is None or name is None:
            unread.append(line[:UNREAD_LINE])
        elif name not in fields:
            fields[name] = _printable(field.group(2))[:FIELD_LIMITS[name]]
    return Request("profile", fields=tuple(fields.items()), unread=tuple(unread[:10]))


class SelfService:
    """Answers, at most ``ANSWERS_PER_HOUR`` a person: a forged From cannot turn the
    helpdesk into a mail cannon aimed at someone."""

    def __init__(self, plan: Planner):
        self.plan = plan

    def answer(self, request: Request, person: PersonRef, department: Department, mail: Mail,
               proof: AuthResult) -> tuple[Disposition, str]:
        """Plan the answer; returns (disposition, reason)."""
        conn = self.plan.conn
        if not person.email.isascii():
            return Disposition.NOT_ANSWERED, f"{person.email}: an address our relay cannot answer"
        since = self.plan.now - timedelta(hours=1)
        answered = (sum(store.count_since(conn, person.email, kind, since) for kind in ("profile", "history"))
                    + sum(self.plan.pending_count(person.email, kind) for kind in ("profile", "history")))
        if answered >= ANSWERS_PER_HOUR:
            return Disposition.NOT_ANSWERED, f"{person.email} had {ANSWERS_PER_HOUR} answers this hour already"
        to = [Recipient(person.email, person.name)]
        if request.kind in ("profile", "confirm"):
            return self._profile(request, person, department, mail, proof, to)
        if request.number is None:
            tickets = lists.tickets_of(conn, person.id) if person.id > 0 else []
            self.plan.send(None, department, Notice(OutboxKind.HISTORY, "history", "auto-replied"), to, mail,
                               person=person.card(), tickets=tickets, leftover=request.leftover)
            return Disposition.HISTORY_SENT, f"history of {person.email}: {len(tickets)} tickets"
        ticket = store.ticket_by_number(conn, request.number)
        mine = ticket is not None and ticket.requester_id == person.id
        entries = lists.public_conversation(conn, ticket.id) if ticket is not None and mine else []
        self.plan.send(None, department, Notice(OutboxKind.HISTORY, "history_ticket", "auto-replied"), to, mail,
                           person=person.card(), number=request.number, found=mine,
                           item=ticket if mine else None, entries=entries, leftover=request.leftover)
        return Disposition.HISTORY_SENT, (f"conversation of {request.number} sent to its requester" if mine else
                                f"{request.number} is not a ticket of {person.email}: nothing shown")

    def _profile(self, request: Request, person: PersonRef, department: Department, mail: Mail,
                 proof: AuthResult, to: list[Recipient]) -> tuple[Disposition, str]:
        """A change applies when the mail is proven the person's (auth.py); otherwise it waits
        and the person — the real one, at their address — is asked to confirm it by replying
        (to an address signed for them)."""
        changes = dict(request.fields)
        if request.kind == "confirm":
            changes = json.loads(person.pending_profile or "{}") if proof.ok else {}
        pending = False
        if changes and proof.ok:
            person = self.plan.set_profile(person, pending_profile="", **changes)
        elif changes:
            self.plan.set_profile(person, pending_profile=json.dumps(changes, ensure_ascii=False))
            pending = True
        self.plan.send(None, department, Notice(OutboxKind.PROFILE, "profile", "auto-replied", True), to, mail,
                           signed_for=PROFILE_SIGNATURE, person=person.card(), changed=sorted(changes),
                           pending=changes if pending else {}, unread=request.unread if proof.ok else (),
                           unread_count=len(request.unread))
        done = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "shown"
        if pending:
            return (Disposition.PROFILE_PENDING,
                    f"profile of {person.email}: {done} waits for confirmation ({proof.how})")
        return (Disposition.PROFILE_UPDATED if changes else Disposition.PROFILE_SENT,
                f"profile of {person.email}: {done}")
