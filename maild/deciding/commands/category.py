"""``#категория`` / ``#category``: change the ticket's category (and so its kind)."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step


class Category(StaffCommand):
    key = "category"
    words = ("категория", "category")
    usage, usage_en = "#категория имя", "#category name"
    help = "сменить категорию"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        category = k.here.category(c.args) if c.args else None
        return Step(c, value=category.name) if category is not None else Refusal("unknown-category", c.args)

    def plan(self, step: Step, a: Applying) -> None:
        category = a.department.category(step.value)
        assert category is not None     # check() found it
        a.ticket = a.plan.set_category(a.on, category.name, category.kind)
        a.plan.event(a.on, f"Категория: {category.name}", a.author)
