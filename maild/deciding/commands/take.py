"""``#взять`` / ``#take``: assign the ticket to me."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, CommandLine, Checking, Command, Refusal, Step
from maild.values import Notice, OutboxKind, Recipient


class Take(Command):
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
    a.ticket = a.plan.set_fields(a.ticket, assignee=step.staff.login)
    a.plan.event(a.ticket, f"Назначена: {step.staff.name} ({step.command.line})", a.author)
    if step.staff.email.lower() != a.member.email.lower():
        a.plan.send(a.ticket, a.department, Notice(OutboxKind.ALERT, "assigned", "auto-generated", True),
                    [Recipient(step.staff.email, step.staff.name)], a.mail,
                    by={"name": a.member.name}, staff={"name": step.staff.name}, body=a.first_words())
