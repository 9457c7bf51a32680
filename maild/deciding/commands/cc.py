"""``#копия`` / ``#cc``: add an employee to the ticket's copies, or remove one."""
from __future__ import annotations

from email.utils import parseaddr

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step

OPERATIONS = {"add": "add", "добавить": "add", "remove": "remove", "убрать": "remove", "удалить": "remove"}


class Cc(StaffCommand):
    key = "cc"
    words = ("копия", "cc")
    usage, usage_en = "#копия добавить|убрать адрес", "#cc add|remove address"
    help = "копия заявки сотруднику"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        operation, address = (c.args.split(None, 1) + ["", ""])[:2]
        operation = OPERATIONS.get(operation.lower(), "")
        address = parseaddr(address)[1].strip().lower()
        if not operation or "@" not in address:
            return Refusal("bad-cc", c.args)
        if operation == "add":
            if not k.org.is_corporate(address) or not address.isascii():
                return Refusal("not-employee", address)
            if k.org.is_department_address(address) or k.org.staff_by_email(address) is not None:
                return Refusal("cc-staff", address)
            k.state.participants.add(address)
            return Step(c, value="add:" + address)
        if address not in k.state.participants:
            return Refusal("not-participant", address)
        k.state.participants.discard(address)
        return Step(c, value="remove:" + address)

    def plan(self, step: Step, a: Applying) -> None:
        operation, _, address = step.value.partition(":")
        if operation == "add":
            # Capped like any copy, and the requester is told (conversation.add_participants).
            a.talk.add_participants(a.on, [a.plan.person(address)], a.author)
        else:       # looked up now: it may have been added by a line above
            person = a.plan.person_ref(address)
            assert person is not None       # check() found them among the participants
            a.plan.remove_participant(a.on, person)
            a.plan.event(a.on, f"Из копии убран(а) {address}", a.author)
