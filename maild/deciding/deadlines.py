"""Deadlines (SLA, issue 17): how long a department has to answer a request and to resolve
it, in working time, and what becomes of a ticket's deadlines as it moves.

- ``rules/departments/<D>.toml``: ``[hours]`` (the department's working day) and
  ``[deadlines]`` (``respond``, ``resolve``: the department's terms; ``escalate``: how long
  after a missed deadline the lead is told); a ``[[category]]`` may name its own
  ``respond``/``resolve``. A department without ``[deadlines]`` has none.
- A ticket's clock: ``respond_by`` (the first response), ``resolve_by``; it stops while the
  ticket waits for the employee (answered) or is closed, and starts again with the working
  time that was left when it reopens. ``#срок`` moves ``resolve_by`` by hand.

These are pure decisions: the Planner asks them and records what they return.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

from dateutil import tz

from maild.deciding.calendar import Calendar, Hours, WorkTime
from maild.deciding.organisation import Source
from maild.values import TicketRef

_DURATION = re.compile(r"^(?:(\d{1,5})(?:d|д|дн|дня|дней|день))?(?:(\d{1,6})(?:h|ч|час|часа|часов))?"
                       r"(?:(\d{1,7})(?:m|м|мин|минут|минуты))?$", re.IGNORECASE)
MAX_DAYS_AHEAD = 400        # no deadline, term or #срок further away (a year and a month)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def duration(text: str, day_minutes: int) -> int | None:
    """Working minutes of ``2d``, ``4h``, ``1h30m``, ``90m`` (or 2д, 4ч, 30мин): None when
    it is not one. A day is the department's full working day."""
    found = _DURATION.match("".join((text or "").split()))      # "1 ч 30 мин" is "1ч30мин"
    if not found or not any(found.groups()):
        return None
    days, hours, minutes = (int(g) if g else 0 for g in found.groups())
    total = days * day_minutes + hours * 60 + minutes
    # More working time than MAX_DAYS_AHEAD calendar days hold is no duration anyone means.
    return total if 0 < total <= MAX_DAYS_AHEAD * day_minutes * 5 // 7 else None


@dataclass(frozen=True)
class Terms:
    """Working minutes to the first response and to the resolution (None: no such deadline)."""
    respond: int | None = None
    resolve: int | None = None

    def over(self, default: Terms) -> Terms:
        return Terms(self.respond if self.respond is not None else default.respond,
                     self.resolve if self.resolve is not None else default.resolve)


@dataclass(frozen=True)
class DepartmentTime:
    work: WorkTime
    terms: Terms
    by_category: dict[str, Terms] = field(default_factory=dict)
    escalate: int = 120                 # working minutes after a missed deadline: the lead is told
    lead: str | None = None             # a staff login

    def terms_for(self, category: str | None) -> Terms:
        own = self.by_category.get((category or "").lower())
        return own.over(self.terms) if own else self.terms


@dataclass(frozen=True)
class Clock:
    """A ticket's deadline fields, as the Planner sets them (``SetFields``)."""
    respond_by: datetime | None
    resolve_by: datetime | None
    responded_at: datetime | None
    paused_minutes: int | None
    escalated: int

    def fields(self) -> dict[str, object]:
        return dict(respond_by=self.respond_by, resolve_by=self.resolve_by, responded_at=self.responded_at,
                    paused_minutes=self.paused_minutes, escalated=self.escalated)


def clock_of(ticket: TicketRef) -> Clock:
    return Clock(ticket.respond_by, ticket.resolve_by, ticket.responded_at, ticket.paused_minutes, ticket.escalated)


class Timed(Protocol):
    """What has a deadline's clock: a TicketRef, a queue row."""
    @property
    def status(self) -> str: ...
    @property
    def respond_by(self) -> datetime | None: ...
    @property
    def resolve_by(self) -> datetime | None: ...
    @property
    def responded_at(self) -> datetime | None: ...
    @property
    def paused_minutes(self) -> int | None: ...


