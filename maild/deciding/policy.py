"""The rules in force: the organisation (departments, staff, categories) and the rule
table, loaded and checked together, swapped as one on a reload, kept when the new files
are invalid. The daemon reloads on SIGHUP and when a change watch sees a file change."""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, tzinfo
from pathlib import Path
from typing import NamedTuple

from maild.deciding import calendar, deadlines, organisation, rules_file
from maild.deciding.organisation import Organisation, RulesError
from maild.deciding.rules import RuleTable
from maild.routing import reader as reader_mod
from maild.routing.reader import Reader
from maild.sending.render import BODY_ONLY_DIRS, time_filters
from maild.values import LocalTime

log = logging.getLogger("maild")


class Policy(NamedTuple):
    """One snapshot of the rules in force: swapped whole on a reload."""
    org: Organisation
    rules: RuleTable
    reader: Reader


def load_policy(rules_dir: Path, templates_dir: Path, zone: tzinfo = UTC) -> Policy:
    """The organisation (with its deadlines: ``zone`` for a department's hours that name
    none), the rule table and the reading, checked together (raises RulesError)."""
    org = organisation.load(rules_dir)
    logins = {d.code: {s.login for s in d.staff} for d in org.departments}
    try:
        org = replace(org, deadlines=deadlines.load(rules_dir, calendar.load_calendar(rules_dir), zone, logins))
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        # A value of a shape no check foresaw: still the admin's file, never a traceback.
        raise RulesError(f"{rules_dir}: calendar.toml or a department's [hours]/[deadlines]: {exc}") from None
    names = {p.name.removesuffix(".txt.j2") for p in Path(templates_dir).rglob("*.txt.j2")
             if not set(p.relative_to(templates_dir).parts) & set(BODY_ONLY_DIRS)}
    return Policy(org, rules_file.load(rules_dir, org, names), reader_mod.load(rules_dir, org))


class OrganisationHolder:
    """The rules in force. ``reload`` swaps them only when the new files are valid; a
    change watch (``watch``) reloads when a file under rules/ changes."""

    def __init__(self, rules_dir, templates_dir, zone: tzinfo = UTC):
        self.rules_dir = Path(rules_dir)
        self.templates_dir = Path(templates_dir)
        self.zone = zone
        self._current = load_policy(self.rules_dir, self.templates_dir, zone)
        self._stamp = self._files_stamp()
        self._lock = threading.Lock()

    def __call__(self) -> Organisation:
        return self._current[0]

    @property
    def rules(self) -> RuleTable:
        return self._current.rules

    @property
    def reader(self) -> Reader:
        return self._current.reader

    @property
    def policy(self) -> Policy:
        return self._current

    def _files_stamp(self) -> tuple:
        return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size)
                            for p in self.rules_dir.rglob("*") if p.is_file()
                            and p.name.endswith((".toml", ".tsv", reader_mod.MODEL_FILE))))

    def reload(self) -> bool:
        self._stamp = self._files_stamp()
        try:
            new = load_policy(self.rules_dir, self.templates_dir, self.zone)
        except RulesError as exc:
            log.error("rules not reloaded, the old ones stay in force: %s", exc)
            return False
        with self._lock:
            self._current = new
        log.info("rules reloaded from %s", self.rules_dir)
        return True

    def reload_if_changed(self) -> bool:
        """For the change watch: reload when any rules file changed since the last look."""
        if self._files_stamp() != self._stamp:
            return self.reload()
        return False


def check(rules_dir: Path, templates_dir: Path) -> list[str]:
    """Every problem in the rules and templates, worded 'file: line N: what' (empty: fine).
    Every rule of rules.toml is checked and all its mistakes listed (the other rule files
    stop at their first error); every template is compiled, so all broken templates are
    listed at once."""
    import jinja2

    errors: list[str] = []
    try:
        policy = load_policy(rules_dir, templates_dir)
        from maild.routing import examples
        examples.from_rules(rules_dir, policy.org, policy.reader.settings)   # every example file readable
    except RulesError as exc:
        errors.extend(str(exc).splitlines())       # every mistake of a file, one line each
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)))
    env.filters.update(time_filters(LocalTime(UTC)))       # compiled only: any zone will do
    for path in sorted(Path(templates_dir).rglob("*.txt.j2")):
        name = str(path.relative_to(templates_dir))
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            errors.append(f"{path}: line {exc.lineno}: {exc.message}")
            continue
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if set(path.relative_to(templates_dir).parts) & set(BODY_ONLY_DIRS):
            continue
        if not first.lower().startswith("subject:"):
            errors.append(f"{path}: line 1: a template starts with a 'Subject:' line")
    return errors
