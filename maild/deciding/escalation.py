"""Missed deadlines (issue 17): who is told, and when. A ticket whose deadline in force has
passed is escalated once a stage: first to its assignee (an unassigned ticket: the whole
department), then, ``escalate`` working time later, to the department's lead (no lead: the
department). A deadline that moves (a first response, ``#срок``, a resumed clock) starts the
stages again. The worker looks every minute; two nodes cannot both tell, because the stage
is claimed in the same transaction as the mail is queued (acting/store.claim_escalation).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from maild.deciding.deadlines import Deadlines, Due
from maild.deciding.organisation import Organisation, Staff
from maild.deciding.plan import Plan, Planner
from maild.values import Notice, OutboxKind, Recipient, TicketRef

ASSIGNEE, LEAD = 1, 2
DISPOSITION = "escalated"


@dataclass(frozen=True)
class Escalation:
    ticket: TicketRef
    stage: int              # ASSIGNEE or LEAD
    due: Due
    late_minutes: int       # working minutes since the deadline


def due_now(tickets: Iterable[TicketRef], deadlines: Deadlines, now: datetime) -> list[Escalation]:
    """The tickets whose deadline has passed and who has not been told yet."""
    out = []
    for ticket in tickets:
        due = deadlines.due(ticket)
        department = deadlines.of(ticket.department)
        if due is None or due.at > now or department is None:
            continue
        late = department.work.between(due.at, now)
        # One stage a look: the assignee is told before the lead, even after a downtime.
        if ticket.escalated < ASSIGNEE:
            out.append(Escalation(ticket, ASSIGNEE, due, late))
        elif ticket.escalated < LEAD and late >= department.escalate:
            out.append(Escalation(ticket, LEAD, due, late))
    return out


def plan(planner: Planner, escalation: Escalation, org: Organisation) -> Plan:
    """The mail and the ticket's event of one escalation."""
    ticket = escalation.ticket
    department = org.department_of(ticket.department)
    terms = org.deadlines.of(ticket.department) if org.deadlines else None
    told = _told(escalation.stage, ticket, department.staff, terms.lead if terms else None)
    what = "ответа" if escalation.due.what == "respond" else "решения"
    planner.send(ticket, department, Notice(OutboxKind.DEADLINE, "deadline_missed", "auto-generated", True),
                 [Recipient(s.email, s.name) for s in told], None, stage=escalation.stage,
                 what=what, due=escalation.due.at, late=_hours(escalation.late_minutes),
                 assignee=next((s.name for s in department.staff if s.login == ticket.assignee), ""))
    planner.event(ticket, f"Срок {what} истёк; сообщено: {', '.join(s.name for s in told)}")
    return planner.finish(DISPOSITION, f"stage {escalation.stage}: {escalation.due.what} deadline missed",
                          ticket, record=False)


def _told(stage: int, ticket: TicketRef, staff: tuple[Staff, ...], lead: str | None) -> list[Staff]:
    wanted = ticket.assignee if stage == ASSIGNEE else lead
    found = [s for s in staff if s.login == wanted]
    return found or list(staff)


def _hours(minutes: int) -> str:
    """``2 ч 30 мин`` of working time."""
    hours, rest = divmod(max(minutes, 0), 60)
    return " ".join(part for part in (f"{hours} ч" if hours else "", f"{rest} мин" if rest or not hours else "")
                    if part)
