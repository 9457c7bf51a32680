"""``#список`` / ``#list``: the department's queue, in the receipt."""
from __future__ import annotations

from maild.acting import lists
from maild.deciding.commands.base import Applying, Checking, Command, CommandLine, Refusal, Step

SCOPES = {"": "open", "open": "open", "открытые": "open", "mine": "mine", "мои": "mine", "all": "all", "все": "all"}
LIMIT = 200


class List(Command):
    key = "list"
    words = ("список", "list")
    usage, usage_en = "#список [мои|открытые|все]", "#list [mine|open|all]"
    help = "очередь отдела"
    section = "new"
    on_ticket = False

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        scope = SCOPES.get(c.args.lower())
        return Step(c, value=scope) if scope else Refusal("bad-scope", c.args)

    def plan(self, step: Step, a: Applying) -> None:
        rows = lists.queue(a.plan.conn, a.member.department,
                           assignee=a.member.login if step.value == "mine" else None,
                           closed_too=step.value == "all", limit=LIMIT)
        a.outputs.queue = (step.value, rows, len(rows) == LIMIT)
