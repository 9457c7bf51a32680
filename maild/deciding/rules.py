"""The admin's policy: categories and the ordered rule table from ``rules/``, applied to a
new request, every decision recorded with the rule and the words that made it.

``rules/rules.toml`` is a list of ``[[rule]]`` tables, tried top to bottom::

    [[rule]]
    name = "1С в ОСА"                 # shown in every explanation
    description = "..."               # said to the requester when the rule transfers
    department = "OSA"                # only for mail in this department (optional)
    match = "any"                     # any (default) or all of the conditions
    [[rule.if]]                       # conditions: field + words / whole_words / contains / regex
    field = "text"                    # subject, body, text, sender, sender_domain,
    words = ["1С", "Бухгалтерия"]     #   attachment, header:Name, category, kind
    [[rule.unless]]                   # the rule is skipped when any of these match
    field = "text"
    words = ["принтер"]
    [rule.then]                       # category, kind, priority, route, transfer, assign,
    transfer = "DAB"                  #   reply, close (template names), stop

How a request gets its category: explicitly — ``[Принтер]`` in the subject, a first line
``Категория: Принтер``, or the sub-address ``osticket+printer@`` — or by the category
words of its department. Explicit wins. Then the rules run and may change anything; a
transfer or route re-categorises in the new department unless the rule names a category.
A word matches every word that begins with it, in any case, and ``1C`` (Latin) is ``1С``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from maild.deciding.organisation import Category, Department, Organisation
from maild.deciding.words import Matcher, normalise
from maild.reading.mail import Mail
from maild.routing.decide import Reading
from maild.routing.reader import Reader

RULES_FILE = "rules.toml"
FIELDS = ("subject", "body", "text", "sender", "sender_domain", "attachment", "category", "kind", "meant")
OPERATORS = ("words", "whole_words", "contains", "regex", "is")
PRIORITIES = ("low", "normal", "high", "urgent")
ACTIONS = ("category", "kind", "priority", "route", "transfer", "assign", "reply", "close", "stop")
_CATEGORY_LINE = re.compile(r"^\s*категория\s*:\s*(.+?)\s*$", re.I | re.M)
_BRACKETS = re.compile(r"\[\s*([^\[\]#]{2,60}?)\s*\]")


@dataclass(frozen=True)
class Condition:
    field: str                     # one of FIELDS, or "header:<Name>"
    how: str                       # one of OPERATORS
    values: tuple[str, ...]
    pattern: re.Pattern | None     # contains, regex (words are looked up in a Matcher)
    key: str = ""                  # the condition's name among the Matcher's word sets

    def matches(self, value: str, matcher: Matcher) -> list[str]:
        if self.how == "is":
            return [value] if value.lower() in {v.lower() for v in self.values} else []
        if self.pattern is None:
            return sorted(matcher.find(normalise(value)).get(self.key, ()))
        return [m.group(0) for m in self.pattern.finditer(normalise(value))]


@dataclass(frozen=True)
class Then:
    """What a rule does when it matches (``[rule.then]``); None leaves the field alone."""
    category: str | None = None
    kind: str | None = None
    priority: str | None = None
    route: str | None = None        # to this department, as if written there
    transfer: str | None = None     # to this department, telling the requester why
    assign: str | None = None
    reply: str | None = None        # a template to answer with
    close: str | None = None        # close at once, answering with this template
    stop: bool = False              # no rule below is tried

    @classmethod
    def of(cls, table: dict) -> Then:
        """From a checked ``[rule.then]`` table (rules_file.py)."""
        values: dict[str, Any] = {key: bool(value) if key == "stop" else str(value) for key, value in table.items()}
        return cls(**values)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    department: str | None
    match_all: bool
    conditions: tuple[Condition, ...]
    unless: tuple[Condition, ...]
    then: Then
    line: int


@dataclass(frozen=True)
class Hit:
    """One decision and why: the rule (or category) and the words that matched. ``rule`` is
    for the log and the dry run; ``said`` is the same in Russian, for staff mail (a rule's
    own name is the admin's words, said as it is)."""
    rule: str
    words: tuple[str, ...]
    description: str = ""
    said: str = ""

    @property
    def for_people(self) -> str:
        return self.said or self.rule


@dataclass(frozen=True)
class Routing:
    department: Department
    category: Category | None
    kind: str | None
    priority: str = "normal"
    assign: str | None = None
    reply: str | None = None             # template to send the requester
    close: str | None = None             # close at once, with this template
    transferred_from: Department | None = None
    transfer_reason: str = ""
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    reading: Reading | None = None       # what the text says (routing.decide), for the reasons shown
    explicit: bool = False               # the sender named the category: it wins over the reading

    @property
    def triage(self) -> bool:
        """Open with no category: staff choose (the alert shows the likeliest ones)."""
        return self.category is None and self.close is None

    def suggestions(self) -> list[dict]:
        """For a ticket in triage: the likeliest categories of its department, each with the
        line that sets it (the staff alert lists them)."""
        if not self.triage or self.reading is None:
            return []
        return [{"category": c.category, "percent": round(100 * c.probability),
                 "command": f"#категория {c.category}"}
                for c in self.reading.candidates if c.department == self.department.code][:3]

    def explain(self) -> str:
        return "; ".join(f"{h.rule}: {', '.join(h.words)}" if h.words else h.rule for h in self.hits)

    def explain_ru(self) -> str:
        """``explain`` for people: what staff alerts say under «Почему»."""
        return "; ".join(f"{h.for_people}: {', '.join(h.words)}" if h.words else h.for_people for h in self.hits)


# -- applying -------------------------------------------------------------------------------
def explicit_category(mail: Mail, rcpt: tuple[str, ...], org: Organisation,
                      department: Department) -> tuple[Category, str] | None:
    """A category the sender named: [Имя] in the subject, "Категория:" first line, +tag."""
    candidates: list[tuple[str, str]] = []
    for address in rcpt:
        tag = org.plus_tag(address)
        if tag:
            candidates.append((tag, f"адрес с +{tag}"))
    for name in _BRACKETS.findall(mail.subject):
        candidates.append((name, f"[{name}] в теме"))
    first = next((line for line in mail.text.splitlines() if line.strip()), "")
    found = _CATEGORY_LINE.match(first)
    if found:
        candidates.append((found.group(1), f"первая строка «{first.strip()}»"))
    for value, how in candidates:
        for dept in (department,) + tuple(d for d in org.departments if d is not department):
            category = dept.category(value)
            if category is not None:
                return category, how
    return None


MAX_ROUTING_TEXT = 4000   # characters of the body the rule conditions look at: the request is at the
                          # top, quoted history and signatures below it


class RuleTable(tuple):
    """The admin's rules, in order. Its Matcher (every rule's words in one index) is built
    once per table and organisation: the table lives until a reload replaces the policy,
    so no cache outlives the rules it was built from."""
    _org: Organisation | None = None
    _matcher: Matcher | None = None

    def matcher(self, org: Organisation) -> Matcher:
        if self._matcher is None or self._org is not org:
            self._org, self._matcher = org, Matcher(org, self)
        return self._matcher

    def __reduce__(self):
        # To a parser process as the rules alone; the matcher is built there on first use.
        return (RuleTable, (tuple(self),))


def matcher_for(org: Organisation, table: tuple[Rule, ...]) -> Matcher:
    return table.matcher(org) if isinstance(table, RuleTable) else Matcher(org, table)


def _field_values(mail: Mail, name: str, sender: str, state: Routing) -> list[str]:
    if name == "subject":
        return [mail.subject]
    if name == "body":
        return [mail.text[:MAX_ROUTING_TEXT]]
    if name == "text":
        return [mail.subject, mail.text[:MAX_ROUTING_TEXT]]
    if name == "sender":
        return [sender]
    if name == "sender_domain":
        return [sender.rpartition("@")[2]]
    if name == "attachment":
        return [a.filename for a in mail.attachments]
    if name == "category":
        return [state.category.name if state.category else "none"]
    if name == "kind":
        return [state.kind or "none"]
    if name == "meant":
        if state.explicit:
            return [state.department.code]
        return [state.reading.meant if state.reading else "unsure"]
    header = mail.header(name.split(":", 1)[1])
    return [header] if header is not None else []


def _check(rule: Rule, mail: Mail, sender: str, state: Routing, matcher: Matcher) -> list[str] | None:
    """The words that made the rule match, or None if it does not."""
    found: list[str] = []
    results = []
    for condition in rule.conditions:
        words = [w for value in _field_values(mail, condition.field, sender, state)
                 for w in condition.matches(value, matcher)]
        results.append(bool(words))
        found += words
    matched = all(results) if rule.match_all else any(results)
    if not matched:
        return None
    for condition in rule.unless:
        if any(condition.matches(v, matcher) for v in _field_values(mail, condition.field, sender, state)):
            return None
    return list(dict.fromkeys(found))


def route(mail: Mail, rcpt: tuple[str, ...], sender: str, department: Department,
          org: Organisation, rules: tuple[Rule, ...], reader: Reader | None) -> Routing:
    """Department, category, kind and actions for a new request, with the reasons.

    The text is read once, relative to the department written to; the rules then decide
    what to do with the reading (field ``meant``). A request is transferred at most once:
    the reading already weighed both departments, so a second move could only be a round
    trip."""
    matcher = matcher_for(org, rules)
    reading = reader.read(mail.subject, mail.text, department.code) if reader is not None else None
    state = _categorised(Routing(department=department, category=None, kind=None, reading=reading),
                         mail, rcpt, org)
    moved = False
    for rule in rules:
        if rule.department and rule.department != state.department.code:
            continue
        words = _check(rule, mail, sender, state, matcher)
        if words is None:
            continue
        then = rule.then
        target = then.transfer or then.route
        if target and target != state.department.code and moved:
            state = replace(state, hits=state.hits + (Hit(f"{rule.name} (skipped: already moved once)",
                                                          tuple(words), said=f"{rule.name} (не применено: "
                                                          "заявка уже передана)"),))
            continue
        state = replace(state, hits=state.hits + (Hit(rule.name, tuple(words), rule.description),))
        if target and target != state.department.code:
            moved = True
            moved_to = org.department(target)
            assert moved_to is not None     # rules_file.py checked every target
            state = replace(state, department=moved_to, category=None, kind=None,
                            transferred_from=state.department if then.transfer else state.transferred_from,
                            transfer_reason=rule.description or rule.name)
            if then.category is None:
                state = _categorised(state, mail, rcpt, org)
        if then.category is not None:
            category = state.department.category(then.category)
            assert category is not None     # rules_file.py checked it exists there
            state = replace(state, category=category, kind=category.kind)
        if then.close is not None and then.category is None:
            state = replace(state, category=None, kind=None)   # closed unprocessed: no category
        for key in ("kind", "priority", "assign", "reply", "close"):
            if getattr(then, key) is not None:
                state = replace(state, **{key: getattr(then, key)})
        if then.stop:
            break
    return state


def _categorised(state: Routing, mail: Mail, rcpt: tuple[str, ...], org: Organisation) -> Routing:
    """The sender's explicit choice, else the reading's category if it is confident and of
    this department; otherwise no category (triage) and the likelier kind."""
    explicit = explicit_category(mail, rcpt, org, state.department)
    if explicit is not None:
        category, how = explicit
        department = org.department(category.department) or state.department
        return replace(state, department=department, category=category, kind=category.kind, explicit=True,
                       hits=state.hits + (Hit(f"category {category.name!r} named by the sender", (how,),
                                                 said=f"категорию «{category.name}» указал отправитель"),))
    reading = state.reading
    if reading is None or reading.department != state.department.code:
        return state
    read = state.department.category(reading.category) if reading.category else None
    if read is None:
        return replace(state, kind=reading.kind)
    return replace(state, category=read, kind=read.kind,
                   hits=state.hits + (Hit(f"category {read.name!r} read from the text ({reading.reason})",
                                          reading.features,
                                          said=f"категория «{read.name}» по тексту заявки ({reading.reason})"),))
