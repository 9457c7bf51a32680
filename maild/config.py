"""The one configuration file (TOML), validated at start.

Every key, its type, default and description is declared once in ``SCHEMA``; the
reference ``docs/config.md`` is written from it (``maild config reference``, ``make docs``).
An unknown key or a value of the wrong type is a ``ConfigError`` naming the key, so a typo
never silently falls back to a default.

Precedence: command-line option > environment variable > config file > default.
"""
from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from dateutil import tz

from maild import eventloop
from maild.config_schema import ALL_DEPARTMENTS_ONLY, SCHEMA
from maild.config_sections import (  # noqa: F401 - the sections are config's to hand out
    AUTH_METHODS,
    NEW_TICKET_TO,
    SWITCH_OF_TEMPLATE,
    AttachmentsConfig,
    AuthConfig,
    ClusterConfig,
    LoopGuardConfig,
    MetricsConfig,
    NotificationsConfig,
    RelayConfig,
    ReportsConfig,
    SmtpConfig,
    TicketsConfig,
    WebConfig,
    WorkerConfig,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A configuration problem, worded for the admin (names the file and key)."""


@dataclass(frozen=True)
class Config:
    data_dir: Path
    db_url: str
    rules_dir: Path
    templates_dir: Path
    hostname: str = "maild.localdomain"
    # The zone people read times in; load() resolves the key (empty: the machine's zone).
    timezone: tzinfo = UTC
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    tickets: TicketsConfig = field(default_factory=TicketsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    attachments: AttachmentsConfig = field(default_factory=AttachmentsConfig)
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    loop_guard: LoopGuardConfig = field(default_factory=LoopGuardConfig)
    web: WebConfig = field(default_factory=WebConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # Where data_dir and db came from ("given": the command line or its environment; "file";
    # "default"): ``maild status`` tells the admin why maild uses the directory it uses.
    # Provenance, not configuration: two configs that say the same are equal (compare=False).
    config_file: Path | None = field(default=None, compare=False)
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def origin(self, key: str) -> str:
        return dict(self.origins).get(key, "default")

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"

    @property
    def outbox_maildir(self) -> Path:
        return self.data_dir / "outbox"


# section -> key -> value; each value was checked against its SCHEMA type at run time (Any:
# the check is dynamic, so that e.g. RelayConfig(**values["relay"]) is not an error).
Values = dict[str, dict[str, Any]]


def _check(source: str, raw: dict) -> Values:
    """Validate raw TOML against SCHEMA; return section -> key -> value with defaults.
    ``[notifications.<DEPT>]`` tables come back as sections ``notifications.<DEPT>``
    holding only the keys they set."""
    values: dict[str, dict[str, object]] = {
        section: {key: default for key, (_, default, _) in keys.items()}
        for section, keys in SCHEMA.items()
    }
    for key, value in raw.items():
        if isinstance(value, dict) and key in SCHEMA and key != "":
            for sub, subvalue in value.items():
                if key == "notifications" and isinstance(subvalue, dict):
                    _department_notifications(source, values, sub, subvalue)
                else:
                    _assign(source, values, key, sub, subvalue)
        else:
            _assign(source, values, "", key, value)
    return values


def _department_notifications(source: str, values: dict, code: str, table: dict) -> None:
    if not code.isalnum() or not code.isupper():
        raise ConfigError(f"{source}: [notifications.{code}]: a department code is written in capitals, like OSA")
    scratch: Values = {"notifications": {}}
    for key, value in table.items():
        if key in ALL_DEPARTMENTS_ONLY:
            raise ConfigError(f"{source}: key 'notifications.{code}.{key}' is set for all departments only")
        try:
            _assign(source, scratch, "notifications", key, value)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("'notifications.", f"'notifications.{code}.")) from None
    values[f"notifications.{code}"] = scratch["notifications"]


def _assign(source: str, values: dict, section: str, key: str, value: object) -> None:
    name = f"{section}.{key}" if section else key
    spec = SCHEMA.get(section, {}).get(key)
    if spec is None:
        raise ConfigError(f"{source}: unknown key '{name}'")
    expected = spec[0]
    # bool is an int in Python; refuse it where a number is meant and vice versa.
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        kind = {"list": "list"}.get(getattr(expected, "__name__", ""), getattr(expected, "__name__", "number"))
        raise ConfigError(f"{source}: key '{name}' must be a {kind}, not {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{source}: key '{name}' must not be negative")
    values[section][key] = value


def listen_address(source: str, text: str, key: str = "smtp.listen") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{source}: key '{key}' must be HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def load(
    path: Path | None = None,
    *,
    data_dir: str | None = None,
    db: str | None = None,
    rules: str | None = None,
    templates: str | None = None,
    listen: str | None = None,
) -> Config:
    """Read the config file (if any) and apply overrides from the command line/env."""
    raw: dict = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: {exc}") from None
    v = _check(source, raw)
    top = v[""]
    base = PROJECT_DIR
    data = Path(data_dir or str(top["data_dir"])).expanduser()      # "~/x" from an unexpanding shell or TOML
    if not data.is_absolute():
        data = Path.cwd() / data
    rules_dir = Path(rules or str(top["rules"]) or base / "rules")
    templates_dir = Path(templates or str(top["templates"]) or base / "templates")
    db_url = db or str(top["db"]) or f"sqlite:///{data / 'maild.db'}"
    host, port = listen_address(source if listen is None else "--smtp", listen or str(v["smtp"]["listen"]))
    if not 0 <= v["smtp"]["listeners"] <= 64:
        raise ConfigError(f"{source}: key 'smtp.listeners' must be 0 (one per two cores) to 64, "
                          f"not {v['smtp']['listeners']!r}")
    loop = str(v["smtp"]["event_loop"])
    if loop not in eventloop.CHOICES:
        raise ConfigError(f"{source}: key 'smtp.event_loop' must be one of {', '.join(eventloop.CHOICES)}, "
                          f"not {loop!r}")
    if loop == "uvloop" and not eventloop.available():
        raise ConfigError(f"{source}: key 'smtp.event_loop' is 'uvloop', but uvloop is not installed "
                          "(pip install uvloop, or set it to 'auto')")
    origins = tuple((key, "given" if given else "file" if key in raw else "default")
                    for key, given in (("data_dir", data_dir), ("db", db), ("timezone", None)))
    return Config(
        data_dir=data,
        db_url=db_url,
        config_file=Path(path) if path is not None else None,
        origins=origins,
        rules_dir=rules_dir,
        templates_dir=templates_dir,
        hostname=_hostname(source, str(top["hostname"])),
        timezone=_zone(source, str(top["timezone"])),
        smtp=SmtpConfig(host=host, port=port, event_loop=loop,
                        **{k: int(value) for k, value in v["smtp"].items() if k not in ("listen", "event_loop")}),
        relay=RelayConfig(**v["relay"]),
        worker=WorkerConfig(**v["worker"]),
        tickets=TicketsConfig(**v["tickets"]),
        attachments=AttachmentsConfig(**v["attachments"]),
        auth=_auth(source, v["auth"]),
        notifications=_notifications(source, v),
        reports=_reports(source, v["reports"]),
        loop_guard=LoopGuardConfig(**v["loop_guard"]),
        web=_web(source, v["web"]),
        cluster=_cluster(source, v["cluster"]),
        metrics=(MetricsConfig(*listen_address(source, str(v["metrics"]["listen"]), "metrics.listen"), enabled=True)
                 if v["metrics"]["listen"] else MetricsConfig()),
    )


def _cluster(source: str, v: dict) -> ClusterConfig:
    if v["lease"] < 5:
        raise ConfigError(f"{source}: key 'cluster.lease' must be at least 5 seconds, not {v['lease']!r}")
    if len(str(v["node"])) > 100 or any(c.isspace() for c in str(v["node"])):
        raise ConfigError(f"{source}: key 'cluster.node' must be a name without spaces, at most 100 characters")
    return ClusterConfig(node=str(v["node"]), lease=int(v["lease"]))


def _web(source: str, v: dict) -> WebConfig:
    """``[web]``; mailed links start with ``url``: http(s)://host[:port][/path], nothing after."""
    from urllib.parse import urlsplit
    for key in ("link_hours", "per_client_hour", "per_address_hour"):
        if v[key] < 1:
            raise ConfigError(f"{source}: key 'web.{key}' must be at least 1, not {v[key]!r}")
    url, parts = str(v["url"]), urlsplit(str(v["url"]))
    if url and (parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment):
        raise ConfigError(f"{source}: key 'web.url' must be an address such as https://helpdesk.torex.ru, not {url!r}")
    return WebConfig(*listen_address(source, str(v["listen"]), "web.listen"), enabled=bool(v["enabled"]),
                     url=url.rstrip("/"), link_hours=v["link_hours"], per_client_hour=v["per_client_hour"],
                     per_address_hour=v["per_address_hour"])


def _hostname(source: str, name: str) -> str:
    """A domain name: it ends every Message-ID maild makes and is its SMTP greeting."""
    labels = name.rstrip(".").split(".")
    if not name or not all(label and len(label) <= 63 and all(c.isascii() and (c.isalnum() or c == "-")
                                                               for c in label) for label in labels):
        raise ConfigError(f"{source}: key 'hostname' must be a domain name such as maild.torex.ru, not {name!r}")
    return name


def _zone(source: str, name: str) -> tzinfo:
    """dateutil's zone for the name (its own zone data when the system has none); an empty
    name is the machine's zone, as gettz reads it: ``TZ``, else ``/etc/localtime``."""
    zone: tzinfo | None
    try:
        zone = tz.gettz(name) if name else tz.gettz() or tz.tzlocal()
    except (ValueError, OSError, Warning):      # a path to a file that is not a zone
        zone = None
    # A POSIX rule ("UTC+3") is refused: dateutil and POSIX read its sign the opposite ways.
    if zone is None or (name and isinstance(zone, tz.tzrangebase)):
        raise ConfigError(f"{source}: key 'timezone' must be an IANA time zone name such as "
                          f"\"Europe/Saratov\", not {name!r}")
    return zone


def is_mail_address(text: str) -> bool:
    """One plain ASCII address, local@domain: nothing a header or a list could hide in."""
    return (text.count("@") == 1 and all(text.split("@")) and text.isascii()
            and not any(c in text for c in " \t\r\n<>,;\"'"))


def _reports(source: str, values: dict) -> ReportsConfig:
    for key, address in values.items():
        if address and not is_mail_address(address):
            raise ConfigError(f"{source}: key 'reports.{key}' must be one mail address, not {address!r}")
    return ReportsConfig(**values)


def _notifications(source: str, values: dict) -> NotificationsConfig:
    settings = []
    for section, table in values.items():
        if section == "notifications" or section.startswith("notifications."):
            code = section.partition(".")[2] or "*"
            if table.get("new_ticket_to", "all") not in NEW_TICKET_TO:
                raise ConfigError(f"{source}: key '{section}.new_ticket_to' must be \"all\" or \"assignee\"")
            settings += [(code, key, value) for key, value in table.items() if key not in ALL_DEPARTMENTS_ONLY]
    return NotificationsConfig(settings=tuple(settings), overdue_days=int(values["notifications"]["overdue_days"]))


def _auth(source: str, values: dict) -> AuthConfig:
    for key in ("methods", "trusted_hosts", "trusted_networks"):
        if not all(isinstance(item, str) for item in values[key]):
            raise ConfigError(f"{source}: key 'auth.{key}' must be a list of strings")
    unknown = [m for m in values["methods"] if m not in AUTH_METHODS]
    if unknown:
        raise ConfigError(f"{source}: key 'auth.methods': unknown {', '.join(unknown)} "
                          f"(one of {', '.join(AUTH_METHODS)})")
    for network in values["trusted_networks"]:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"{source}: key 'auth.trusted_networks': {network!r} is not a network") from None
    if values["signed_address_days"] < 1:
        raise ConfigError(f"{source}: key 'auth.signed_address_days' must be at least 1")
    return AuthConfig(methods=tuple(values["methods"]), trusted_hosts=tuple(h.lower() for h in values["trusted_hosts"]),
                      trusted_networks=tuple(values["trusted_networks"]), secret=values["secret"],
                      signed_address_days=values["signed_address_days"])
