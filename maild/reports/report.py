"""The reports managers and HR ask for: ``maild report phone`` and ``maild report summary``.

Both read the database only; formatting (table, CSV, JSON, the SVG chart) is here too, so
the command line and the mailed report show the same figures. The period is UTC moments
(the company's midnights, reports/dates.py); the table, the CSV and the chart show the
company's dates (``LocalTime``), the JSON keeps ISO UTC.

Definitions (the README repeats them):
- phone: tickets with source ``phone`` (filed by staff with ``#new``) opened in the
  period, per employee, most first.
- summary, per department and category, for the period [since, until), read from the
  tickets' history (``ticket_changes``), so a past period reads the same later:
  opened (in the department it opened in), closed (closings in the period, in the
  department of the moment; a ticket closed, reopened and closed again counts twice),
  closed without processing (closings by the rules' policy: ``uncategorised``,
  ``not_handled``), transferred (handed to another department in the period, counted
  where it left) and transferred_in (where it arrived), median hours to the first response
  (tickets opened in the period that have one) and to close (closings in the period, policy
  closings left out: they take no time and would hide the real figure); and per department
  the backlog at ``until`` (tickets open then, where they were then) by age. The category
  is the ticket's present one.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from maild.acting.models import Entry, Person, Ticket, TicketChange
from maild.values import LocalTime

POLICY_CLOSINGS = ("uncategorised", "not_handled")
AGE_BUCKETS = ((1, "< 1 дня"), (3, "1–3 дня"), (7, "3–7 дней"), (30, "7–30 дней"), (None, "> 30 дней"))
NO_CATEGORY = "—"


# -- phone ------------------------------------------------------------------------------------
@dataclass
class PhoneRow:
    name: str
    email: str
    company: str
    office: str
    count: int = 0
    tickets: list[tuple[str, datetime]] = field(default_factory=list)


def phone(conn: Connection, since: datetime, until: datetime, department: str | None = None) -> list[PhoneRow]:
    t, p = Ticket.__table__, Person.__table__
    query = select(p.c.email, p.c.name, p.c.company, p.c.office, t.c.number, t.c.created_at).select_from(
        t.join(p, t.c.requester_id == p.c.id)).where(
        t.c.source == "phone", t.c.created_at >= since, t.c.created_at < until).order_by(t.c.created_at, t.c.id)
    if department:
        query = query.where(t.c.department == department.upper())
    rows: dict[str, PhoneRow] = {}
    for r in conn.execute(query):
        row = rows.setdefault(r.email, PhoneRow(r.name, r.email, r.company, r.office))
        row.count += 1
        row.tickets.append((r.number, r.created_at))
    return sorted(rows.values(), key=lambda row: (-row.count, row.name.lower(), row.email))


PHONE_COLUMNS = ("name", "email", "company", "office", "count", "tickets")


def phone_records(rows: list[PhoneRow]) -> list[dict]:
    return [{"name": r.name, "email": r.email, "company": r.company, "office": r.office, "count": r.count,
             "tickets": [{"number": n, "opened": d.isoformat(timespec="seconds")} for n, d in r.tickets]}
            for r in rows]


def phone_table(rows: list[PhoneRow], local: LocalTime) -> str:
    if not rows:
        return "(no phone tickets in the period)"
    lines = [f"{'count':>5}  {'employee':<40} {'company / office':<30} tickets"]
    for r in rows:
        who = f"{r.name} <{r.email}>" if r.name else r.email
        where = " / ".join(x for x in (r.company, r.office) if x) or "-"
        tickets = ", ".join(f"{n} ({local.day(d)})" for n, d in r.tickets)
        lines.append(f"{r.count:>5}  {who:<40} {where:<30} {tickets}")
    return "\n".join(lines)


def _cell(value: object) -> object:
    """A cell a spreadsheet shows as text, never runs: a leading = + - @ is a formula there."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, out):
        self.writer = csv.writer(out)

    def writerow(self, row):
        self.writer.writerow([_cell(v) for v in row])


