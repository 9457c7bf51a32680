"""Every command, in the order ``#помощь`` lists them. Adding a command is adding its file
and one line here."""
from __future__ import annotations

from maild.deciding.commands.assign import Assign
from maild.deciding.commands.base import Command, StaffCommand
from maild.deciding.commands.canned import Canned
from maild.deciding.commands.category import Category
from maild.deciding.commands.cc import Cc
from maild.deciding.commands.close import Close, Reopen
from maild.deciding.commands.deadline import Deadline
from maild.deciding.commands.find import Find
from maild.deciding.commands.help import Help
from maild.deciding.commands.listing import List
from maild.deciding.commands.merge import Merge
from maild.deciding.commands.new import New
from maild.deciding.commands.note import Note
from maild.deciding.commands.priority import Priority
from maild.deciding.commands.selfservice import History, Profile
from maild.deciding.commands.take import Take
from maild.deciding.commands.transfer import Transfer
from maild.deciding.organisation import Department, Organisation

COMMANDS: tuple[Command, ...] = (Take(), Assign(), Transfer(), Note(), Canned(), Category(), Priority(), Deadline(),
                                 Close(), Reopen(), Merge(), Cc(), New(), List(), Help(), History(), Profile(),
                                 Find())
BY_KEY = {c.key: c for c in COMMANDS}
STAFF: dict[str, StaffCommand] = {c.key: c for c in COMMANDS if isinstance(c, StaffCommand)}
BY_WORD = {word: c.key for c in COMMANDS for word in c.words}
SECTIONS = (("ticket", "В ответе на письмо по заявке (номер [#...] в теме):"),
            ("new", "В новом письме на адрес своего отдела (без номера в теме):"),
            ("anyone", "Любой сотрудник компании, в любом письме:"))


# What a new ticket's alert says its reader may answer with, in this order.
ALERT_COMMANDS = ("take", "note", "transfer", "close", "help")


def alert_hints(org: Organisation, department: Department) -> list[tuple[str, str]]:
    """(line to write, what it does) for a new ticket's alert: the words and help of the
    same classes #помощь lists; ``#передать`` names each other department."""
    rows = []
    for key in ALERT_COMMANDS:
        command = BY_KEY[key]
        if key == "transfer":
            rows += [(f"#{command.words[0]} {other.short}", f"передать в {other.short}")
                     for other in org.departments if other.code != department.code]
        else:
            rows.append((command.usage, command.help))
    return rows


def help_rows() -> list[tuple[str, list[Command]]]:
    """For #помощь: each section's heading and its commands."""
    return [(heading, [c for c in COMMANDS if c.section == section]) for section, heading in SECTIONS]
