"""``#список`` / ``#list``: the department's queue, in the receipt."""
from __future__ import annotations

from maild.acting import lists
from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.values import Status

SCOPES = {"": "open", "open": "open", "открытые": "open", "mine": "mine", "мои": "mine", "all": "all", "все": "all"}
LIMIT = 200


class List(StaffCommand):
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
        if a.ticket is not None and a.ticket.id > 0:
            rows = self._as_planned(rows, step.value, a)
        a.outputs.queue = (step.value, rows, len(rows) == LIMIT)

    @staticmethod
    def _as_planned(rows: list[lists.QueueRow], scope: str, a: Applying) -> list[lists.QueueRow]:
        """The queue as the lines above leave it: the ticket this mail acts on is listed, or
        not, by its planned state (``#взять`` then ``#список мои`` shows it)."""
        t = a.on
        stored = next((r for r in rows if r.number == t.number), None)
        rows = [r for r in rows if r.number != t.number]
        belongs = (t.department == a.member.department and (scope == "all" or t.status != Status.CLOSED)
                   and (scope != "mine" or t.assignee == a.member.login))
        if not belongs:
            return rows
        requester = a.plan.person_by_id(t.requester_id)
        row = lists.QueueRow(t.number, t.subject, t.status, t.priority, t.assignee, t.created_at,
                             requester.email if requester else (stored.requester if stored else ""),
                             stored.updated_at if stored else t.created_at)
        newest_first = scope == "all"
        rows.append(row)
        rows.sort(key=lambda r: r.created_at, reverse=newest_first)
        return rows