def phone_csv(rows: list[PhoneRow], local: LocalTime) -> str:
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(PHONE_COLUMNS)
    for r in rows:
        writer.writerow([r.name, r.email, r.company, r.office, r.count,
                         " ".join(f"{n}@{local.date_of(d):%Y-%m-%d}" for n, d in r.tickets)])
    return out.getvalue()


# -- summary ----------------------------------------------------------------------------------
@dataclass
class SummaryRow:
    department: str
    category: str
    opened: int = 0
    closed: int = 0
    closed_unprocessed: int = 0
    transferred: int = 0            # handed to another department in the period
    transferred_in: int = 0         # received from another department in the period
    median_first_response_hours: float | None = None
    median_close_hours: float | None = None
    with_deadline: int = 0          # opened in the period with a response deadline (deciding/deadlines.py)
    answered_in_time: int = 0       # ... whose first response came by it


@dataclass
class Summary:
    since: datetime
    until: datetime
    rows: list[SummaryRow]
    backlog: dict[str, dict[str, int]]        # department -> age bucket -> open tickets


def _hours(values: list[float]) -> float | None:
    return round(statistics.median(values) / 3600, 1) if values else None


def _aware(value: datetime, like: datetime) -> datetime:
    return value.replace(tzinfo=like.tzinfo) if value.tzinfo is None else value


def summary(conn: Connection, since: datetime, until: datetime, department: str | None = None) -> Summary:
    """From the tickets' history (ticket_changes), so a past period reads the same later:
    a ticket reopened since still counts as closed then, a transferred one where it was."""
    t, e, c = Ticket.__table__, Entry.__table__, TicketChange.__table__
    history = conn.execute(
        select(c.c.ticket_id, c.c.at, c.c.field, c.c.old, c.c.new, c.c.detail, c.c.department,
               t.c.category, t.c.created_at).select_from(c.join(t, c.c.ticket_id == t.c.id))
        .where(t.c.created_at < until).order_by(c.c.ticket_id, c.c.at, c.c.id)).all()
    opened_ids = [h.ticket_id for h in history if h.field == "opened" and since <= h.at < until]
    first = dict(conn.execute(
        select(e.c.ticket_id, func.min(e.c.created_at)).where(
            e.c.type == "response", e.c.unauthenticated.is_(False), e.c.ticket_id.in_(opened_ids))
        .group_by(e.c.ticket_id)).all()) if opened_ids else {}
    respond_by = dict(conn.execute(
        select(t.c.id, t.c.respond_by).where(t.c.id.in_(opened_ids), t.c.respond_by.is_not(None))).all()
    ) if opened_ids else {}
    groups: dict[tuple[str, str], tuple[SummaryRow, list[float], list[float]]] = {}

    def group(dept: str, category: str | None):
        return groups.setdefault((dept, category or NO_CATEGORY), (SummaryRow(dept, category or NO_CATEGORY), [], []))

    # Each ticket's state at the end of the period: its department and whether it was open.
    state: dict[int, tuple[str, bool, datetime]] = {}
    for h in history:
        if h.at >= until:
            continue
        dept, is_open, created = state.get(h.ticket_id, (h.department, True, h.created_at))
        if h.field == "status":
            is_open = h.new != "closed"
        state[h.ticket_id] = (h.department, is_open, created)
        if not since <= h.at:
            continue
        if h.field == "opened":
            out, responses, _ = group(h.department, h.category)
            out.opened += 1
            answered = first.get(h.ticket_id)
            if answered is not None:
                responses.append((_aware(answered, h.at) - h.created_at).total_seconds())
            if (due := respond_by.get(h.ticket_id)) is not None:
                out.with_deadline += 1
                out.answered_in_time += answered is not None and _aware(answered, h.at) <= _aware(due, h.at)
        elif h.field == "status" and h.new == "closed":
            out, _, closes = group(h.department, h.category)
            out.closed += 1
            if h.detail in POLICY_CLOSINGS:
                out.closed_unprocessed += 1
            else:
                closes.append((h.at - h.created_at).total_seconds())
        elif h.field == "department" and h.old:
            group(h.old, h.category)[0].transferred += 1
            group(h.new, h.category)[0].transferred_in += 1
    backlog: dict[str, dict[str, int]] = {}
    for dept, is_open, created in state.values():
        if is_open:
            age = (until - created).total_seconds() / 86400
            bucket = next(label for limit, label in AGE_BUCKETS if limit is None or age < limit)
            counts = backlog.setdefault(dept, {label: 0 for _, label in AGE_BUCKETS})
            counts[bucket] += 1
    rows = []
    for key in sorted(groups):
        out, responses, closes = groups[key]
        if department and out.department != department.upper():
            continue
        out.median_first_response_hours, out.median_close_hours = _hours(responses), _hours(closes)
        rows.append(out)
    if department:
        backlog = {k: v for k, v in backlog.items() if k == department.upper()}
    return Summary(since, until, rows, backlog)


