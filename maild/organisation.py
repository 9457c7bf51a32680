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


@dataclass(frozen=True)
class Department:
    code: str
    short: str
    name: str
    address: str
    phone_ext: str
    staff: tuple[Staff, ...]

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

    def department(self, code: str) -> Department | None:
        code = code.upper()
        return next((d for d in self.departments if d.code == code), None)

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
        address = address.lower()
        for dept in self.departments:
            for member in dept.staff:
                if member.email.lower() == address:
                    return member
        return None

    def is_corporate(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # tomllib words its errors "... (at line 3, column 7)": keep that position.
        raise RulesError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from None


def _text(path: Path, table: dict, key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{path}: {where}: '{key}' must be a non-empty string")
    return value.strip()


def load(rules_dir: Path) -> Organisation:
    rules_dir = Path(rules_dir)
    org_file = rules_dir / "organisation.toml"
    if not org_file.is_file():
        raise RulesError(f"{org_file}: missing (the organisation's name and mail domains)")
    org = _read(org_file).get("organisation", {})
    domains = org.get("domains")
    if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
        raise RulesError(f"{org_file}: [organisation]: 'domains' must be a list of domains")
    departments: list[Department] = []
    seen_logins: dict[str, Path] = {}
    for path in sorted((rules_dir / "departments").glob("*.toml")):
        departments.append(_department(path, _read(path), seen_logins))
    if not departments:
        raise RulesError(f"{rules_dir / 'departments'}: no department files (*.toml)")
    codes = [d.code for d in departments]
    addresses = [d.address.lower() for d in departments]
    for values, what in ((codes, "code"), (addresses, "address")):
        dupes = {v for v in values if values.count(v) > 1}
        if dupes:
            raise RulesError(f"{rules_dir / 'departments'}: duplicate department {what}: {', '.join(sorted(dupes))}")
    return Organisation(
        name=str(org.get("name", "")),
        domains=tuple(d.lower().strip() for d in domains),
        departments=tuple(departments),
    )


def _department(path: Path, data: dict, seen_logins: dict[str, Path]) -> Department:
    table = data.get("department")
    if not isinstance(table, dict):
        raise RulesError(f"{path}: missing [department] table")
    code = _text(path, table, "code", "[department]")
    if not CODE_RE.match(code):
        raise RulesError(f"{path}: [department]: code {code!r} must be 2-10 capital latin letters/digits")
    address = _text(path, table, "address", "[department]")
    if not ADDRESS_RE.match(address):
        raise RulesError(f"{path}: [department]: address {address!r} is not a mail address")
    staff = []
    for i, member in enumerate(data.get("staff", []), 1):
        where = f"[[staff]] #{i}"
        login = _text(path, member, "login", where)
        email = _text(path, member, "email", where)
        if not ADDRESS_RE.match(email):
            raise RulesError(f"{path}: {where}: email {email!r} is not a mail address")
        if login in seen_logins:
            raise RulesError(f"{path}: {where}: login {login!r} is already used in {seen_logins[login]}")
        seen_logins[login] = path
        staff.append(Staff(login=login, name=_text(path, member, "name", where), email=email, department=code))
    return Department(
        code=code,
        short=str(table.get("short", code)),
        name=_text(path, table, "name", "[department]"),
        address=address,
        phone_ext=str(table.get("phone_ext", "")),
        staff=tuple(staff),
    )
