"""``#заметка`` / ``#note``: the text below is an internal note (commander.py writes it)."""
from __future__ import annotations

from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step


class Note(StaffCommand):
    key = "note"
    words = ("заметка", "note")
    usage, usage_en = "#заметка", "#note"
    help = "текст письма — внутренняя заметка, заявитель её не увидит"

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        if k.state.new:
            return Refusal("note-with-new")     # that text is the new ticket's
        # ``#note text``: the text may start on the command's own line.
        return Step(c, value=c.args) if c.args or k.block.text.strip() else Refusal("empty-note")

    def plan(self, step: Step, a: Applying) -> None:
        pass        # the text is the commander's: a note instead of a response