@dataclass(frozen=True)
class Due:
    """The deadline a ticket is held to now, and which one."""
    at: datetime
    what: str               # respond | resolve


class Deadlines:
    """Every department's working time and terms (the departments without are absent)."""

    def __init__(self, departments: dict[str, DepartmentTime] | None = None):
        self.departments = departments or {}

    def of(self, department: str) -> DepartmentTime | None:
        return self.departments.get(department)

    def opened(self, department: str, category: str | None, at: datetime) -> Clock:
        """A new ticket's clock."""
        d = self.of(department)
        if d is None:
            return Clock(None, None, None, None, 0)
        terms = d.terms_for(category)
        return Clock(d.work.add(at, terms.respond) if terms.respond else None,
                     d.work.add(at, terms.resolve) if terms.resolve else None, None, None, 0)

    def recounted(self, ticket: TicketRef, department: str, category: str | None, since: datetime) -> Clock:
        """The deadlines counted again from ``since`` under new terms (a category set, a
        transfer); a first response already given stays given, a stopped clock stopped."""
        fresh = self.opened(department, category, since)
        old = clock_of(ticket)
        d = self.of(department)
        paused = old.paused_minutes
        if paused is not None and fresh.resolve_by is not None and d is not None:
            paused = d.work.between(since, fresh.resolve_by)
        return Clock(fresh.respond_by if old.responded_at is None else old.respond_by, fresh.resolve_by,
                     old.responded_at, paused if fresh.resolve_by else None, 0)

    def stopped(self, ticket: TicketRef, at: datetime, responded: bool) -> Clock:
        """The clock when the ticket stops waiting for the department (answered, closed):
        the working time left on ``resolve_by`` is kept; ``responded``: a first response."""
        old = clock_of(ticket)
        d = self.of(ticket.department)
        left = old.paused_minutes
        if left is None and old.resolve_by is not None and d is not None:
            left = d.work.between(at, old.resolve_by)
        return Clock(old.respond_by, old.resolve_by, old.responded_at or (at if responded else None), left,
                     0 if responded else old.escalated)

    def resumed(self, ticket: TicketRef, at: datetime) -> Clock:
        """The clock when the ticket waits for the department again: the time that was left
        counts from now (an overdue ticket stays overdue)."""
        old = clock_of(ticket)
        d = self.of(ticket.department)
        if old.paused_minutes is None or old.resolve_by is None or d is None:
            return replace_paused(old, None)
        if old.paused_minutes <= 0:
            return replace_paused(old, None)
        return Clock(old.respond_by, d.work.add(at, old.paused_minutes), old.responded_at, None, 0)

    def moved(self, ticket: TicketRef, to: datetime, at: datetime) -> Clock:
        """``#срок``: the resolution deadline is ``to``."""
        old = clock_of(ticket)
        d = self.of(ticket.department)
        paused = old.paused_minutes
        if paused is not None and d is not None:
            paused = d.work.between(at, to)
        return Clock(old.respond_by, to, old.responded_at, paused, 0)

    @staticmethod
    def due(ticket: Timed) -> Due | None:
        """The deadline in force while the ticket waits for the department: the earlier of
        the first response (until one is given) and the resolution (while the clock runs);
        None when it is held to none."""
        if ticket.status != "open":
            return None
        return held_to(ticket, running=True)


def held_to(ticket: Timed, running: bool = False) -> Due | None:
    """The earliest deadline not yet met (``running``: the resolution only while its clock
    runs). A ticket's escalation stage belongs to this deadline: it starts again only when
    this moment changes."""
    found = []
    if ticket.responded_at is None and ticket.respond_by is not None:
        found.append(Due(ticket.respond_by, "respond"))
    if ticket.resolve_by is not None and not (running and ticket.paused_minutes is not None):
        found.append(Due(ticket.resolve_by, "resolve"))
    return min(found, key=lambda d: d.at) if found else None


def replace_paused(clock: Clock, paused: int | None) -> Clock:
    return Clock(clock.respond_by, clock.resolve_by, clock.responded_at, paused, clock.escalated)


