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
  the sender's record, which staff see on every ticket; ``#профиль`` alone shows it.

``read`` is pure; ``SelfService.answer`` queues the reply and says what it did.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import match, store
from .actions import Actions, Notice, Recipient
from .organisation import Department
from .parse import Mail
from .store import PersonRef

HISTORY_SUBJECTS = {"история", "мои заявки", "history", "my tickets"}
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|ответ|отв|пересл)\s*(\[\d+\])?\s*:\s*)+", re.I)
_KEYWORDS = {"history": "history", "история": "history", "profile": "profile", "профиль": "profile"}
_FIRST_LINE = re.compile(r"^\\?#([^\W\d_]+)(?:[ \t]+(.*))?$")
# profile field -> the words people write for it
PROFILE_FIELDS = {
    "phone": ("телефон", "тел", "phone", "моб", "мобильный"),
    "office": ("кабинет", "каб", "комната", "офис", "office", "room"),
    "company": ("компания", "организация", "предприятие", "company"),
}
_FIELD_OF = {word: field for field, words in PROFILE_FIELDS.items() for word in words}
_FIELD_LINE = re.compile(r"^\s*([^\W\d_]+)\.?\s*[:=—-]\s*(.*?)\s*$")
FIELD_LIMITS = {"phone": 100, "office": 100, "company": 200}


@dataclass(frozen=True)
class Request:
    kind: str                               # history | profile
    number: str | None = None               # history of one ticket
    fields: tuple[tuple[str, str], ...] = ()     # profile: (field, value)
    unread: tuple[str, ...] = ()            # profile lines not understood


def asks_by_subject(subject: str) -> bool:
    return _PREFIX.sub("", subject).strip(" .!?").lower() in HISTORY_SUBJECTS


def read(subject: str, written: str, codes: set[str]) -> Request | None:
    """The request in a mail: ``written`` is what the sender wrote (quotes stripped)."""
    lines = [line.strip() for line in written.splitlines()]
    first = next((i for i, line in enumerate(lines) if line), None)
    found = _FIRST_LINE.match(lines[first]) if first is not None else None
    kind = _KEYWORDS.get(found.group(1).lower()) if found else None
    if kind == "history":
        args = (found.group(2) or "").strip()
        return Request("history", match.parse_number(args, codes) if args else None)
    if kind == "profile":
        fields, unread = [], []
        for line in [found.group(2) or ""] + lines[first + 1:]:
            if not line:
                continue
            field = _FIELD_LINE.match(line)
            name = _FIELD_OF.get(field.group(1).lower()) if field else None
            if name is None:
                unread.append(line)
            else:
                fields.append((name, field.group(2)[:FIELD_LIMITS[name]]))
        return Request("profile", fields=tuple(fields), unread=tuple(unread[:10]))
    if asks_by_subject(subject):
        return Request("history")
    return None


class SelfService:
    def __init__(self, actions: Actions):
        self.actions = actions

    def answer(self, request: Request, person: PersonRef, department: Department, mail: Mail) -> tuple[str, str]:
        """Queue the answer; returns (disposition, reason)."""
        conn = self.actions.conn
        to = [Recipient(person.email, person.name)] if person.email.isascii() else []
        if request.kind == "profile":
            changes = dict(request.fields)
            if changes:
                person = store.set_profile(conn, person, **changes)
            self.actions.queue(None, department, Notice("profile", "profile", "auto-replied"), to, mail,
                               person=person.card(), changed=sorted(changes), unread=request.unread)
            done = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "shown"
            return "profile-updated" if changes else "profile-sent", f"profile of {person.email}: {done}"
        if request.number is None:
            tickets = store.tickets_of(conn, person.id)
            self.actions.queue(None, department, Notice("history", "history", "auto-replied"), to, mail,
                               person=person.card(), tickets=tickets)
            return "history-sent", f"history of {person.email}: {len(tickets)} tickets"
        ticket = store.ticket_by_number(conn, request.number)
        mine = ticket is not None and ticket.requester_id == person.id
        entries = store.public_conversation(conn, ticket.id) if mine else []
        self.actions.queue(None, department, Notice("history", "history_ticket", "auto-replied"), to, mail,
                           person=person.card(), number=request.number, found=mine,
                           item=ticket if mine else None, entries=entries)
        return "history-sent", (f"conversation of {request.number} sent to its requester" if mine else
                                f"{request.number} is not a ticket of {person.email}: nothing shown")
