"""``#найти`` / ``#find``: full-text search (acting/search.py), for both sides of the desk.

Staff (an authenticated command mail) search their department's tickets, internal notes
included, and get the hits in the receipt. Anyone else searches the tickets they opened,
only what they were sent (messages and responses), and gets the answer at their own address
(a forged From sends someone their own tickets: deciding/selfservice.py's limit keeps that
from becoming a mail cannon). One command, one word list: the dispatch table's
``self_service`` case leaves the line to the ``command`` case when the sender is staff.
"""
from __future__ import annotations

from maild.acting import search
from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.deciding.commands.selfservice import Asking, SelfServiceCommand
from maild.reading.stems import stems
from maild.values import Disposition, Notice, OutboxKind

MAX_WORDS = 200         # characters of a query kept: a search is a few words


class Find(StaffCommand, SelfServiceCommand):
    key = "find"
    words = ("найти", "find")
    usage, usage_en = "#найти слова", "#find words"
    help = "поиск по заявкам: у сотрудников — по заявкам отдела, у остальных — по своим"
    section = "anyone"
    on_ticket = False

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        return Step(c, value=c.args[:MAX_WORDS]) if c.args.strip() else Refusal("missing-argument", "слова для поиска")

    def plan(self, step: Step, a: Applying) -> None:
        found = search.search(a.plan.conn, step.value, search.Scope.staff(a.member.department))
        a.outputs.found = (step.value, found)

    def answer(self, ask: Asking) -> tuple[Disposition, str]:
        plan, person, words = ask.plan, ask.person, ask.request.words[:MAX_WORDS]
        if person.id > 0:
            found = search.search(plan.conn, words, search.Scope.requester(person.id))
        else:       # a first mail from this address: no tickets of theirs to search
            found = search.Found(tuple(stems().query(words)), (), False)
        plan.send(None, ask.department, Notice(OutboxKind.SEARCH, "search", "auto-replied"), ask.to, ask.mail,
                  person=person.card(), found=found, asked=words, leftover=ask.request.leftover)
        return Disposition.SEARCH_SENT, (f"search {words!r} of {person.email}'s tickets: "
                                         f"{len(found.hits)} found" + (", more not shown" if found.cut else ""))