def target(text: str, work: WorkTime, now: datetime, zone: tzinfo) -> datetime | str:
    """What ``#срок`` names: a duration in working time from now (``4ч``, ``2д``), a day
    (``05.12`` or ``05.12.2026``: the end of that working day) or a day and a time
    (``05.12.2026 14:00``). A string is why it is none of them (the receipt's words)."""
    words = text.split()
    minutes = duration(" ".join(words), work.hours.day_minutes)
    if minutes is not None:
        return work.add(now, minutes)
    if words and re.fullmatch(r"\d+\s*\D*", " ".join(words)) and not _day(words[0], date(2000, 1, 1)):
        return f"«{' '.join(words)}»: длительность — до {MAX_DAYS_AHEAD} дней (4ч, 2д, 1ч30м)"
    day = _day(words[0] if words else "", now.astimezone(zone).date())
    if day is None:
        if words and re.fullmatch(r"\d{1,2}\.\d{1,2}(?:\.\d{4})?", words[0]):
            return f"даты {words[0]} нет в календаре"
        return "срок — это длительность (4ч, 2д, 1ч30м) или дата (05.12.2026 или 05.12.2026 14:00)"
    if len(words) > 1:
        clock = _CLOCK.match(words[1])
        if not clock or int(clock[1]) > 23 or int(clock[2]) > 59:
            return f"время «{words[1]}» не понято: пишите 14:00"
        moment = datetime.combine(day, time(int(clock[1]), int(clock[2])), tzinfo=zone)
    else:
        end = work.end_of_day(day)
        if end is None:
            return f"{day:%d.%m.%Y} — нерабочий день; назовите рабочий день или время"
        moment = end
    if moment <= now:
        return f"{moment.astimezone(zone):%d.%m.%Y %H:%M} уже прошло"
    if moment - now > timedelta(days=MAX_DAYS_AHEAD):
        return f"срок дальше {MAX_DAYS_AHEAD} дней не назначается"
    return moment


def split_target(text: str) -> tuple[str, str]:
    """``#срок``'s argument: the deadline (a duration, or a date and maybe a time) and the
    reason after it."""
    words = text.split()
    if not words:
        return "", ""
    if _day(words[0], date(2000, 1, 1)) is not None:
        take = 2 if len(words) > 1 and _CLOCK.match(words[1]) else 1
    else:
        # The longest run of first words that reads as a duration ("1 ч 30 м" is four).
        runs = [k for k in range(1, min(len(words), 6) + 1) if duration(" ".join(words[:k]), 480) is not None]
        take = max(runs) if runs else 1
    return " ".join(words[:take]), " ".join(words[take:]).strip(" .,;:—-")


def _day(word: str, today: date) -> date | None:
    found = re.fullmatch(r"(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?", word)
    if not found:
        return None
    day_, month = int(found[1]), int(found[2])
    years = [int(found[3])] if found[3] else [today.year, today.year + 1]
    for year in years:
        try:
            day = date(year, month, day_)
        except ValueError:
            continue        # 29.02 of a year that has none: the next that has it, or none
        # Without a year: this year's, unless it is more than a month gone (05.01 said in
        # December is next January; 01.12 said on 03.12 is two days gone, and said so).
        if found[3] or day >= today - timedelta(days=31):
            return day
    return None


