"""``#приоритет`` / ``#priority``: low|normal|high|urgent (низкий|обычный|высокий|срочный)."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step

PRIORITIES = {"low": "low", "низкий": "low", "normal": "normal", "обычный": "normal",
              "high": "high", "высокий": "high", "urgent": "urgent", "срочный": "urgent"}


class Priority(StaffCommand):
    key = "priority"
    words = ("приоритет", "priority")
    usage, usage_en = "#приоритет низкий|обычный|высокий|срочный", "#priority low|normal|high|urgent"
    help = "сменить приоритет"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        priority = PRIORITIES.get(c.args.lower())
        return Step(c, value=priority) if priority else Refusal("bad-priority", c.args)

    def plan(self, step: Step, a: Applying) -> None:
        a.ticket = a.plan.set_fields(a.on, priority=step.value)
        a.plan.event(a.on, f"Приоритет: {step.value}", a.author)
