"""The organisation as the admin describes it under ``rules/``: departments, staff, domains.

``rules/organisation.toml`` holds the corporate domains; ``rules/departments/*.toml`` one
department each. Loading validates everything and raises ``RulesError`` naming the file
(and the line where TOML can tell it); a caller that reloads keeps the old value on error.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maild.deciding.deadlines import Deadlines

CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
ADDRESS_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RulesError(Exception):
    """A problem in a rules file, worded for the admin: 'file: line N: what'."""


@dataclass(frozen=True)
class Staff:
    login: str
    name: str
    email: str
    department: str


KINDS = ("problem", "request")


@dataclass(frozen=True)
class Category:
    name: str          # Russian, as people write it in [brackets] or "Категория: ..."
    tag: str           # latin, for osticket+tag@torex.ru
    kind: str          # problem | request
    words: tuple[str, ...]
    patterns: tuple[str, ...]
    department: str
    line: int = 0      # where it is defined, for explanations
    description: str = ""                 # one line for people: the catalogue, the staff alert
    examples: tuple[str, ...] = ()        # sentences the routing model learns the category from


@dataclass(frozen=True)
class Department:
    code: str
    short: str
    name: str
    address: str
    phone_ext: str
    staff: tuple[Staff, ...]
    categories: tuple[Category, ...] = ()

    def category(self, name_or_tag: str) -> Category | None:
        key = " ".join(name_or_tag.split()).lower().replace("ё", "е")
        for category in self.categories:
            if key in (category.name.lower().replace("ё", "е"), category.tag):
                return category
        return None

    @property
    def local_part(self) -> str:
        return self.address.split("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.split("@", 1)[1]


@dataclass(frozen=True)
class Organisation:
    name: str
    domains: tuple[str, ...]
    departments: tuple[Department, ...]
    kind_words: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (kind, words): tip the balance
    deadlines: Deadlines | None = None      # working time and terms (deciding/deadlines.py)

    def department(self, code: str) -> Department | None:
        code = code.upper()
        return next((d for d in self.departments if d.code == code), None)

    def department_of(self, code: str) -> Department:
        """A department that must exist: a staff member's (the rules load them from it), or
        the department of a ticket the commands act on (checked before they are planned)."""
        found = self.department(code)
        if found is None:
            raise LookupError(f"no department {code} in the rules")
        return found

    def plus_tag(self, address: str) -> str:
        """The ``+tag`` of a department sub-address (``osticket+printer@`` -> ``printer``)."""
        local = address.strip().strip("<>").rpartition("@")[0]
        return local.split("+", 1)[1].lower() if "+" in local else ""

    def department_for_address(self, address: str) -> Department | None:
        """The department an envelope recipient belongs to: exact address or a +tag of it."""
        local, at, domain = address.strip().strip("<>").lower().rpartition("@")
        if not at:
            return None
        base = local.split("+", 1)[0]
        for dept in self.departments:
            if dept.domain.lower() == domain and dept.local_part.lower() == base:
                return dept
        return None

    def is_department_address(self, address: str) -> bool:
        return self.department_for_address(address) is not None

    def staff_by_email(self, address: str) -> Staff | None:
        """The staff member, also behind a sub-address (``p.petrov+x@``): a tag must not
        turn a colleague into a stranger (or a stranger into a participant)."""
        local, at, domain = address.strip().strip("<>").lower().rpartition("@")
        address = f"{local.split('+', 1)[0]}{at}{domain}"
        for dept in self.departments:
            for member in dept.staff:
                if member.email.lower() == address:
                    return member
        return None

    def is_corporate(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


class Source:
    """A rules file as text too, so every error can name its line (tomllib gives none)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"{path}: cannot read: {exc}") from None
        try:
            self.data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib words its errors "... (at line 3, column 7)": keep that position.
            raise RulesError(f"{path}: {exc}") from None
        self.lines = self.text.splitlines()

    def table_line(self, header: str, index: int = 0) -> int:
        """1-based line of the index-th ``[[header]]`` (or ``[header]``)."""
        pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(header)}\s*\]\]?\s*(#.*)?$")
        found = [i for i, line in enumerate(self.lines, 1) if pattern.match(line)]
        return found[index] if index < len(found) else 1

    def key_line(self, header: str, index: int, key: str) -> int:
        start = self.table_line(header, index)
        for i in range(start, len(self.lines)):
            line = self.lines[i]
            if line.lstrip().startswith("["):
                break
            if re.match(rf"^\s*{re.escape(key)}\s*=", line):
                return i + 1
        return start

    def error(self, line: int, message: str) -> RulesError:
        return RulesError(f"{self.path}: line {line}: {message}")


def _text(src: Source, table: dict, key: str, header: str, index: int = 0) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise src.error(src.key_line(header, index, key), f"[{header}] '{key}' must be a non-empty string")
    return value.strip()


def load(rules_dir: Path) -> Organisation:
    rules_dir = Path(rules_dir)
    org_file = rules_dir / "organisation.toml"
    if not org_file.is_file():
        raise RulesError(f"{org_file}: missing (the organisation's name and mail domains)")
    src = Source(org_file)
    org = src.data.get("organisation", {})
    domains = org.get("domains")
    if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
        raise src.error(src.key_line("organisation", 0, "domains"), "'domains' must be a list of domains")
    departments: list[Department] = []
    seen_logins: dict[str, Path] = {}
    for path in sorted((rules_dir / "departments").glob("*.toml")):
        departments.append(_department(Source(path), seen_logins))
    if not departments:
        raise RulesError(f"{rules_dir / 'departments'}: no department files (*.toml)")
    codes = [d.code for d in departments]
    addresses = [d.address.lower() for d in departments]
    for values, what in ((codes, "code"), (addresses, "address")):
        dupes = {v for v in values if values.count(v) > 1}
        if dupes:
            raise RulesError(f"{rules_dir / 'departments'}: duplicate department {what}: {', '.join(sorted(dupes))}")
    kinds = src.data.get("kinds", {})
    for kind, words in kinds.items():
        if kind not in KINDS or not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise src.error(src.key_line("kinds", 0, kind), f"[kinds] {kind}: must be problem or request, "
                                                             "with a list of words")
    return Organisation(
        name=str(org.get("name", "")),
        domains=tuple(d.lower().strip() for d in domains),
        departments=tuple(departments),
        kind_words=tuple((kind, tuple(words)) for kind, words in kinds.items()),
    )


def _department(src: Source, seen_logins: dict[str, Path]) -> Department:
    table = src.data.get("department")
    if not isinstance(table, dict):
        raise src.error(1, "missing [department] table")
    code = _text(src, table, "code", "department")
    if not CODE_RE.match(code):
        raise src.error(src.key_line("department", 0, "code"),
                        f"code {code!r} must be 2-10 capital latin letters/digits")
    address = _text(src, table, "address", "department")
    if not ADDRESS_RE.match(address):
        raise src.error(src.key_line("department", 0, "address"), f"address {address!r} is not a mail address")
    staff = []
    for i, member in enumerate(src.data.get("staff", [])):
        login = _text(src, member, "login", "staff", i)
        email = _text(src, member, "email", "staff", i)
        if not ADDRESS_RE.match(email):
            raise src.error(src.key_line("staff", i, "email"), f"email {email!r} is not a mail address")
        if login in seen_logins:
            raise src.error(src.key_line("staff", i, "login"),
                            f"login {login!r} is already used in {seen_logins[login]}")
        seen_logins[login] = src.path
        staff.append(Staff(login=login, name=_text(src, member, "name", "staff", i), email=email,
                           department=code))
    return Department(
        code=code,
        short=str(table.get("short", code)),
        name=_text(src, table, "name", "department"),
        address=address,
        phone_ext=str(table.get("phone_ext", "")),
        staff=tuple(staff),
        categories=_categories(src, code),
    )


def _categories(src: Source, department: str) -> tuple[Category, ...]:
    out: list[Category] = []
    for i, table in enumerate(src.data.get("category", [])):
        name = _text(src, table, "name", "category", i)
        line = src.table_line("category", i)
        kind = table.get("kind")
        if kind not in KINDS:
            raise src.error(src.key_line("category", i, "kind"),
                            f"category {name!r}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        words = table.get("words", [])
        patterns = table.get("patterns", [])
        examples = table.get("examples", [])
        for key, values in (("words", words), ("patterns", patterns), ("examples", examples)):
            if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
                raise src.error(src.key_line("category", i, key), f"category {name!r}: {key} must be a list of strings")
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise src.error(src.key_line("category", i, "patterns"),
                                f"category {name!r}: bad regular expression {pattern!r}: {exc}") from None
        tag = str(table.get("tag", "")).strip().lower()
        if tag and not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", tag):
            raise src.error(src.key_line("category", i, "tag"),
                            f"category {name!r}: tag {tag!r} must be latin letters, digits, . _ -")
        for other in out:
            if other.name.lower() == name.lower():
                raise src.error(src.key_line("category", i, "name"), f"duplicate category name {name!r}")
            if tag and other.tag == tag:
                raise src.error(src.key_line("category", i, "tag"), f"duplicate category tag {tag!r}")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise src.error(src.key_line("category", i, "description"),
                            f"category {name!r}: description must be a string")
        out.append(Category(name=name, tag=tag, kind=kind, words=tuple(words), patterns=tuple(patterns),
                            department=department, line=line, description=description.strip(),
                            examples=tuple(examples)))
    return tuple(out)