SUMMARY_COLUMNS = ("department", "category", "opened", "closed", "closed_unprocessed", "transferred",
                   "transferred_in", "median_first_response_hours", "median_close_hours", "with_deadline",
                   "answered_in_time")


def summary_records(report: Summary) -> dict:
    return {"since": report.since.isoformat(), "until": report.until.isoformat(),
            "rows": [asdict(r) for r in report.rows], "backlog": report.backlog}


def summary_table(report: Summary) -> str:
    head = (f"{'dept':<5} {'category':<28} {'opened':>6} {'closed':>6} {'unproc':>6} {'tr.out':>6} "
            f"{'tr.in':>6} {'1st resp h':>10} {'close h':>8} {'in time':>8}")
    lines = [head]
    for r in report.rows:
        lines.append(f"{r.department:<5} {r.category[:28]:<28} {r.opened:>6} {r.closed:>6} "
                     f"{r.closed_unprocessed:>6} {r.transferred:>6} {r.transferred_in:>6} "
                     f"{_figure(r.median_first_response_hours):>10} {_figure(r.median_close_hours):>8} "
                     f"{in_time(r):>8}")
    if not report.rows:
        lines.append("(nothing opened or closed in the period)")
    lines.append("")
    lines.append("open backlog at the end of the period, by age:")
    for dept, counts in sorted(report.backlog.items()):
        lines.append(f"  {dept}: " + ", ".join(f"{label}: {n}" for label, n in counts.items()))
    if not report.backlog:
        lines.append("  (none)")
    return "\n".join(lines)


def in_time(row: SummaryRow) -> str:
    """``7/9``: answered within the deadline, of the tickets that had one ("-": none had)."""
    return f"{row.answered_in_time}/{row.with_deadline}" if row.with_deadline else "-"


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def summary_csv(report: Summary) -> str:
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(SUMMARY_COLUMNS)
    for r in report.rows:
        writer.writerow(["" if v is None else v for v in asdict(r).values()])
    return out.getvalue()


def summary_svg(report: Summary, local: LocalTime) -> str:
    """A bar chart: opened and closed per department and category (no dependency: SVG is text)."""
    from xml.sax.saxutils import escape
    rows = report.rows or [SummaryRow("", "(нет данных)")]
    top = max([max(r.opened, r.closed) for r in rows] + [1])
    bar, gap, left, width = 14, 10, 260, 420
    height = 40 + len(rows) * (2 * bar + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14">Открыто и закрыто, {local.day(report.since)}–'
             f'{local.day_before(report.until)}</text>']
    y = 40
    for r in rows:
        label = escape(f"{r.department} {r.category}".strip())
        parts.append(f'<text x="10" y="{y + bar}">{label}</text>')
        for value, colour, name in ((r.opened, "#4a78c2", "открыто"), (r.closed, "#5aa05a", "закрыто")):
            w = round(width * value / top)
            parts.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar - 2}" fill="{colour}">'
                         f'<title>{name}: {value}</title></rect>')
            parts.append(f'<text x="{left + w + 4}" y="{y + bar - 3}">{value}</text>')
            y += bar
        y += gap
    parts.append(f'<text x="{left}" y="{height - 10}"><tspan fill="#4a78c2">■ открыто</tspan>  '
                 f'<tspan fill="#5aa05a">■ закрыто</tspan></text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def as_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