# -- the rules files' sections --------------------------------------------------------------
def load(rules_dir, calendar: Calendar, default_zone: tzinfo, logins: dict[str, set[str]]) -> Deadlines:
    """Each department file's ``[hours]``, ``[deadlines]`` and its categories' terms;
    ``logins``: each department's staff logins (a lead must be one). RulesError names the
    file and the line."""
    from pathlib import Path
    out: dict[str, DepartmentTime] = {}
    for path in sorted((Path(rules_dir) / "departments").glob("*.toml")):
        src = Source(path)
        code = str(src.data.get("department", {}).get("code", ""))
        table = src.data.get("deadlines")
        if table is None:
            continue
        if not isinstance(table, dict):
            raise src.error(src.table_line("deadlines"), "[deadlines] must be a table")
        hours = _hours(src, src.data.get("hours", {}), default_zone)
        work = WorkTime(calendar, hours)
        terms = _terms(src, table, "deadlines", 0, hours.day_minutes)
        escalate = _span(src, table, "escalate", "deadlines", 0, hours.day_minutes, default="2h")
        lead = table.get("lead")
        if lead is not None and (not isinstance(lead, str) or lead not in logins.get(code, set())):
            raise src.error(src.key_line("deadlines", 0, "lead"),
                            f"[deadlines] lead {lead!r} is not a login of this department's [[staff]]")
        by_category = {}
        for i, category in enumerate(src.data.get("category", [])):
            own = _terms(src, category, "category", i, hours.day_minutes)
            if own != Terms():
                by_category[str(category.get("name", "")).lower()] = own
        out[code] = DepartmentTime(work, terms, by_category, escalate or 120, lead)
    return Deadlines(out)


def _terms(src: Source, table: dict, header: str, index: int, day: int) -> Terms:
    return Terms(_span(src, table, "respond", header, index, day), _span(src, table, "resolve", header, index, day))


def _span(src: Source, table: dict, key: str, header: str, index: int, day: int,
          default: str | None = None) -> int | None:
    value = table.get(key, default)
    if value is None:
        return None
    minutes = duration(value, day) if isinstance(value, str) and len(value) <= 40 else None
    if minutes is None:
        raise src.error(src.key_line(header, index, key),
                        f"[{header}] {key} = {value!r}: a working time like \"4h\", \"2d\", \"1h30m\" "
                        f"(d: the department's working day), at most {MAX_DAYS_AHEAD} days")
    return minutes


def _hours(src: Source, table: dict, default_zone: tzinfo) -> Hours:
    if not isinstance(table, dict):
        raise src.error(src.table_line("hours"), "[hours] must be a table")
    zone = default_zone
    if "zone" in table:
        named = _zone(str(table["zone"]))
        if named is None:
            raise src.error(src.key_line("hours", 0, "zone"),
                            f"[hours] zone {table['zone']!r}: a zone name like \"Europe/Saratov\"")
        zone = named
    start, end = _time(src, table, "start", "09:00"), _time(src, table, "end", "18:00")
    if end <= start:
        raise src.error(src.key_line("hours", 0, "end"), "[hours] end must be after start")
    lunch = None
    if "lunch" in table:
        parts = str(table["lunch"]).replace("–", "-").split("-")
        clocks = [_CLOCK.match(p.strip()) for p in parts]
        if len(parts) != 2 or not all(c and int(c[1]) <= 23 and int(c[2]) <= 59 for c in clocks):
            raise src.error(src.key_line("hours", 0, "lunch"), "[hours] lunch is \"12:00-13:00\"")
        first, second = (time(int(c[1]), int(c[2])) for c in clocks if c)
        lunch = (first, second)
        if not start < first < second < end:
            raise src.error(src.key_line("hours", 0, "lunch"), "[hours] lunch must lie inside start-end")
    return Hours(zone, start, end, lunch)


def _zone(name: str) -> tzinfo | None:
    """An IANA zone name's zone (as the config's ``timezone`` is read), None for anything
    else: a path, a POSIX rule ("UTC+3", whose sign dateutil reads the other way)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*", name):
        return None
    try:
        zone = tz.gettz(name)
    except (ValueError, OSError, Warning):
        return None
    return None if zone is None or isinstance(zone, tz.tzrangebase) else zone


def _time(src: Source, table: dict, key: str, default: str) -> time:
    found = _CLOCK.match(str(table.get(key, default)).strip())
    if not found or int(found[1]) > 23 or int(found[2]) > 59:
        raise src.error(src.key_line("hours", 0, key), f"[hours] {key} is a time like \"08:00\"")
    return time(int(found[1]), int(found[2]))
