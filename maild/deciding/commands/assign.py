"""``#назначить`` / ``#assign``: to a colleague of my department (login or address)."""
from __future__ import annotations

from email.utils import parseaddr

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.deciding.commands.take import assign
from maild.deciding.organisation import Organisation, Staff


class Assign(StaffCommand):
    key = "assign"
    words = ("назначить", "assign")
    usage, usage_en = "#назначить логин|адрес", "#assign login|address"
    help = "назначить коллеге из своего отдела"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        if not c.args:
            return Refusal("missing-argument", "#assign логин или адрес")
        colleague = staff_named(k.org, c.args)
        if colleague is None:
            return Refusal("unknown-colleague", c.args)
        if colleague.department != k.here.code:
            return Refusal("colleague-elsewhere",
                           f"{colleague.name}, {k.org.department_of(colleague.department).short}")
        return Step(c, staff=colleague)

    def plan(self, step: Step, a: Applying) -> None:
        assign(step, a)


def staff_named(org: Organisation, who: str) -> Staff | None:
    who = (parseaddr(who)[1] or who).strip().lower()
    for department in org.departments:
        for member in department.staff:
            if who in (member.login.lower(), member.email.lower()):
                return member
    return None
