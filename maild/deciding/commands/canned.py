"""``#шаблон`` / ``#canned``: send a canned answer; alone: list them."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step


class Canned(StaffCommand):
    key = "canned"
    words = ("шаблон", "canned")
    usage, usage_en = "#шаблон [имя]", "#canned [name]"
    help = "с именем: отправить заявителю готовый ответ; без имени: список готовых ответов"
    on_ticket = False

    def needs_ticket(self, args: str) -> bool:
        return bool(args)

    def speaks(self, step: Step) -> bool:
        return bool(step.value)

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        if not c.args:
            return Step(c)
        name = c.args.lower()
        if name not in k.renderer.canned(k.here.code):
            return Refusal("unknown-canned", c.args)
        return Step(c, value=name)

    def plan(self, step: Step, a: Applying) -> None:
        if not step.value:
            a.outputs.canned = a.renderer.canned(a.member.department)
            return
        department = a.department
        requester = a.plan.person_by_id(a.on.requester_id)
        a.canned_bodies.append(a.renderer.render_canned(
            step.value, department.code, ticket=a.on, department=department,
            staff={"name": a.member.name, "email": a.member.email},
            requester={"email": requester.email if requester else "", "name": requester.name if requester else ""}))
