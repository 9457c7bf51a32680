"""Working time (issue 17): the Russian production calendar and a department's hours, and
the arithmetic deadlines are made of: "16 working hours after this moment", "how many
working minutes lie between these two".

The calendar is ``rules/calendar.toml``, which the admin edits: a ``[[year]]`` table a year,
naming its public holidays (ТК РФ ст. 112), the weekdays the government moved a day off
to, the weekend days it made working (a working Saturday) and the shortened pre-holiday
days (an hour shorter, ст. 95). A year the file does not name falls back to weekends and
the fixed public holidays, without transfers. ``maild rules calendar YEAR`` drafts a
year's table from the ``holidays`` library, which knows the government's transfers.

A department's hours (``[hours]`` of its file): a start, an end, a lunch break, a zone.
Times are computed in UTC from each working period's local bounds, so a zone's offset
changes cannot shift them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from maild.deciding.organisation import RulesError, Source

CALENDAR_FILE = "calendar.toml"
# ТК РФ ст. 112: the public holidays every year has (January 1-6 and 8 are the New Year
# holidays, 7 is Christmas).
FIXED_HOLIDAYS = tuple((1, d) for d in range(1, 9)) + ((2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4))
SHORTER_BY = timedelta(hours=1)
MAX_DAYS = 3 * 366          # no deadline is further away: a guard against a calendar without working days


@dataclass(frozen=True)
class Calendar:
    """Which days are working days (``rules/calendar.toml``)."""
    days_off: frozenset[date] = frozenset()     # public holidays and moved days off
    working: frozenset[date] = frozenset()      # weekend days made working
    short: frozenset[date] = frozenset()        # working days an hour shorter
    years: frozenset[int] = frozenset()         # the years the file names

    def is_working(self, day: date) -> bool:
        if day.year not in self.years:          # not in the file: weekends and fixed holidays
            return day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS
        return day in self.working or (day.weekday() < 5 and day not in self.days_off)

    def is_short(self, day: date) -> bool:
        return day in self.short


@dataclass(frozen=True)
class Hours:
    """A department's working day: ``start``-``end`` in ``zone``, less the lunch break."""
    zone: tzinfo
    start: time = time(9)
    end: time = time(18)
    lunch: tuple[time, time] | None = None

    @property
    def day_minutes(self) -> int:
        """A full working day, in minutes (what a deadline's "1d" means)."""
        whole = _minutes(self.end) - _minutes(self.start)
        return whole - (_minutes(self.lunch[1]) - _minutes(self.lunch[0]) if self.lunch else 0)

    def text(self) -> str:
        """``08:00–17:00, обед 12:00–13:00`` (the staff guide's and the CLI's words)."""
        out = f"{self.start:%H:%M}–{self.end:%H:%M}"
        return out + (f", обед {self.lunch[0]:%H:%M}–{self.lunch[1]:%H:%M}" if self.lunch else "")


