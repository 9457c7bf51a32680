"""Dates as people type them, for reports: ``2026-11-01``, ``01.11.2026``, ``last month``,
``this week``, ``вчера``... Every form names a period (a day, a week, a month, a year):
``--since`` takes its first moment, ``--until`` its end, so ``--since "last month"
--until "last month"`` is the whole of last month and ``--until 30.11.2026`` includes the
30th. Weeks start on Monday; times are UTC.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from dateutil import parser as date_parser
from dateutil.relativedelta import relativedelta


class DateError(ValueError):
    """Worded for the person who typed it."""


# phrase -> (unit, how many units back)
PHRASES = {
    "today": ("day", 0), "сегодня": ("day", 0),
    "yesterday": ("day", 1), "вчера": ("day", 1),
    "this week": ("week", 0), "эта неделя": ("week", 0), "на этой неделе": ("week", 0),
    "last week": ("week", 1), "прошлая неделя": ("week", 1), "на прошлой неделе": ("week", 1),
    "this month": ("month", 0), "этот месяц": ("month", 0), "в этом месяце": ("month", 0),
    "last month": ("month", 1), "прошлый месяц": ("month", 1), "в прошлом месяце": ("month", 1),
    "this year": ("year", 0), "этот год": ("year", 0), "в этом году": ("year", 0),
    "last year": ("year", 1), "прошлый год": ("year", 1), "в прошлом году": ("year", 1),
}
_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$|^(\d{1,2})\.(\d{4})$")
FORMS = "2026-11-01, 01.11.2026, 2026-11, 11.2026, today, yesterday, this week, last week, " \
        "this month, last month, this year, last year (or the Russian: вчера, прошлый месяц...)"


def period(text: str, today: date) -> tuple[date, date]:
    """The period ``text`` names: (first day, the day after the last)."""
    key = " ".join(text.lower().split())
    if key in PHRASES:
        unit, back = PHRASES[key]
        if unit == "day":
            start = today - timedelta(days=back)
            return start, start + timedelta(days=1)
        if unit == "week":
            start = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
            return start, start + timedelta(weeks=1)
        if unit == "month":
            start = today.replace(day=1) - relativedelta(months=back)
            return start, start + relativedelta(months=1)
        start = date(today.year - back, 1, 1)
        return start, date(start.year + 1, 1, 1)
    month = _MONTH.match(key)
    try:
        if month:
            year, number = (month.group(1), month.group(2)) if month.group(1) else (month.group(4), month.group(3))
            start = date(int(year), int(number), 1)
            return start, start + relativedelta(months=1)
        if _ISO.match(key):
            day = date.fromisoformat("-".join(part.zfill(2) for part in key.split("-")))
        else:
            # Day first, as Russians write dates (01.11.2026 is the 1st of November).
            day = date_parser.parse(key, dayfirst=True).date()
    except (ValueError, OverflowError, date_parser.ParserError):
        raise DateError(f"cannot read the date {text!r}; write one of: {FORMS}") from None
    return day, day + timedelta(days=1)


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def since(text: str, today: date) -> datetime:
    return _moment(period(text, today)[0])


def until(text: str, today: date) -> datetime:
    """The end of the period, exclusive."""
    return _moment(period(text, today)[1])
