"""Dates as people type them, for reports: ``2026-11-01``, ``01.11.2026``, ``last month``,
``this week``, ``вчера``... Every form names a period (a day, a week, a month, a year):
``--since`` takes its first moment, ``--until`` its end, so ``--since "last month"
--until "last month"`` is the whole of last month and ``--until 30.11.2026`` includes the
30th. Weeks start on Monday. The days are the company's: a period begins and ends at
midnight in the configured zone (``LocalTime``), given back as UTC moments for the queries.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from dateutil import parser as date_parser
from dateutil.relativedelta import relativedelta

from maild.values import LocalTime


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
_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(?:(\d{4})[-/.](\d{1,2})|(\d{1,2})[-/.](\d{4}))$")
_YEAR_FIRST = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[t ]\d{1,2}:\d{2}\S*)?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
MONTH_NAMES = {name: n for n, names in enumerate((
    ("jan", "january", "январь", "января", "янв"), ("feb", "february", "февраль", "февраля", "фев"),
    ("mar", "march", "март", "марта", "мар"), ("apr", "april", "апрель", "апреля", "апр"),
    ("may", "май", "мая"), ("jun", "june", "июнь", "июня", "июн"), ("jul", "july", "июль", "июля", "июл"),
    ("aug", "august", "август", "августа", "авг"), ("sep", "sept", "september", "сентябрь", "сентября", "сен"),
    ("oct", "october", "октябрь", "октября", "окт"), ("nov", "november", "ноябрь", "ноября", "ноя"),
    ("dec", "december", "декабрь", "декабря", "дек")), start=1) for name in names}
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SHORT_YEAR = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}$")
_NAMED = re.compile(r"^(?:(\d{1,2})\s+)?([^\W\d_]+)\.?\s+(\d{4})$")
FORMS = ("2026-11-01, 01.11.2026, 2026-11, 11.2026, 2026, 1 ноября 2026, ноябрь 2026, Nov 2026, today, "
         "yesterday, this week, last week, this month, last month, this year, last year (or the Russian: "
         "вчера, прошлый месяц...)")


def _month(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    return start, start + relativedelta(months=1)


def period(text: str, today: date) -> tuple[date, date]:
    """The period ``text`` names: (first day, the day after the last). Anything that leaves
    part of a date to be guessed is refused rather than guessed."""
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
    try:
        if found := _YEAR.match(key):
            return date(int(found.group(1)), 1, 1), date(int(found.group(1)) + 1, 1, 1)
        if found := _MONTH.match(key):
            year, month = (found.group(1), found.group(2)) if found.group(1) else (found.group(4), found.group(3))
            return _month(int(year), int(month))
        if _SHORT_YEAR.match(key):
            raise ValueError("a two-digit year")        # 26.11.26: which century, which order?
        if (found := _COMPACT.match(key)) or (found := _YEAR_FIRST.match(key)):
            day = date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        elif found := _DAY_FIRST.match(key):
            day = date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
        elif (found := _NAMED.match(key)) and found.group(2) in MONTH_NAMES:
            month, year = MONTH_NAMES[found.group(2)], int(found.group(3))
            if found.group(1) is None:
                return _month(year, month)
            day = date(year, month, int(found.group(1)))
        else:
            day = _complete(key, today)
    except (ValueError, OverflowError):
        raise DateError(f"cannot read the date {text!r}; write one of: {FORMS}") from None
    return day, day + timedelta(days=1)


def _complete(text: str, today: date) -> date:
    """dateutil for the other spellings (``1 Nov 2026``, ``2026-11-01T10:00``), day first as
    Russians write; refused when it had to make up a part of the date."""
    parsed = [date_parser.parse(text, dayfirst=True, default=datetime(year, month, day)).date()
              for year, month, day in ((2001, 1, 1), (2002, 2, 2))]
    if parsed[0] != parsed[1]:
        raise ValueError("incomplete date")
    return parsed[0]


def since(text: str, today: date, local: LocalTime) -> datetime:
    """The first moment of the period (``today``: the company's date, ``local.today``)."""
    return local.midnight(period(text, today)[0])


def until(text: str, today: date, local: LocalTime) -> datetime:
    """The end of the period, exclusive."""
    return local.midnight(period(text, today)[1])