@dataclass(frozen=True)
class WorkTime:
    """Working time of one department: its hours on the calendar's working days."""
    calendar: Calendar
    hours: Hours
    _periods: dict = field(default_factory=dict, compare=False, repr=False)

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of a local ``day``, as UTC moments (none on a day off)."""
        if day in self._periods:
            return self._periods[day]
        spans: list[tuple[datetime, datetime]] = []
        if self.calendar.is_working(day):
            h = self.hours
            end = datetime.combine(day, h.end, tzinfo=h.zone) - (SHORTER_BY if self.calendar.is_short(day)
                                                                 else timedelta(0))
            bounds = [(datetime.combine(day, h.start, tzinfo=h.zone), end)]
            if h.lunch:
                lunch = (datetime.combine(day, h.lunch[0], tzinfo=h.zone),
                         datetime.combine(day, h.lunch[1], tzinfo=h.zone))
                bounds = [(bounds[0][0], min(lunch[0], end)), (lunch[1], end)]
            spans = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in bounds if b > a]
        if len(self._periods) < 4096:
            self._periods[day] = spans
        return spans

    def add(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` working minutes after ``start`` (UTC); 0 minutes: the
        first working moment at or after it."""
        moment = _utc(start)
        left = timedelta(minutes=max(minutes, 0))
        day = moment.astimezone(self.hours.zone).date()
        for _ in range(MAX_DAYS):
            for a, b in self.periods(day):
                if moment >= b:
                    continue
                begin = max(moment, a)
                if left <= b - begin:
                    return begin + left
                left -= b - begin
            day += timedelta(days=1)
        raise RulesError(f"{CALENDAR_FILE}: no working time within {MAX_DAYS} days of {start:%d.%m.%Y}")

    def between(self, start: datetime, end: datetime) -> int:
        """Working minutes from ``start`` to ``end`` (negative when ``end`` is earlier)."""
        a, b = _utc(start), _utc(end)
        if b < a:
            return -self.between(b, a)
        b = min(b, a + timedelta(days=MAX_DAYS))     # a stored moment far away: counted as far as that
        total = timedelta(0)
        day, last = a.astimezone(self.hours.zone).date(), b.astimezone(self.hours.zone).date()
        while day <= last:
            for p, q in self.periods(day):
                if q > a and p < b:
                    total += min(q, b) - max(p, a)
            day += timedelta(days=1)
        return int(total.total_seconds() // 60)

    def end_of_day(self, day: date) -> datetime | None:
        """The end of a working ``day`` (UTC), None on a day off."""
        spans = self.periods(day)
        return spans[-1][1] if spans else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def load_calendar(rules_dir: Path) -> Calendar:
    """``rules/calendar.toml``; without it, every year falls back to weekends and the fixed
    holidays. Every mistake names the file and the line (RulesError)."""
    path = Path(rules_dir) / CALENDAR_FILE
    if not path.is_file():
        return Calendar()
    src = Source(path)
    days_off: set[date] = set()
    working: set[date] = set()
    short: set[date] = set()
    years: set[int] = set()
    tables = src.data.get("year", [])
    if not isinstance(tables, list):
        raise src.error(src.table_line("year"), "the calendar is [[year]] tables, one a year")
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise src.error(src.table_line("year", i), "the calendar is [[year]] tables, one a year")
        year = table.get("year")
        if not isinstance(year, int) or not 2000 <= year <= 2100:
            raise src.error(src.key_line("year", i, "year"), "[[year]] needs year = YYYY (a number)")
        if year in years:
            raise src.error(src.key_line("year", i, "year"), f"year {year} is named twice")
        years.add(year)
        lists = {}
        for key in ("holidays", "days_off", "working", "short"):
            value = table.get(key, [])
            line = src.key_line("year", i, key)
            if not isinstance(value, list) or not all(type(d) is date for d in value):
                raise src.error(line, f"year {year}: {key} must be a list of dates (2026-01-09, unquoted)")
            if wrong := [d for d in value if d.year != year]:
                raise src.error(line, f"year {year}: {key} names {wrong[0].isoformat()}, a day of another year")
            lists[key] = set(value)
        if weekdays := sorted(d for d in lists["working"] if d.weekday() < 5):
            raise src.error(src.key_line("year", i, "working"),
                            f"year {year}: working names {weekdays[0].isoformat()}, a weekday (working "
                            "lists the Saturdays and Sundays made working)")
        off = lists["holidays"] | lists["days_off"]
        if both := sorted(off & lists["working"]):
            raise src.error(src.key_line("year", i, "working"),
                            f"year {year}: {both[0].isoformat()} is both a day off and a working day")
        if idle := sorted(d for d in lists["short"] if d in off or (d.weekday() >= 5 and d not in lists["working"])):
            raise src.error(src.key_line("year", i, "short"),
                            f"year {year}: short names {idle[0].isoformat()}, which is not a working day")
        days_off |= off
        working |= lists["working"]
        short |= lists["short"]
    return Calendar(frozenset(days_off), frozenset(working), frozenset(short), frozenset(years))


def draft(year: int) -> str:
    """A ``[[year]]`` table for ``rules/calendar.toml`` from the ``holidays`` library (which
    follows the government's decrees on moved days off): ``maild rules calendar YEAR``. The
    admin checks it against the decree before adding it; the file, not the library, is what
    the daemon reads."""
    import holidays  # only this command needs it: the daemon reads the file

    ru = holidays.country_holidays("RU", years=year)
    statutory = sorted(date(year, m, d) for m, d in FIXED_HOLIDAYS)
    moved = sorted(d for d in ru if d.weekday() < 5 and d not in statutory)
    working = sorted(d for d in ru.weekend_workdays if d.year == year)

    def works(day: date) -> bool:
        return day in working or (day.weekday() < 5 and day not in ru)
    # ст. 95: the working day right before a public holiday is an hour shorter (31 December
    # before the next year's 1 January too).
    eves = [d - timedelta(days=1) for d in statutory] + [date(year, 12, 31)]
    short = sorted({d for d in eves if d.year == year and works(d)})

    def dates(days: list[date]) -> str:
        return "[" + ", ".join(d.isoformat() for d in days) + "]"
    return "\n".join((
        "[[year]]", f"year = {year}",
        f"# Drafted from the holidays library {holidays.__version__}: check it against the decree.",
        f"holidays = {dates(statutory)}", f"days_off = {dates(moved)}", f"working = {dates(working)}",
        f"short = {dates(short)}", ""))
