"""``#передать`` / ``#transfer``: to the other department (code or short name), with a reason."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.values import Notice, OutboxKind


class Transfer(StaffCommand):
    key = "transfer"
    words = ("передать", "transfer")
    usage, usage_en = "#передать ОСА|ДАБ [причина]", "#transfer OSA|DAB [reason]"
    help = "передать в другой отдел"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        word, reason = (c.args.split(None, 1) + ["", ""])[:2]
        if not word:
            return Refusal("missing-argument", "#transfer OSA|DAB")
        said = word.strip().lower()
        target = next((d for d in k.org.departments if said in (d.code.lower(), d.short.lower(), d.address.lower())),
                      None)
        if target is None:
            return Refusal("unknown-department", word)
        if target.code == k.here.code:
            return Refusal("same-department", target.short)
        k.state.transferred, k.state.department = True, target
        return Step(c, department=target, value=reason.strip())

    def plan(self, step: Step, a: Applying) -> None:
        department, target = a.department, step.department
        assert target is not None       # check() set it
        a.ticket = a.plan.set_fields(a.on, department=target.code, assignee=None,
                                     transferred_from=department.code)
        a.plan.event(a.on, f"Передана из {department.short} в {target.short}"
                     + (f": {step.value}" if step.value else ""), a.author)
        a.plan.send(a.on, target, Notice(OutboxKind.ALERT, "transfer_alert", "auto-generated", True),
                    a.talk.staff_for(a.on, target), a.mail,
                    by={"name": a.member.name, "department": department.short}, reason=step.value,
                    body=a.first_words())
        a.status_step = step
