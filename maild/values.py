"""The vocabulary every stage shares: the envelope, references to tickets and people, the
words a message's outcome and a ticket's state are spelled in, the exit statuses, the clock,
and how a moment reads to people (``LocalTime``: the company's zone; storage stays UTC).

The enums are ``StrEnum``s: their values are what the database, the logs and the ``--json``
output have always held, so a member compares equal to the stored string and nothing
outside the code changes. A value that is not a member (a rule's own closing template, say)
is a reason to look, not a crash: see ``Disposition.closed``.
"""
from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from dateutil import tz


class Exit(enum.IntEnum):
    """sysexits.h: what a command's exit status tells the MTA or supervisor that ran it."""
    OK = 0
    DATAERR = 65        # the input is bad: retrying the same input will not help
    NOUSER = 67         # no such recipient
    CANTCREAT = 73      # a file or directory cannot be created
    TEMPFAIL = 75       # try again later: only for what waiting can fix
    NOPERM = 77         # permission refused: a person must grant it
    CONFIG = 78         # the configuration is wrong: a person must change it


class Disposition(enum.StrEnum):
    """What became of an inbound message (``inbound.disposition``, ``maild log``)."""
    TICKET_CREATED = "ticket-created"
    REPLY_ADDED = "reply-added"
    RESPONSE_ADDED = "response-added"
    AUTO_REPLY_RECORDED = "auto-reply-recorded"      # a robot's mail on a ticket: an event
    UNAUTHENTICATED_STAFF = "unauthenticated-staff"
    DUPLICATE = "duplicate"
    BOUNCE_RECORDED = "bounce-recorded"
    AUTO_REPLY_IGNORED = "auto-reply-ignored"
    REFUSED_DOMAIN = "refused-domain"
    REFUSED_OWN_ADDRESS = "refused-own-address"
    HELD_OVER_BUDGET = "held-over-budget"
    COMMAND_APPLIED = "command-applied"
    COMMAND_REFUSED = "command-refused"
    HISTORY_SENT = "history-sent"
    SEARCH_SENT = "search-sent"             # #найти from an employee: their tickets that matched
    PROFILE_SENT = "profile-sent"
    PROFILE_UPDATED = "profile-updated"
    PROFILE_PENDING = "profile-pending"
    NOT_ANSWERED = "not-answered"
    WEB_LINK_SENT = "web-link-sent"         # the web pages' job: a confirm or sign-in link mailed
    WEB_LINK_REFUSED = "web-link-refused"   # ... to an address maild does not mail such links to
    CLOSED = "closed"           # closed at once by a rule: stored as ``closed-<template>``

    @staticmethod
    def closed(template: str) -> str:
        """The stored spelling of a rule's closing (``closed-not-handled``)."""
        return "closed-" + template.replace("_", "-")


class Status(enum.StrEnum):
    """A ticket's state (``tickets.status``)."""
    OPEN = "open"               # waits for the department
    ANSWERED = "answered"       # the department answered, waits for the requester
    CLOSED = "closed"


class OutboxKind(enum.StrEnum):
    """Why a mail is sent (``outbox.kind``): the loop guard counts by it, notices are once
    a day or an hour per kind. A rule's own answer (``reply``/``close`` in rules.toml) is
    sent under its template's name, which is not a member."""
    ACK = "ack"
    ALERT = "alert"
    RECEIPT = "receipt"
    RESPONSE = "response"
    STATUS = "status"
    SECURITY = "security"
    FAILURE = "failure"
    DIGEST = "digest"
    REPORT = "report"
    LOOP = "loop"                   # a marker row, never sent: the hour's count of notices
    LOOP_NOTICE = "loop-notice"
    OUTSIDE = "outside"
    HISTORY = "history"
    PROFILE = "profile"
    SEARCH = "search"               # an employee's #найти answered
    DEADLINE = "deadline"           # a missed deadline, to staff (deciding/escalation.py)
    BUDGET = "budget"
    PARTICIPANTS = "participants"
    WEB_LINK = "web-link"           # a link the web pages asked for (confirm a request, sign in)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session said, kept beside the raw bytes in the spool."""
    mail_from: str                 # '' for the null sender <>
    rcpt_to: tuple[str, ...]
    peer: str = ""
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    helo: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=True).encode("ascii")

    @classmethod
    def from_json(cls, line: bytes) -> Envelope:
        data = json.loads(line)
        data["rcpt_to"] = tuple(data.get("rcpt_to", ()))
        return cls(**data)

    @property
    def received(self) -> datetime:
        return datetime.fromisoformat(self.received_at)


