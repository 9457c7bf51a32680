"""docs/config.md is written from the schema (maild/admin/configref.py) and must stay so."""
from __future__ import annotations

import copy
import re
import tomllib

import pytest
from click.testing import CliRunner

from maild import config, config_schema
from maild.admin import configref
from maild.admin.cli import main

from conftest import PROJECT

DOCS = PROJECT / "docs" / "config.md"
EXAMPLE = PROJECT / "maild.toml.example"
HEADING = re.compile(r"^## (?:Top level|`\[(?P<section>[^\]]+)\]`)$")


def reference_tables(text: str) -> dict[str, dict[str, str]]:
    """section -> key -> the default cell, read back from the reference's tables."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            section = heading["section"] or ""
            tables[section] = {}
        elif line.startswith("## "):
            section = None
        elif section is not None and line.startswith("| `"):
            key, _kind, default, _doc = line.strip("| ").split(" | ", 3)
            tables[section][key.strip("`")] = default
    return tables


def example_keys() -> set[str]:
    """Every key the example file sets, as section.key (the top level without a section)."""
    keys = set()
    for name, value in tomllib.loads(EXAMPLE.read_text(encoding="utf-8")).items():
        if not isinstance(value, dict):
            keys.add(name)
            continue
        for key, sub in value.items():
            if isinstance(sub, dict):       # [notifications.<DEPT>]
                keys.update(f"{name}.<DEPT>.{k}" for k in sub)
            else:
                keys.add(f"{name}.{key}")
    return keys


def literal(cell: str) -> str | None:
    """The TOML value of a default cell, or None where the default is not one (a
    [notifications.<DEPT>] key defaults to the [notifications] value)."""
    return cell[1:-1] if cell.startswith("`") and cell.endswith("`") and cell.count("`") == 2 else None


def test_docs_config_md_is_the_generated_reference():
    assert DOCS.read_text(encoding="utf-8") == configref.render(), (
        "docs/config.md differs from what maild/config.py says: run `make docs` and commit it")


def test_the_cli_prints_the_reference():
    result = CliRunner().invoke(main, ["config", "reference"])
    assert result.exit_code == 0, result.output
    assert result.output == configref.render()


def test_every_key_and_section_has_a_description():
    for section, keys in config_schema.SCHEMA.items():
        assert config_schema.SECTION_DOCS.get(section, "").strip(), f"section [{section}] has no description"
        for key, spec in keys.items():
            assert len(spec) == 3, f"{section}.{key}: (type, default, description)"
            assert isinstance(spec[2], str) and spec[2].strip(), f"{section}.{key} has no description"
    assert config_schema.SECTION_DOCS.get(configref.DEPT, "").strip()
    assert set(config_schema.SECTION_DOCS) == set(config_schema.SCHEMA) | {configref.DEPT}


def test_the_reference_has_every_key_of_the_schema():
    tables = reference_tables(configref.render())
    assert {s: set(keys) for s, keys in tables.items() if s != configref.DEPT} == \
        {s: set(keys) for s, keys in config_schema.SCHEMA.items()}
    every = set(config_schema.SCHEMA["notifications"]) - set(config_schema.ALL_DEPARTMENTS_ONLY)
    assert set(tables[configref.DEPT]) == every


def test_every_key_of_the_example_is_in_the_reference_and_back():
    tables = reference_tables(configref.render())
    documented = {f"{s}.{k}" if s else k for s, keys in tables.items() for k in keys}
    in_example = example_keys()
    assert in_example - documented == set(), "keys in maild.toml.example the reference does not know"
    # ... and the example shows every key that has a default of its own.
    shown = {name for name in documented if not name.startswith(configref.DEPT)}
    assert shown - in_example == set(), "keys of the reference missing from maild.toml.example"


def test_the_reference_defaults_are_toml_the_schema_accepts(tmp_path):
    tables = reference_tables(configref.render())
    lines = []
    for section, keys in tables.items():
        if section == configref.DEPT:
            continue
        lines.append(f"[{section}]" if section else "")
        for key, cell in keys.items():
            value = literal(cell)
            assert value is not None, f"{section}.{key}: the default {cell} is not one TOML value"
            parsed = tomllib.loads(f"x = {value}")["x"]
            assert parsed == config_schema.SCHEMA[section][key][1], f"{section}.{key}: {value} is not the default"
            lines.append(f"{key} = {value}")
    written = tmp_path / "from-reference.toml"
    written.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert config.load(written) == config.load(None)


def test_the_department_table_is_what_the_loader_takes(tmp_path):
    tables = reference_tables(configref.render())
    dept = [f"{key} = {configref.toml_value(config_schema.SCHEMA['notifications'][key][1])}"
            for key in tables[configref.DEPT]]
    written = tmp_path / "dept.toml"
    written.write_text("[notifications.OSA]\n" + "\n".join(dept) + "\n", encoding="utf-8")
    assert config.load(written).notifications.settings
    for key in config_schema.ALL_DEPARTMENTS_ONLY:
        written.write_text(f"[notifications.OSA]\n{key} = 1\n", encoding="utf-8")
        with pytest.raises(config.ConfigError, match="all departments only"):
            config.load(written)


def test_a_changed_description_changes_the_reference():
    """The comparison above can fail: the text follows the descriptions."""
    schema = copy.deepcopy(config_schema.SCHEMA)
    kind, default, _ = schema["relay"]["port"]
    schema["relay"]["port"] = (kind, default, "A description nobody wrote.")
    changed = configref.render(schema=schema)
    assert changed != configref.render()
    assert "| `port` | integer | `25` | A description nobody wrote. |" in changed
    assert changed != DOCS.read_text(encoding="utf-8")
