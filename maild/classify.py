"""What kind of mail this is, decided in a fixed order with the reason recorded.

Pure function of the parsed mail and the envelope: no database, no side effects. Mail that
is itself automatic is never answered automatically (RFC 3834), which is what keeps two
robots from answering each other forever.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .parse import Mail
from .spool import Envelope


class Kind(enum.Enum):
    BOUNCE = "bounce"
    AUTOMATIC = "automatic"
    PERSONAL = "personal"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str

    @property
    def automatic(self) -> bool:
        return self.kind is not Kind.PERSONAL


_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def classify(mail: Mail, envelope: Envelope) -> Verdict:
    if mail.content_type == "multipart/report":
        return Verdict(Kind.BOUNCE, "Content-Type: multipart/report")
    if not envelope.mail_from:
        return Verdict(Kind.BOUNCE, "null envelope sender (MAIL FROM:<>)")
    auto = (mail.header("auto-submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return Verdict(Kind.AUTOMATIC, f"Auto-Submitted: {auto}")
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return Verdict(Kind.AUTOMATIC, f"Precedence: {precedence}")
    if mail.has_header("x-autoreply"):
        return Verdict(Kind.AUTOMATIC, "X-Autoreply header")
    return Verdict(Kind.PERSONAL, "no sign of automatic mail")