@dataclass(frozen=True)
class TicketRef:
    """What the pipeline needs of a ticket. A ticket a plan opens has a negative ``id``
    until the writer gives it a real one (``acting/apply``)."""
    id: int
    number: str
    department: str
    subject: str
    status: str
    created_at: datetime
    requester_id: int | None = None
    assignee: str | None = None
    closed_at: datetime | None = None
    category: str | None = None
    kind: str | None = None
    resolution: str | None = None
    priority: str = "normal"
    respond_by: datetime | None = None      # deadlines (deciding/deadlines.py)
    resolve_by: datetime | None = None
    responded_at: datetime | None = None
    paused_minutes: int | None = None
    escalated: int = 0
    merged_into: int | None = None          # #объединить: the surviving ticket's id


@dataclass(frozen=True)
class PersonRef:
    """A person; a negative ``id`` is one a plan creates (first contact)."""
    id: int
    email: str
    name: str
    phone: str = ""         # the profile (#profile by mail), shown to staff on every ticket
    office: str = ""
    company: str = ""
    pending_profile: str = ""   # a #profile change waiting for confirmation (JSON)

    def card(self) -> dict:
        """What templates show of a person."""
        return {"email": self.email, "name": self.name, "phone": self.phone,
                "office": self.office, "company": self.company}


def card(person: PersonRef | None) -> dict:
    """What templates show of a person (empty fields for nobody)."""
    return person.card() if person is not None else PersonRef(0, "", "").card()


@dataclass(frozen=True)
class Notice:
    """What kind of mail to send: ``kind`` counts for the loop guard and the once-a-day
    notices, ``template`` words it, ``auto_submitted`` is RFC 3834's value (auto-replied
    answers a message, auto-generated does not) and ``signed_reply`` gives it a Reply-To
    signed for its recipient and the ticket (staff mail: auth.py)."""
    kind: str
    template: str
    auto_submitted: str = "auto-generated"
    signed_reply: bool = False


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The time, in UTC (storage is UTC; people see the configured zone)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that says what it is told (tests, ``maild replay --at``)."""
    at: datetime

    def now(self) -> datetime:
        return self.at


WEEKDAYS_GENITIVE = ("понедельника", "вторника", "среды", "четверга", "пятницы", "субботы", "воскресенья")


@dataclass(frozen=True)
class LocalTime:
    """Moments as people read them: in the company's zone (the ``timezone`` key), each time
    with its zone's label, so nobody has to know that storage is UTC. The one place mails,
    reports, digests and the command line format times; a naive datetime is UTC (storage)."""
    zone: tzinfo

    def local(self, moment: datetime) -> datetime:
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(self.zone)

    def date_of(self, moment: datetime | date) -> date:
        """The company's date of a moment (a date is already one)."""
        return self.local(moment).date() if isinstance(moment, datetime) else moment

    def label(self, moment: datetime) -> str:
        """The zone's abbreviation when it has one in letters (MSK, CET, UTC), else the offset
        (UTC+4, UTC-3, UTC+5:30): the tz database spells many zones as bare numbers (+04)."""
        local = self.local(moment)
        name = local.tzname() or ""
        if name.isascii() and name.isalpha():
            return name
        minutes = round((local.utcoffset() or timedelta(0)).total_seconds() / 60)
        if minutes == 0:
            return "UTC"
        hours, rest = divmod(abs(minutes), 60)
        return f"UTC{'+' if minutes > 0 else '-'}{hours}" + (f":{rest:02d}" if rest else "")

    def when(self, moment: datetime) -> str:
        """``02.12.2026 01:36 UTC+4``: day, time and the zone it is in."""
        return f"{self.local(moment):%d.%m.%Y %H:%M} {self.label(moment)}"

    def by(self, moment: datetime) -> str:
        """``14:00 вторника, 08.12.2026``: a deadline in plain words (after "до"), in the
        company's zone."""
        local = self.local(moment)
        return f"{local:%H:%M} {WEEKDAYS_GENITIVE[local.weekday()]}, {local:%d.%m.%Y}"

    def day(self, moment: datetime | date) -> str:
        """``02.12.2026``, the company's day of the moment."""
        return f"{self.date_of(moment):%d.%m.%Y}"

    def day_before(self, moment: datetime | date) -> str:
        """The last day of a period that ends (exclusive) at ``moment``, a midnight: the day is
        taken before stepping back, so a DST change on the last day cannot shift it."""
        return f"{self.date_of(moment) - timedelta(days=1):%d.%m.%Y}"

    def today(self, clock: Clock) -> date:
        return self.date_of(clock.now())

    def midnight(self, day: date) -> datetime:
        """The first moment of the company's ``day``, in UTC (what queries compare). Where a
        DST change skips midnight, the day begins at the first moment that exists."""
        start: datetime = tz.resolve_imaginary(datetime.combine(day, time.min, tzinfo=self.zone))
        return start.astimezone(UTC)
