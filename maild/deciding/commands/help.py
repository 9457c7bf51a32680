"""``#помощь`` / ``#help``: the list of commands, made from the command classes themselves."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, StaffCommand, Step


class Help(StaffCommand):
    key = "help"
    words = ("помощь", "help")
    usage, usage_en = "#помощь", "#help"
    help = "эта памятка"
    section = "new"
    on_ticket = False

    def plan(self, step: Step, a: Applying) -> None:
        a.outputs.help = True
