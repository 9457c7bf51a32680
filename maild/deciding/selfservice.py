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

``read`` is pure; ``SelfService.answer`` keeps the hourly limit and has the request's command
(commands/selfservice.py: ``History``, ``Profile``) plan the answer.
"""
from __future__ import annotations

import re
from datetime import timedelta

from maild.acting import store
from maild.deciding import auth, commands, match
from maild.deciding.auth import AuthResult
from maild.deciding.commands.selfservice import PROFILE_SIGNATURE, Asking, Request, SelfServiceCommand
from maild.deciding.organisation import Department
from maild.deciding.plan import Planner
from maild.reading.mail import Mail, _printable
from maild.values import Disposition, PersonRef

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
ANSWERED_KINDS = ("profile", "history", "search")     # outbox kinds the hourly limit counts


def confirms(recipients: tuple[str, ...]) -> bool:
    """Sent to the address of a "confirm your profile" mail."""
    return any((auth.signed_ticket(r) or ("",))[0] == PROFILE_SIGNATURE for r in recipients)


def asks_by_subject(subject: str) -> bool:
    return _PREFIX.sub("", subject).strip(" .!?").lower() in HISTORY_SUBJECTS


def read(subject: str, written: str, codes: set[str], names_ticket: bool = False, staff: bool = False
         ) -> Request | None:
    """The request in a mail: ``written`` is what the sender wrote (quotes stripped), read
    by the commands' own parser. A subject asks for history only in new mail: a reply to
    a ticket titled "история" is a reply. A staff member's ``#найти`` is a staff command
    (their department's tickets), not this."""
    block = commands.read(written)
    first = block.commands[0] if block is not None else None
    if block is not None and first is not None and first.keyword == "find" and not staff:
        return Request("find", words=first.args, leftover=len(block.commands) > 1 or bool(block.text.strip()))
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
    helpdesk into a mail cannon aimed at someone. What each answer says is its command's
    (commands/selfservice.py)."""

    def __init__(self, plan: Planner):
        self.plan = plan

    def answer(self, request: Request, person: PersonRef, department: Department, mail: Mail,
               proof: AuthResult) -> tuple[Disposition, str]:
        """Plan the answer; returns (disposition, reason)."""
        if not person.email.isascii():
            return Disposition.NOT_ANSWERED, f"{person.email}: an address our relay cannot answer"
        since = self.plan.now - timedelta(hours=1)
        answered = (sum(store.count_since(self.plan.conn, person.email, kind, since) for kind in ANSWERED_KINDS)
                    + sum(self.plan.pending_count(person.email, kind) for kind in ANSWERED_KINDS))
        if answered >= ANSWERS_PER_HOUR:
            return Disposition.NOT_ANSWERED, f"{person.email} had {ANSWERS_PER_HOUR} answers this hour already"
        command = commands.BY_KEY[request.kind if request.kind in ("history", "find") else "profile"]
        assert isinstance(command, SelfServiceCommand)
        return command.answer(Asking(self.plan, request, person, department, mail, proof))
