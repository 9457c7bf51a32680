"""What kind of mail this is, decided in a fixed order with the reason recorded.

Pure function of the parsed mail and the envelope: no database, no side effects. Mail that
is itself automatic is never answered automatically (RFC 3834), which is what keeps two
robots from answering each other forever. The checks are a table, read top to bottom;
the first that fires decides and its reason is recorded with the message.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from maild.reading.mail import Mail
from maild.sending.render import LOOP_HEADER
from maild.values import Envelope


class Kind(enum.Enum):
    BOUNCE = "bounce"          # delivery reports: someone's mail did not arrive
    AUTOMATIC = "automatic"    # vacation replies, lists, robots, our own mail coming back
    PERSONAL = "personal"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str

    @property
    def automatic(self) -> bool:
        return self.kind is not Kind.PERSONAL


_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_ROBOT_LOCALPARTS = re.compile(r"^(no-?reply|do-?not-?reply|noreply-.*|bounce[s]?|auto-?reply)$", re.I)
# Subjects alone decide only in the forms servers and clients write, never in words a
# person might start a request with ("Не доставлено письмо клиенту", "В отпуске не работает VPN").
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undeliver(able|ed)( mail)?\b|delivery status notification|delivery failure\b"
    r"|failure (notice|delivery)\b|returned mail:|mail delivery (failed|status|subsystem)"
    r"|message status - undeliverable|non[- ]?delivery report|\[postmaster\]"
    r"|недоставленное сообщение:|не удается доставить:|уведомление о (не)?доставке)", re.I)
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|auto[- ]?response|out of (the )?office|abwesend"
    r"|automatische antwort|réponse automatique|автоматический ответ|автоответ)\s*:", re.I)

# The Message-IDs maild makes (render.Renderer.new_message_id): one as a message's own means
# our own mail came back (a forward loop, a client that resends what it got).
_OUR_MESSAGE_ID = re.compile(r"^[0-9a-f]{15,17}\.[0-9a-f]{12}@")

Check = Callable[[Mail, Envelope], "str | None"]


def _header(name: str, test: Callable[[str], bool] = lambda v: True) -> Check:
    def check(mail: Mail, envelope: Envelope) -> str | None:
        value = mail.header(name)
        return f"{name}: {value}" if value is not None and test(value.strip().lower()) else None
    return check


def _sender_local(pattern: Callable[[str], bool], what: str) -> Check:
    def check(mail: Mail, envelope: Envelope) -> str | None:
        for address in (mail.sender.email if mail.sender else "", envelope.mail_from):
            if address and pattern(address.rpartition("@")[0].lower()):
                return f"{what} sender {address}"
        return None
    return check


def _subject(pattern: re.Pattern, what: str) -> Check:
    def check(mail: Mail, envelope: Envelope) -> str | None:
        return f"{what} subject {mail.subject[:60]!r}" if pattern.search(mail.subject) else None
    return check


# The table: (kind, check). First match wins.
CHECKS: tuple[tuple[Kind, Check], ...] = (
    (Kind.AUTOMATIC, _header(LOOP_HEADER.lower())),                     # our own mail came back
    (Kind.AUTOMATIC, lambda m, e: f"our own Message-ID <{m.message_id}>"
        if m.message_id and _OUR_MESSAGE_ID.match(m.message_id) else None),
    (Kind.AUTOMATIC, lambda m, e: "read receipt (disposition-notification)"
        if m.content_type == "multipart/report"
        and "disposition-notification" in (m.header("content-type") or "").lower()
        else None),
    (Kind.BOUNCE, lambda m, e: "Content-Type: multipart/report" if m.content_type == "multipart/report" else None),
    (Kind.BOUNCE, lambda m, e: None if e.mail_from else "null envelope sender (MAIL FROM:<>)"),
    (Kind.BOUNCE, _header("x-failed-recipients")),
    (Kind.BOUNCE, _sender_local(lambda local: local in _DAEMONS, "mailer daemon")),
    (Kind.AUTOMATIC, _header("auto-submitted", lambda v: v.split(";")[0].strip() != "no")),
    (Kind.AUTOMATIC, _header("precedence", lambda v: v in _BULK_PRECEDENCE)),
    (Kind.AUTOMATIC, _header("x-autoreply")),
    (Kind.AUTOMATIC, _header("x-autorespond")),
    (Kind.AUTOMATIC, _header("x-auto-response-suppress")),
    (Kind.AUTOMATIC, _header("x-ms-exchange-inbox-rules-loop")),
    (Kind.AUTOMATIC, _header("list-id")),
    (Kind.AUTOMATIC, _header("list-unsubscribe")),
    (Kind.AUTOMATIC, _sender_local(lambda local: bool(_ROBOT_LOCALPARTS.match(local)), "robot")),
    (Kind.BOUNCE, _subject(_BOUNCE_SUBJECT, "non-delivery")),
    (Kind.AUTOMATIC, _subject(_AUTOREPLY_SUBJECT, "out-of-office")),
)


def classify(mail: Mail, envelope: Envelope) -> Verdict:
    for kind, check in CHECKS:
        reason = check(mail, envelope)
        if reason:
            return Verdict(kind, reason)
    return Verdict(Kind.PERSONAL, "no sign of automatic mail")
