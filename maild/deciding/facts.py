"""What the decision table's cases share about a message: the message itself (``Message``),
the rules and settings in force (``Context``), and the facts looked up once before the
table runs (``Facts``: the sender, staff or not, the ticket the mail names, an earlier
message under the same key).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from maild.acting import store
from maild.config import AuthConfig
from maild.deciding import match, rules
from maild.deciding.organisation import Department, Organisation, Staff
from maild.deciding.plan import Planner
from maild.reading import quotes
from maild.reading.classify import Verdict
from maild.reading.mail import Mail
from maild.routing.reader import Reader
from maild.sending.render import Renderer
from maild.values import Envelope, PersonRef


@dataclass(frozen=True)
class Message:
    """A parsed message and what intake knew of it."""
    spool_id: str
    envelope: Envelope
    mail: Mail
    verdict: Verdict
    key: str                                # the Message-ID, or the hash of the bytes
    routing: rules.Routing | None = None    # worked out beside the parsing, for new mail

    @functools.cached_property
    def written(self) -> str:
        """What the sender wrote (quotes, signatures, invisible marks gone): read once for
        self-service and staff commands alike."""
        return quotes.reply_text(self.mail.text, self.mail.html if self.mail.text_from_html else "",
                                 fallback=False)


@dataclass(frozen=True)
class Settings:
    """What deciding needs of the configuration."""
    auth: AuthConfig
    secret: bytes
    hostname: str
    reopen_days: int
    max_participants: int
    new_tickets_per_sender_hour: int
    web_url: str = "http://127.0.0.1:8025"     # where mailed links point (config web.url)
    link_hours: int = 24


@dataclass(frozen=True)
class Context:
    """The rules in force (one snapshot per batch) and the settings."""
    org: Organisation
    table: tuple[rules.Rule, ...]
    reader: Reader | None
    renderer: Renderer
    settings: Settings


@dataclass(frozen=True)
class Facts:
    """What the cases share, looked up once: the sender, whether they are staff, the
    ticket the mail names, the department it was written to, and the message's key."""
    key: str
    seen: store.Seen | None                 # an earlier message under the same key
    sender: str
    staff: Staff | None                     # the sender, if staff
    member: Staff | None                    # ... and the mail speaks only for them
    known: PersonRef | None                 # the sender as stored (id 0: not yet)
    name: str
    found: match.Match | None
    written_to: Department | None

    def sender_person(self, plan: Planner) -> PersonRef:
        """``author`` for the cases that only run with a sender (self-service, commands)."""
        person = self.author(plan)
        assert person is not None
        return person

    def author(self, plan: Planner) -> PersonRef | None:
        """The sender as a person of the plan (added on first contact): only the cases that
        make entries or answers ask, so refused mail leaves no one in ``people``."""
        if not self.sender:
            return None
        return plan.person(self.sender, self.name, rename=self.staff is None)


def message_key(mail: Mail, raw: bytes) -> str:
    """What makes a message the same message again: its Message-ID, or for mail without
    one the hash of its bytes."""
    return mail.message_id[:900] if mail.message_id else "sha256:" + hashlib.sha256(raw).hexdigest()


def first_department(org: Organisation, envelope: Envelope) -> Department | None:
    """The department written to: the first recipient that is a department address."""
    return next(filter(None, map(org.department_for_address, envelope.rcpt_to)), None)


def facts(m: Message, c: Context, plan: Planner) -> Facts:
    org, mail, envelope = c.org, m.mail, m.envelope
    key = m.key
    seen = store.duplicate_of(plan.conn, key)
    if seen is not None and not key.startswith("sha256:") and (
            seen.mail_from.lower() != envelope.mail_from.lower() and seen.spool_id != m.spool_id):
        # The same Message-ID from another sender is a collision (or an attempt to have a
        # real request dropped as a "duplicate"): a message of its own, keyed by
        # Message-ID and sender, so that sender's own retry is still a duplicate.
        plan.warn(f"Message-ID {key[:200]} of inbound #{seen.id} (from {seen.mail_from or '<>'}) reused by "
                  f"{envelope.mail_from or '<>'}: processed as a new message")
        key = f"{key[:600]}#from:{envelope.mail_from.lower()[:320]}"
        seen = store.duplicate_of(plan.conn, key)
    sender = mail.sender.email if mail.sender else envelope.mail_from
    # Staff authority needs one unambiguous author; staff names come from the rules, so a
    # mail in a staff member's name never renames them.
    staff = org.staff_by_email(sender) if sender else None
    name = staff.name if staff else (mail.sender.name if mail.sender else "")
    known = (plan.person_ref(sender) or PersonRef(0, sender.strip().lower(), name)) if sender else None
    found = None if seen is not None else match.find(plan.conn, mail, {d.code for d in org.departments},
                                                      envelope.rcpt_to)
    return Facts(key, seen, sender, staff, staff if mail.sole_author else None, known, name, found,
                 first_department(org, envelope))
