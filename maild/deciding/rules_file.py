"""Reading ``rules/rules.toml`` into the rule table, every mistake named with its file and
line (``RulesError``); a caller that reloads keeps the old table on error. What the rules
mean, and how they are applied, is rules.py's.
"""
from __future__ import annotations

import re
from pathlib import Path

from maild.deciding.organisation import Organisation, RulesError, Source
from maild.deciding.rules import (
    ACTIONS,
    FIELDS,
    OPERATORS,
    PRIORITIES,
    RULES_FILE,
    Condition,
    Rule,
    RuleTable,
    Then,
)
from maild.deciding.words import normalise


def load(rules_dir: Path, org: Organisation, templates: set[str] | None = None) -> RuleTable:
    """Read and check ``rules.toml`` against the organisation (and the template names).
    Every rule is checked, and every mistake named at once (``RulesError``, one line each):
    an admin fixes them in one go, not one per run."""
    path = Path(rules_dir) / RULES_FILE
    if not path.is_file():
        return RuleTable()
    src = Source(path)
    rules: list[Rule] = []
    errors: list[str] = []
    counters = {"rule.if": 0, "rule.unless": 0}
    for i, table in enumerate(src.data.get("rule", [])):
        start = dict(counters)
        try:
            rules.append(_rule(src, i, table, rules, counters, org, templates))
        except RulesError as exc:
            errors.append(str(exc))
        # The next rule's conditions are found by their index whatever became of these.
        for header, key in (("rule.if", "if"), ("rule.unless", "unless")):
            given = table.get(key, []) if isinstance(table, dict) else []
            counters[header] = start[header] + (len(given) if isinstance(given, list) else 0)
    if errors:
        raise RulesError("\n".join(errors))
    return RuleTable(rules)


def _rule(src: Source, i: int, table: dict, rules: list[Rule], counters: dict, org: Organisation,
          templates: set[str] | None) -> Rule:
    line = src.table_line("rule", i)
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise src.error(line, "every [[rule]] needs a name")
    if any(r.name == name for r in rules):
        raise src.error(line, f"duplicate rule name {name!r}")
    department = table.get("department")
    if department is not None and org.department(str(department)) is None:
        raise src.error(src.key_line("rule", i, "department"), f"rule {name!r}: unknown department {department!r}")
    conditions = _conditions(src, table.get("if", []), "rule.if", counters, name)
    unless = _conditions(src, table.get("unless", []), "rule.unless", counters, name)
    if not conditions:
        raise src.error(line, f"rule {name!r}: needs at least one [[rule.if]] condition")
    match = table.get("match", "any")
    if match not in ("any", "all"):
        raise src.error(src.key_line("rule", i, "match"), f"rule {name!r}: match must be 'any' or 'all'")
    then = table.get("then", {})
    _check_actions(src, i, line, name, then, department, org, templates)
    return Rule(name=name, description=str(table.get("description", "")), department=department,
                match_all=match == "all", conditions=conditions, unless=unless, then=Then.of(then), line=line)


def _conditions(src: Source, tables, header: str, counters: dict, rule: str) -> tuple[Condition, ...]:
    out = []
    for table in tables:
        index = counters[header]
        counters[header] += 1
        line = src.table_line(header, index)
        name = table.get("field", "")
        if name not in FIELDS and not (isinstance(name, str) and name.startswith("header:") and len(name) > 7):
            raise src.error(src.key_line(header, index, "field"),
                            f"rule {rule!r}: unknown field {name!r} (one of {', '.join(FIELDS)}, header:Name)")
        ops = [op for op in OPERATORS if op in table]
        if len(ops) != 1:
            raise src.error(line, f"rule {rule!r}: a condition needs exactly one of {', '.join(OPERATORS)}")
        values = table[ops[0]]
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise src.error(line, f"rule {rule!r}: {ops[0]} must be a list of strings")
        try:
            if ops[0] in ("words", "whole_words", "is"):
                pattern = None
            elif ops[0] == "contains":
                pattern = re.compile("|".join(re.escape(normalise(v)) for v in values), re.IGNORECASE)
            else:
                # The text is matched normalised (1C -> 1С): the expression must be too.
                pattern = re.compile("|".join(f"(?:{normalise(v)})" for v in values), re.IGNORECASE)
        except re.error as exc:
            raise src.error(src.key_line(header, index, ops[0]),
                            f"rule {rule!r}: bad regular expression: {exc}") from None
        out.append(Condition(field=name, how=ops[0], values=tuple(values), pattern=pattern,
                             key=f"{header}#{index}"))
    return tuple(out)


def _check_actions(src: Source, index: int, rule_line: int, name: str, then: dict,
                   department: str | None, org: Organisation, templates: set[str] | None) -> None:
    if not isinstance(then, dict) or not then:
        raise src.error(rule_line, f"rule {name!r}: needs a [rule.then] with at least one action")
    then_line = src.table_line("rule.then", index) if src.table_line("rule.then", index) > rule_line else rule_line

    def line(key: str | None = None) -> int:
        return src.key_line("rule.then", index, key) if key and then_line != rule_line else then_line

    for key in then:
        if key not in ACTIONS:
            raise src.error(line(key), f"rule {name!r}: unknown action {key!r} (one of {', '.join(ACTIONS)})")
    target = then.get("transfer") or then.get("route") or department
    for key in ("transfer", "route"):
        if key in then and org.department(str(then[key])) is None:
            raise src.error(line(key), f"rule {name!r}: {key} to unknown department {then[key]!r}")
    dept = org.department(str(target)) if target else None
    if "category" in then:
        if dept is None:
            raise src.error(line("category"), f"rule {name!r}: a category needs the rule's department or a transfer")
        if dept.category(str(then["category"])) is None:
            raise src.error(line("category"), f"rule {name!r}: no category {then['category']!r} in {dept.code}")
    if "kind" in then and then["kind"] not in ("problem", "request"):
        raise src.error(line("kind"), f"rule {name!r}: kind must be problem or request")
    if "priority" in then and then["priority"] not in PRIORITIES:
        raise src.error(line("priority"), f"rule {name!r}: priority must be one of {', '.join(PRIORITIES)}")
    if "assign" in then and (dept is None or not any(m.login == then["assign"] for m in dept.staff)):
        raise src.error(line("assign"), f"rule {name!r}: assign to {then['assign']!r}, who is not staff of "
                              f"{dept.code if dept else 'the rule department'}")
    for key in ("reply", "close"):
        if key in then and not re.fullmatch(r"[a-z0-9_]{1,30}", str(then[key])):
            raise src.error(line(key), f"rule {name!r}: template name {then[key]!r} must be 1-30 "
                                       "latin lower-case letters, digits or _")
        if key in then and templates is not None and str(then[key]) not in templates:
            raise src.error(line(key), f"rule {name!r}: template {then[key]!r}.txt.j2 does not exist")
