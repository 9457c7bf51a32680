"""The configuration reference, ``docs/config.md``, written from ``config_schema.SCHEMA``.

``maild config reference`` prints it, ``make docs`` writes it, and a test keeps the
committed file equal to what this module makes, so the reference cannot drift from the
schema the daemon validates against.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from maild import config_schema

TYPE_NAMES = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array"}
DEPT = "notifications.<DEPT>"


def toml_value(value: object) -> str:
    """A default as it is written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)   # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(TYPE_NAMES[k] for k in kinds)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{key}` | {kind} | {default} | {_cell(doc)} |" for key, kind, default, doc in rows]
    return lines


def _heading(section: str) -> str:
    return "## Top level" if section == "" else f"## `[{section}]`"


def _location(options: Sequence[tuple[str, str, str, str]]) -> list[str]:
    top = config_schema.SCHEMA[""]
    overrides = [(flag, env, name) for flag, name, env, _ in options if name in top]
    config_option = next((flag, env) for flag, name, env, _ in options if name == "config")
    lines = [
        "## Where maild finds its configuration",
        "",
        f"- **The file.** maild reads one TOML file, and only when one is named: `{config_option[0]} FILE` "
        f"(before or after the command) or the environment variable `{config_option[1]}`. There is no "
        "default location: without one, every key has its default. A named file that does not exist is "
        "an error. The file is read once at start (SIGHUP reloads the rules, not this file); the "
        "systemd units set `MAILD_CONFIG=/etc/maild/maild.toml`.",
        "- **Precedence.** A command-line option beats the environment variable, which beats the file, "
        "which beats the default. An option given after the command wins over the same option before it.",
        "- **Errors.** An unknown key, a value of the wrong type or a negative number stops maild with a "
        "sentence naming the file and the key (exit 78).",
        "- **The data directory** (`data_dir`, default "
        f"`{top['data_dir'][1]}`): a relative path is taken from the current directory; it is created "
        "if missing (the systemd units set `MAILD_DATA_DIR=/var/lib/maild`). It holds `maild.db` (the "
        "SQLite database, when `db` is empty), `spool/` (mail accepted and not yet processed, and the "
        "quarantine), `mail/YYYY/MM/` (the archive of every inbound message), `attachments/`, `outbox/` "
        "(the Maildir outgoing mail goes into when `relay.host` is empty) and `reply-secret` (when "
        "`auth.secret` is empty).",
        "- **Rules and templates** (`rules`, `templates`): empty means the `rules/` and `templates/` "
        "directories of the project, beside the `maild` package.",
        "",
        "Overrides, on the command line and in the environment:",
        "",
        "| option | environment | key |",
        "|---|---|---|",
    ]
    lines += [f"| `{flag}` | `{env}` | `{name}` |" for flag, env, name in overrides]
    lines += ["| `maild serve --smtp HOST:PORT` | — | `smtp.listen` |", ""]
    return lines


def render(schema: Mapping[str, Mapping[str, tuple]] | None = None,
           section_docs: Mapping[str, str] | None = None,
           options: Sequence[tuple[str, str, str, str]] | None = None) -> str:
    """The reference as Markdown (the arguments: another schema, for the tests)."""
    schema = config_schema.SCHEMA if schema is None else schema
    section_docs = config_schema.SECTION_DOCS if section_docs is None else section_docs
    if options is None:
        from maild.admin.cli.base import GLOBAL_OPTIONS  # here: cli imports this module for its command
        options = GLOBAL_OPTIONS
    lines = [
        "# Configuration reference",
        "",
        "<!-- Written by `make docs` (`maild config reference`) from maild/config.py; do not edit. -->",
        "",
        "maild reads one TOML file; every key is optional. `maild.toml.example` lists every key with "
        "its default.",
        "",
    ]
    lines += _location(options)
    for section, keys in schema.items():
        lines += [_heading(section), "", section_docs.get(section, ""), ""]
        lines += _table([(key, type_name(kind), f"`{toml_value(default)}`", doc)
                         for key, (kind, default, doc) in keys.items()])
        lines.append("")
        if section == "notifications":
            lines += [_heading(DEPT), "", section_docs.get(DEPT, ""), ""]
            lines += _table([(key, type_name(kind), "as `[notifications]`", doc)
                             for key, (kind, default, doc) in keys.items()
                             if key not in config_schema.ALL_DEPARTMENTS_ONLY])
            lines.append("")
    return "\n".join(lines)
