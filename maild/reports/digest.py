"""The daily digest: to each staff member, their department's open tickets — overdue ones
first, then theirs, then the unassigned — as one mail (``maild digest``, run each working
morning by ``systemd/maild-digest.timer``). A department with nothing open sends nothing.

Overdue: waiting for the department (``open``: not answered, not closed) and untouched —
no message, response or change; robots' answers and refused forgeries do not count — for
``notifications.overdue_days``. An ``answered`` ticket waits for the employee.

Deadlines (a department with ``[deadlines]``): the tickets whose deadline in force has
passed, and those whose deadline falls within the next working day, each with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from maild.acting import lists
from maild.acting.actions import Actions
from maild.deciding.deadlines import Deadlines, Due
from maild.deciding.organisation import Organisation
from maild.values import Notice, OutboxKind, Recipient


@dataclass(frozen=True)
class DigestLine:
    row: lists.QueueRow
    age_days: int
    idle_days: int
    overdue: bool
    due: Due | None = None      # the deadline in force
    late: bool = False          # ... has passed
    near: bool = False          # ... falls within the next working day


def lines(conn: Connection, department: str, now: datetime, overdue_days: int,
          deadlines: Deadlines | None = None) -> list[DigestLine]:
    out = []
    terms = deadlines.of(department) if deadlines else None
    soon = terms.work.add(now, terms.work.hours.day_minutes) if terms else None
    for row in lists.queue(conn, department, limit=10_000):
        idle = now - row.updated_at
        due = Deadlines.due(row)
        late = due is not None and due.at <= now
        out.append(DigestLine(row, (now - row.created_at).days, idle.days,
                              row.status == "open" and idle >= timedelta(days=overdue_days), due, late,
                              due is not None and not late and soon is not None and due.at <= soon))
    return out


def send(actions: Actions, org: Organisation, now: datetime, department: str | None = None) -> int:
    """Queue the digests; returns how many mails."""
    sent = 0
    days = actions.notifications.overdue_days
    for dept in org.departments:
        if department and dept.code != department.upper():
            continue
        found = lines(actions.conn, dept.code, now, days, org.deadlines)
        if not found:
            continue
        for member in dept.staff:
            mine = [line for line in found if line.row.assignee == member.login]
            sent += len(actions.queue(
                None, dept, Notice(OutboxKind.DIGEST, "digest", "auto-generated"),
                [Recipient(member.email, member.name)],
                None, staff={"name": member.name, "login": member.login}, now=now, overdue_days=days,
                overdue=[line for line in found if line.overdue], mine=mine,
                unassigned=[line for line in found if not line.row.assignee], total=len(found),
                late=[line for line in found if line.late], near=[line for line in found if line.near]))
    actions.finish()
    return sent
