"""``#срок`` / ``#deadline``: set or move the ticket's resolution deadline, with a reason
(``#срок 05.12.2026 14:00 ждём картридж``, ``#срок 4ч ...``, ``#срок 2д ...``): the reason
goes into the ticket's history, the requester is not told (deciding/deadlines.py)."""
from __future__ import annotations

from maild.deciding import deadlines
from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.values import LocalTime, Status


class Deadline(StaffCommand):
    key = "deadline"
    words = ("срок", "deadline")
    usage, usage_en = "#срок 05.12.2026 14:00|4ч причина", "#deadline 05.12.2026 14:00|4h reason"
    help = "назначить или перенести срок решения, с причиной"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        when, reason = deadlines.split_target(c.args)
        if not when:
            return Refusal("missing-argument", self.usage)
        if not reason:
            return Refusal("deadline-reason", when)
        if k.state.status == Status.CLOSED:
            return Refusal("already-closed")
        terms = k.org.deadlines.of(k.here.code) if k.org.deadlines else None
        if terms is None or k.now is None:
            return Refusal("no-deadlines", k.here.short)
        at = deadlines.target(when, terms.work, k.now, terms.work.hours.zone)
        if isinstance(at, str):
            return Refusal("bad-deadline", at)
        return Step(c, value=reason, at=at)

    def plan(self, step: Step, a: Applying) -> None:
        assert step.at is not None and a.org.deadlines is not None      # check() saw to both
        before = a.on.resolve_by
        a.ticket = a.plan.set_clock(a.on, a.org.deadlines.moved(a.on, step.at, a.plan.now))
        terms = a.org.deadlines.of(a.on.department)
        local = LocalTime(terms.work.hours.zone) if terms else None
        said = local.by(step.at) if local else f"{step.at:%d.%m.%Y %H:%M} UTC"
        was = f" (был до {local.by(before)})" if before and local else ""
        a.plan.event(a.on, f"Срок решения: до {said}{was}. Причина: {step.value}", a.author)
