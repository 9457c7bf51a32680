"""``#закрыть`` / ``#close`` and ``#открыть`` / ``#reopen``: the requester is told (commander.py
sends the status mail with the text)."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.values import Status

STAFF_RESOLUTION = "resolved"      # tickets.resolution of a ticket staff closed


class Close(StaffCommand):
    key = "close"
    words = ("закрыть", "close")
    usage, usage_en = "#закрыть [причина]", "#close [reason]"
    help = "закрыть (заявителю сообщат)"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        if k.state.status == Status.CLOSED:
            return Refusal("already-closed")
        k.state.status = Status.CLOSED
        return Step(c, value=c.args)

    def plan(self, step: Step, a: Applying) -> None:
        a.ticket = a.plan.set_status(a.on, Status.CLOSED, resolution=STAFF_RESOLUTION)
        a.plan.event(a.on, "Закрыта" + (f": {step.value}" if step.value else ""), a.author)
        a.status_step = step


class Reopen(StaffCommand):
    key = "reopen"
    words = ("открыть", "reopen")
    usage, usage_en = "#открыть", "#reopen"
    help = "открыть снова (заявителю сообщат)"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        if k.state.status != Status.CLOSED:
            return Refusal("not-closed")
        k.state.status = Status.OPEN
        return Step(c, value=c.args)

    def plan(self, step: Step, a: Applying) -> None:
        a.ticket = a.plan.set_status(a.on, Status.OPEN)
        a.plan.event(a.on, "Открыта снова" + (f": {step.value}" if step.value else ""), a.author)
        a.status_step = step
