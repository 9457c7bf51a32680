"""Labelled examples the model learns from, and the settings of the reading.

Three places, all admin-editable text:

- ``examples = [...]`` in a category of ``rules/departments/*.toml``: a few sentences each,
  as easily added as words;
- ``rules/routing.toml``: the thresholds, and the topics outside every category (mobile and
  PBX matters, mail that is not IT work) with their examples;
- ``rules/examples/*.tsv``: bulk examples, one per line: ``label<TAB>subject<TAB>body``
  (``\\n`` for a line break in the body); label ``DEPT|Категория`` or a topic name.

And one in the database: the corrections staff made by mail (``learned``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from maild.deciding.organisation import Organisation, RulesError, Source
from maild.routing.decide import Thresholds

ROUTING_FILE = "routing.toml"
EXAMPLES_DIR = "examples"
TOPIC_ALIASES = {"none|telecom": "telecom", "none|not-it": "not-it"}


@dataclass(frozen=True)
class Example:
    label: str                 # "DEPT|Категория" or a topic name
    subject: str
    body: str
    origin: str                # where it comes from: "file:line", "ticket OSA-000123"
    at: datetime | None = None  # when (staff corrections): the time split orders by it


@dataclass(frozen=True)
class Topic:
    name: str                  # latin: telecom, not-it
    description: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    thresholds: Thresholds
    topics: tuple[Topic, ...]
    learn_days: int = 3        # a correction within this many days of opening is a label


def load_settings(rules_dir: Path) -> Settings:
    path = Path(rules_dir) / ROUTING_FILE
    if not path.is_file():
        return Settings(Thresholds(), ())
    src = Source(path)
    table = src.data.get("thresholds", {})
    values = {}
    for key, value in table.items():
        if key not in Thresholds.FIELDS:
            raise src.error(src.key_line("thresholds", 0, key),
                            f"unknown threshold {key!r} (one of {', '.join(Thresholds.FIELDS)})")
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise src.error(src.key_line("thresholds", 0, key), f"threshold {key!r} must be a number from 0 to 1")
        values[key] = float(value)
    topics = []
    for i, t in enumerate(src.data.get("topic", [])):
        name = t.get("name")
        if not isinstance(name, str) or not name or "|" in name:
            raise src.error(src.table_line("topic", i), "every [[topic]] needs a name (latin, no '|')")
        examples = t.get("examples", [])
        if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
            raise src.error(src.key_line("topic", i, "examples"), f"topic {name!r}: examples must be a list of strings")
        topics.append(Topic(name, str(t.get("description", "")), tuple(examples)))
    learn = src.data.get("learning", {}).get("days", 3)
    if not isinstance(learn, int) or learn < 0:
        raise src.error(src.key_line("learning", 0, "days"), "[learning] days must be a whole number")
    return Settings(Thresholds(**values), tuple(topics), learn)


def from_rules(rules_dir: Path, org: Organisation, settings: Settings) -> list[Example]:
    """Every example under ``rules/``, checked against the categories and topics."""
    out: list[Example] = []
    for dept in org.departments:
        for category in dept.categories:
            out += [Example(f"{dept.code}|{category.name}", "", sentence, f"{dept.code} category {category.name!r}")
                    for sentence in category.examples]
    for topic in settings.topics:
        out += [Example(topic.name, "", sentence, f"topic {topic.name!r}") for sentence in topic.examples]
    labels = {f"{d.code}|{c.name}" for d in org.departments for c in d.categories} | {t.name for t in settings.topics}
    for path in sorted((Path(rules_dir) / EXAMPLES_DIR).glob("*.tsv")):
        out += read_tsv(path, labels)
    return out


def read_tsv(path: Path, labels: set[str]) -> list[Example]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from None
    for number, row in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if not row or not "".join(row).strip() or row[0].startswith("#") or row[0] == "label":
            continue
        if len(row) != 3:
            raise RulesError(f"{path}: line {number}: needs 3 fields (label, subject, body), has {len(row)}")
        label = TOPIC_ALIASES.get(row[0].strip(), row[0].strip())
        if label not in labels:
            raise RulesError(f"{path}: line {number}: unknown label {row[0]!r} "
                             "(a DEPT|Категория of rules/departments or a topic of routing.toml)")
        out.append(Example(label, row[1], row[2].replace("\\n", "\n"), f"{path.name}:{number}"))
    return out
