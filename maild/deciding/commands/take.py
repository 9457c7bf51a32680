"""``#взять`` / ``#take``: assign the ticket to me."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.values import Notice, OutboxKind, Recipient


class Take(StaffCommand):
    key = "take"
    words = ("взять", "take")
    usage, usage_en = "#взять", "#take"
    help = "назначить заявку на себя"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        return Step(c, staff=k.member) if not c.args else Refusal("unexpected-argument", c.args)

    def plan(self, step: Step, a: Applying) -> None:
        assign(step, a)


def assign(step: Step, a: Applying) -> None:
    """The ticket to ``step.staff``, who hears of it unless they did it themselves."""
    staff = step.staff
    assert staff is not None        # check() set it
    a.ticket = a.plan.set_fields(a.on, assignee=staff.login)
    a.plan.event(a.on, f"Назначена: {staff.name} ({step.command.line})", a.author)
    if staff.email.lower() != a.member.email.lower():
        a.plan.send(a.on, a.department, Notice(OutboxKind.ALERT, "assigned", "auto-generated", True),
                    [Recipient(staff.email, staff.name)], a.mail,
                    by={"name": a.member.name}, staff={"name": staff.name}, body=a.first_words())
