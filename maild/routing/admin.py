"""The admin's routing tools behind ``maild rules train``, ``eval`` and ``diff``: each returns
a value the CLI prints; only ``train`` writes, and only the model file."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from maild.deciding.organisation import Organisation
from maild.routing import examples as examples_mod, learned, train as train_mod
from maild.routing.examples import Example
from maild.routing.features import Features
from maild.routing.model import MODEL_FILE, Model
from maild.routing.reader import Reader

HOLD_OUT = 0.2       # the newest fifth of the staff corrections judges a new model


@dataclass
class Trained:
    model: Model
    examples: int
    learned: int
    cross_validated: float                 # accuracy on examples held out in turn (5 folds)
    judged_on: int = 0                     # newest corrections the old and new model were compared on
    old_accuracy: float | None = None
    new_accuracy: float | None = None
    written: bool = False
    refused: str = ""
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{self.examples} examples ({self.learned} from staff corrections), "
                 f"{len(self.model.classes)} classes, {len(self.model.weights)} features",
                 f"cross-validated accuracy (5 folds): {self.cross_validated:.1%}"]
        if self.judged_on:
            lines.append(f"on the {self.judged_on} newest corrections (not trained on): "
                         f"model in force {self.old_accuracy:.1%}, new {self.new_accuracy:.1%}")
        lines += self.notes
        lines.append(f"written: {self.model.trained.get('path', '')}" if self.written
                     else f"not written: {self.refused}")
        return "\n".join(lines)


def featurise(reader: Reader, examples: list[Example]) -> list[tuple[Example, Features]]:
    return [(e, reader.features(e.subject, e.body)) for e in examples]


def accuracy(model: Model, featurised: list[tuple[Example, Features]]) -> float:
    if not featurised:
        return 1.0
    return sum(model.score(f.values, explain=0).ranked[0][0] == e.label for e, f in featurised) / len(featurised)


def cross_validate(featurised: list[tuple[Example, Features]], k: int = 5) -> float:
    right = total = 0
    for train, held in train_mod.folds(featurised, k):
        model = train_mod.fit(train)
        right += sum(model.score(f.values, explain=0).ranked[0][0] == e.label for e, f in held)
        total += len(held)
    return right / total if total else 1.0


def gather(rules_dir: Path, org: Organisation, reader: Reader,
           engine: Engine | None) -> tuple[list[Example], list[Example]]:
    """(the examples under rules/, the staff corrections in the database, oldest first)."""
    shipped = examples_mod.from_rules(rules_dir, org, reader.settings)
    found: list[Example] = []
    if engine is not None:
        labels = set(reader.classes.kinds)
        with engine.connect() as conn:
            found = learned.corrections(conn, reader.settings.learn_days, labels)
    return shipped, found


def train(rules_dir: Path, org: Organisation, reader: Reader, engine: Engine | None, force: bool = False,
          write: bool = True) -> Trained:
    """A new model from every example. It replaces the one in force only if it is no worse
    on the newest staff corrections, which it is not trained on for that comparison."""
    shipped, found = gather(rules_dir, org, reader, engine)
    everything = featurise(reader, shipped + found)
    labels = {e.label for e, _ in everything}
    missing = sorted((set(reader.classes.kinds) | {t.name for t in reader.settings.topics}) - labels)
    model = train_mod.fit(everything)
    result = Trained(model, len(everything), len(found), cross_validate(everything))
    if missing:
        result.notes.append(f"no examples for {', '.join(missing)}: the model cannot choose them")
    held_n = int(len(found) * HOLD_OUT) if len(found) >= 5 else 0
    if held_n and reader.model is not None:
        older, newest = everything[:len(everything) - held_n], everything[len(everything) - held_n:]
        candidate = train_mod.fit(older)
        result.judged_on = held_n
        result.old_accuracy = accuracy(reader.model, newest)
        result.new_accuracy = accuracy(candidate, newest)
        if result.new_accuracy < result.old_accuracy and not force:
            result.refused = (f"the new model is worse on the newest corrections ({result.new_accuracy:.1%} < "
                              f"{result.old_accuracy:.1%}); the model in force stays (--force writes it anyway)")
            return result
    elif reader.model is not None:
        result.notes.append("fewer than 5 staff corrections: nothing held out to compare the models on")
    if write:
        path = Path(rules_dir) / MODEL_FILE
        model.trained["path"] = str(path)
        model.save(path)
        result.written = True
    else:
        result.refused = "--dry-run"
    return result


@dataclass(frozen=True)
class Difference:
    inbound_id: int
    received_at: datetime
    subject: str
    ticket: str | None
    then: str          # "OSA|Принтер", "closed-not-handled", ...
    now: str
    why: str


def describe(outcome: str, department: str, category: str | None) -> str:
    return outcome if outcome.startswith("closed") else f"{department}|{category or '— (triage)'}"


def diff(engine: Engine, data_dir: Path, since: datetime, org: Organisation, table, reader: Reader) -> list[Difference]:
    """Every new request of the period (from the archive) that today's rules and model
    would decide differently from how it was decided then. A dry run: nothing is written."""
    from sqlalchemy import select

    from maild.acting.models import Inbound, Ticket, TicketChange
    from maild.deciding import rules as rules_mod
    from maild.intake.spool import read
    from maild.reading.parse import ParseError, parse

    out: list[Difference] = []
    i, t, c = Inbound.__table__, Ticket.__table__, TicketChange.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(i.c.id, i.c.received_at, i.c.subject, i.c.archive_path, i.c.disposition, i.c.rcpt_to,
                   t.c.id.label("tid"), t.c.number, t.c.category, t.c.created_at)
            .join(t, t.c.id == i.c.ticket_id)
            .where(i.c.received_at >= since,
                   (i.c.disposition == "ticket-created") | i.c.disposition.like("closed-%"))
            .order_by(i.c.id)).all()
        history: dict[int, list] = {}
        ids = [r.tid for r in rows]
        for chunk in (ids[k:k + 500] for k in range(0, len(ids), 500)):
            for h in conn.execute(select(c.c.ticket_id, c.c.at, c.c.field, c.c.old, c.c.new)
                                  .where(c.c.ticket_id.in_(chunk)).order_by(c.c.id)):
                history.setdefault(h.ticket_id, []).append(h)
    for row in rows:
        changes = history.get(row.tid, [])
        opened = next((h.new for h in changes if h.field == "opened"), None)
        first_category = next((h for h in changes if h.field == "category"), None)
        category_then = first_category.old if first_category is not None else row.category
        # The full name, not the history's 30 characters: the category of that department it begins.
        if category_then and opened and (opened_in := org.department(opened)):
            category_then = next((x.name for x in opened_in.categories
                                  if x.name.startswith(category_then)), category_then)
        outcome_then = row.disposition if row.disposition.startswith("closed") else "new-ticket"
        then = describe(outcome_then, opened or "?", None if outcome_then != "new-ticket" else category_then)
        try:
            envelope, raw = read(data_dir / row.archive_path)
            mail = parse(raw)
        except (OSError, ValueError, ParseError) as exc:
            out.append(Difference(row.id, row.received_at, row.subject, row.number, then, "unreadable", str(exc)))
            continue
        department = next(filter(None, map(org.department_for_address, envelope.rcpt_to)), None)
        if department is None:
            out.append(Difference(row.id, row.received_at, row.subject, row.number, then, "refused",
                                  "no department address among the recipients today"))
            continue
        sender = mail.sender.email if mail.sender else envelope.mail_from
        routing = rules_mod.route(mail, envelope.rcpt_to, sender or "", department, org, table, reader)
        outcome_now = "closed-" + routing.close.replace("_", "-") if routing.close else "new-ticket"
        now = describe(outcome_now, routing.department.code,
                       routing.category.name if routing.category else None)
        if now != then:
            why = routing.explain() + ("; " + routing.reading.summary() if routing.reading else "")
            out.append(Difference(row.id, row.received_at, row.subject, row.number, then, now, why.strip("; ")))
    return out
