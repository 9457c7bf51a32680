"""``#объединить OSA-000123 [да]`` / ``#merge OSA-000123 [yes]``: this ticket is a repeat of
the named one and is merged into it. Its letters, notes, files and people move there; it is
closed as merged, and a later reply to it lands on the other (store.surviving). Its
requester is told once (the ``merged`` status mail). Refused across departments, into a
closed ticket, and — until the staff member says ``да`` — when the two requesters differ."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.deciding.plan import MERGED
from maild.values import Status

CONFIRM = ("да", "yes")


class Merge(StaffCommand):
    key = "merge"
    words = ("объединить", "merge")
    usage, usage_en = "#объединить OSA-000123 [да]", "#merge OSA-000123 [yes]"
    help = "влить эту заявку в другую (повтор); «да» — если заявители разные"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        words = c.args.split()
        if not words or k.ticket_named is None:
            return Refusal("missing-argument", self.usage)
        into = k.ticket_named(words[0])
        here = k.state.ticket
        if into is None:
            return Refusal("unknown-ticket", words[0])
        if here is None or k.state.new:
            return Refusal("needs-ticket")
        if into.id == here.id:
            return Refusal("merge-self", into.number)
        if here.resolution == MERGED:
            return Refusal("already-merged", here.number)
        if into.department != here.department:
            return Refusal("merge-other-department", into.number)
        if into.status == Status.CLOSED:
            return Refusal("merge-into-closed", into.number)
        confirmed = len(words) > 1 and words[1].lower().strip(".,!") in CONFIRM
        # Other people would see each other's letters: the requesters, and the participants
        # of this ticket who join the other. Only a staff member's "да" lets them.
        if (into.requester_id != here.requester_id or k.state.participants) and not confirmed:
            return Refusal("merge-confirm", into.number)
        k.state.status, k.state.merged_into = Status.CLOSED, into.number
        return Step(c, ticket=into, value=into.number)

    def plan(self, step: Step, a: Applying) -> None:
        into = step.ticket
        assert into is not None             # check() found it
        merged = a.on
        a.plan.event(into, f"Объединена с заявкой {merged.number}: её переписка теперь здесь", a.author)
        a.ticket = a.plan.merge(merged, into)
        a.plan.event(merged, f"Объединена с заявкой {into.number}", a.author)
        a.status_step, a.merged_into = step, into
