"""Which ticket a message belongs to, if any.

Order: one of the conversation's Message-IDs in In-Reply-To/References (ours win), then
the ticket token in the subject: ``[#OSA-000001]``, also ``[OSA-1]``, any zero padding, any
case, anywhere behind reply/forward prefixes. A token that names no existing ticket is
ignored (the mail is a new request).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from maild.acting import store
from maild.deciding import auth
from maild.reading.mail import Mail
from maild.values import TicketRef

TOKEN_RE = re.compile(r"\[\s*#?\s*([A-Za-z][A-Za-z0-9]{1,9})\s*-\s*0*(\d{1,9})\s*\]")


@dataclass(frozen=True)
class Match:
    ticket: TicketRef
    how: str        # the reason, recorded with the message
    via: str | None = None      # the merged ticket the mail named, if it named one

    @property
    def numbers(self) -> tuple[str, ...]:
        """The numbers a staff member's reply address may be signed for."""
        return (self.ticket.number,) + ((self.via,) if self.via else ())


def subject_tokens(subject: str, codes: set[str]) -> list[str]:
    """Ticket numbers named in a subject, normalised (``OSA-000001``), in order."""
    out = []
    for code, number in TOKEN_RE.findall(subject):
        code = code.upper()
        if code in codes and int(number) > 0:
            out.append(store.ticket_number(code, int(number)))
    return list(dict.fromkeys(out))


def parse_number(text: str, codes: set[str]) -> str | None:
    """A ticket number as people type it (``osa-1``, ``#OSA-000001``), normalised."""
    found = subject_tokens(f"[{text.strip()}]", codes)
    return found[0] if found else None


def find(conn: Connection, mail: Mail, codes: set[str], rcpt: tuple[str, ...] = ()) -> Match | None:
    ids = tuple(dict.fromkeys(mail.references + mail.in_reply_to))
    ticket = store.ticket_by_message_ids(conn, ids)
    if ticket is not None:
        return _surviving(conn, Match(ticket, "In-Reply-To/References name a message of this ticket"))
    for number in subject_tokens(mail.subject, codes):
        ticket = store.ticket_by_number(conn, number)
        if ticket is not None:
            return _surviving(conn, Match(ticket, f"subject token [#{number}]"))
    for address in rcpt:
        signed = auth.signed_ticket(address)      # the signature is checked for staff in auth
        ticket = store.ticket_by_number(conn, signed[0]) if signed else None
        if ticket is not None:
            return _surviving(conn, Match(ticket, f"reply address for {ticket.number}"))
    return None


def _surviving(conn: Connection, found: Match) -> Match:
    """A merged ticket's mail belongs to the ticket it was merged into (#объединить)."""
    survivor = store.surviving(conn, found.ticket)
    if survivor.id == found.ticket.id:
        return found
    return Match(survivor, f"{found.how}; {found.ticket.number} was merged into {survivor.number}",
                 found.ticket.number)
