"""The category catalogue the FAQ links to, as values: every category of every department
with what people need to choose it, taken from ``rules/`` (the admin edits one place)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from maild.deciding.organisation import Organisation
from maild.deciding.rules import Rule

KIND_RU = {"problem": "неисправность", "request": "запрос"}
KIND_HINT_RU = {"problem": "то, что работало, перестало работать",
                "request": "нужно то, чего у вас ещё не было"}


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str               # problem | request
    description: str
    examples: tuple[str, ...]
    address: str            # the department's +tag address that files straight into it
    tag: str = ""

    @property
    def kind_ru(self) -> str:
        return KIND_RU.get(self.kind, self.kind)


@dataclass(frozen=True)
class Section:
    code: str
    short: str
    name: str
    address: str
    phone_ext: str
    entries: tuple[Entry, ...]
    not_handled: tuple[str, ...] = ()   # the descriptions of its rules that transfer or close


def build(org: Organisation, rules: Iterable[Rule] = ()) -> tuple[Section, ...]:
    """Departments in the rules' order, each category with its +tag address, and what the
    department does not handle: the admin's own words on each rule that sends a request
    elsewhere or closes it."""
    rules = tuple(rules)
    return tuple(
        Section(d.code, d.short, d.name, d.address, d.phone_ext,
                tuple(Entry(c.name, c.kind, c.description, c.examples,
                            f"{d.local_part}+{c.tag}@{d.domain}", c.tag) for c in d.categories),
                tuple(r.description for r in rules
                      if r.department == d.code and r.description and (r.then.transfer or r.then.close)))
        for d in org.departments)
