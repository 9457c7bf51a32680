"""``maild rules eval LABELLED``: the policy in force against mail whose right answer is known.

LABELLED is a TSV (``file to department category kind outcome``, paths relative to the TSV;
``outcome`` new-ticket, closed-not-handled or closed-uncategorised) or a folder laid out by
category (``DIR/<Категория>/*.eml``; a folder named after a topic holds mail the department
should close). Each mail goes through ``rules.route`` exactly as the worker routes it.
"""
from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from maild.deciding import rules as rules_mod
from maild.deciding.organisation import Organisation
from maild.reading.parse import ParseError, parse

OUTCOMES = ("new-ticket", "closed-not-handled", "closed-uncategorised")
TOPIC_OUTCOMES = {"telecom": "closed-not-handled", "not-it": "closed-uncategorised"}


@dataclass(frozen=True)
class Labelled:
    path: Path
    to: str
    department: str
    category: str          # "" when none applies
    kind: str
    outcome: str
    note: str = ""


@dataclass(frozen=True)
class Decided:
    item: Labelled
    outcome: str
    department: str
    category: str
    kind: str
    moves: int
    why: str
    seconds: float

    @property
    def errors(self) -> list[str]:
        out = []
        if self.outcome != self.item.outcome:
            out.append(f"outcome {self.outcome} (want {self.item.outcome})")
        if self.department != self.item.department:
            out.append(f"department {self.department} (want {self.item.department})")
        if self.item.outcome == "new-ticket" and self.category != self.item.category:
            out.append(f"category {self.category or '—'} (want {self.item.category or '—'})")
        if self.item.outcome == "new-ticket" and self.item.kind and self.kind != self.item.kind:
            out.append(f"kind {self.kind or '—'} (want {self.item.kind})")
        return out


@dataclass
class Report:
    decided: list[Decided] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def share(self, ok) -> float:
        items = [d for d in self.decided if ok(d) is not None]
        return sum(bool(ok(d)) for d in items) / len(items) if items else 1.0

    def figures(self) -> dict:
        valid = [d for d in self.decided if d.item.outcome == "new-ticket"]
        return {
            "mails": len(self.decided),
            "outcome": round(self.share(lambda d: d.outcome == d.item.outcome), 4),
            "department": round(self.share(lambda d: d.department == d.item.department), 4),
            "category": round(self.share(lambda d: d.category == d.item.category
                                         if d.item.outcome == "new-ticket" else None), 4),
            "kind": round(self.share(lambda d: d.kind == d.item.kind
                                     if d.item.outcome == "new-ticket" and d.item.kind else None), 4),
            "valid_closed": sum(d.outcome != "new-ticket" for d in valid),
            "triage": sum(d.outcome == "new-ticket" and not d.category for d in self.decided),
            "round_trips": sum(d.moves > 1 for d in self.decided),
            "ms_per_mail": round(1000 * sum(d.seconds for d in self.decided) / max(1, len(self.decided)), 3),
        }

    def confusion(self) -> list[tuple[str, str, int]]:
        """(wanted, got, count) for every category mistake, most frequent first."""
        pairs = Counter((f"{d.item.department}|{d.item.category or '—'}", f"{d.department}|{d.category or '—'}")
                        for d in self.decided if d.errors)
        return [(a, b, n) for (a, b), n in pairs.most_common()]

    def text(self) -> str:
        f = self.figures()
        lines = [f"{f['mails']} mails: outcome {f['outcome']:.1%}, department {f['department']:.1%}, "
                 f"category {f['category']:.1%}, kind {f['kind']:.1%}",
                 f"valid requests closed without processing: {f['valid_closed']}; round trips: {f['round_trips']}; "
                 f"left to triage: {f['triage']}; {f['ms_per_mail']} ms a mail"]
        if self.unreadable:
            lines += ["unreadable:"] + [f"  {u}" for u in self.unreadable]
        confusion = self.confusion()
        if confusion:
            lines.append("mistakes (wanted -> got: count):")
            lines += [f"  {a} -> {b}: {n}" for a, b, n in confusion]
        errors = [d for d in self.decided if d.errors]
        if errors:
            lines.append("errors:")
            for d in errors:
                lines.append(f"  {d.item.path.name}: {'; '.join(d.errors)}")
                lines.append(f"      why: {d.why}")
        return "\n".join(lines)


def read_labelled(source: Path, org: Organisation, topics: set[str]) -> list[Labelled]:
    source = Path(source)
    if source.is_dir():
        out = []
        for folder in sorted(p for p in source.iterdir() if p.is_dir()):
            category = next((c for d in org.departments for c in d.categories
                             if c.name.lower() == folder.name.lower()), None)
            if category is None and folder.name not in topics:
                raise ValueError(f"{folder}: not a category or topic name")
            for path in sorted(folder.glob("*.eml")):
                if category is not None:
                    dept = org.department(category.department)
                    assert dept is not None         # the category is one of a department of org's
                    out.append(Labelled(path, dept.address, dept.code, category.name, category.kind, "new-ticket"))
                else:
                    osa = org.departments[0]
                    out.append(Labelled(path, osa.address, osa.code, "", "", TOPIC_OUTCOMES.get(folder.name,
                                                                                               "new-ticket")))
        return out
    out = []
    with source.open(encoding="utf-8", newline="") as src:
        for n, row in enumerate(csv.DictReader(src, delimiter="\t"), 2):
            if row.get("outcome") not in OUTCOMES:
                raise ValueError(f"{source}: line {n}: outcome must be one of {', '.join(OUTCOMES)}")
            out.append(Labelled(source.parent / row["file"], row["to"], row["department"], row.get("category") or "",
                                row.get("kind") or "", row["outcome"], row.get("note") or ""))
    return out


def evaluate(items: list[Labelled], org: Organisation, table, reader) -> Report:
    report = Report()
    for item in items:
        try:
            mail = parse(item.path.read_bytes())
        except (OSError, ParseError) as exc:
            report.unreadable.append(f"{item.path}: {exc}")
            continue
        department = org.department_for_address(item.to)
        if department is None:
            report.unreadable.append(f"{item.path}: {item.to} is no department address")
            continue
        sender = mail.sender.email if mail.sender else ""
        started = time.perf_counter()
        routing = rules_mod.route(mail, (item.to,), sender, department, org, table, reader)
        seconds = time.perf_counter() - started
        outcome = "closed-" + routing.close.replace("_", "-") if routing.close else "new-ticket"
        # A second move is refused by route() and recorded: count it as the round trip it was.
        moves = (routing.department.code != department.code) + sum("already moved once" in h.rule
                                                                   for h in routing.hits)
        why = routing.explain() or "—"
        if routing.reading is not None:
            why += f" | reading: {routing.reading.reason}"
        report.decided.append(Decided(item, outcome, routing.department.code,
                                      routing.category.name if routing.category else "",
                                      routing.kind or "", moves, why, seconds))
    return report
