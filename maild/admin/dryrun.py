"""``maild rules test MAIL.eml`` and ``maild replay ID``: what maild would do with a mail,
and why. They run the worker's own decision (``deciding/dispatch``) on a read-only
connection and print the plan instead of writing it; the mail that would be sent is
rendered and shown. Nothing is written: the connection refuses writes (SQLite
``query_only``, PostgreSQL ``READ ONLY``) and is rolled back.

Two answers come from intake, not the worker, and are given first: an envelope sender
outside the corporate domains is refused at MAIL FROM, a mail to no department address
at RCPT TO. Without a reachable database the decision runs on an empty one (nothing is
known: no mail names a ticket), and the output says so.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from sqlalchemy.engine import Connection, Engine

from maild.acting import db
from maild.acting.db import is_unavailable
from maild.config import AuthConfig, NotificationsConfig
from maild.deciding import dispatch, facts, operations as ops, plan as p
from maild.deciding.organisation import Organisation
from maild.deciding.plan import Planner
from maild.deciding.rules import Routing
from maild.reading.classify import classify
from maild.reading.parse import parse
from maild.sending.render import Renderer
from maild.values import Clock, Envelope, SystemClock


@dataclass
class DryRun:
    disposition: str              # the worker's: ticket-created, reply-added, command-applied, ...
    reason: str
    department: str | None = None
    category: str | None = None
    kind: str | None = None
    priority: str | None = None
    assign: str | None = None
    ticket: str | None = None     # the ticket it answers, for replies
    transferred_from: str | None = None
    rules: list[dict] = field(default_factory=list)       # every rule that matched, with its words
    triage: bool = False                                  # open with no category: staff choose
    reading: dict | None = None                           # routing.decide.Reading.as_dict()
    mail: list[dict] = field(default_factory=list)        # what would be sent: to, subject, body
    notes: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)         # the operations, in order

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [f"disposition: {self.disposition}", f"why: {self.reason}"]
        for key in ("ticket", "department", "transferred_from", "category", "kind", "priority", "assign"):
            value = getattr(self, key)
            if value:
                lines.append(f"{key.replace('_', ' ')}: {value}")
        if self.reading:
            r = self.reading
            lines.append(f"reading: {r['verdict']} ({r['reason']})")
            lines += [f"  {c['department']}|{c['category']}: {c['probability']:.0%}" for c in r["candidates"][:4]]
            if r["features"]:
                lines.append(f"  weighed most: {', '.join(r['features'])}")
            if r["entities"]:
                lines.append(f"  numbers: {', '.join(r['entities'])}")
        if self.triage and self.disposition == "ticket-created":
            lines.append("triage: open with no category, the staff alert lists the likeliest ones")
        if self.rules:
            lines.append("decided by:")
            lines += [f"  - {r['rule']}" + (f": {', '.join(r['words'])}" if r["words"] else "") for r in self.rules]
        if self.plan:
            lines.append("would do:")
            lines += [f"  - {step}" for step in self.plan]
        for note in self.notes:
            lines.append(f"note: {note}")
        for m in self.mail:
            lines += ["", f"--- would send to {m['to']}: {m['subject']}", m["body"].rstrip()]
        return "\n".join(lines)


def explain(raw: bytes, envelope: Envelope, org: Organisation, rule_table, reader, renderer: Renderer,
            engine: Engine | None, auth_config: AuthConfig | None = None, secret: bytes = b"",
            reopen_days: int = 14, hostname: str = "", notifications: NotificationsConfig | None = None,
            max_participants: int = 10, sender_budget: int = 20, fresh: bool = False,
            clock: Clock | None = None, web: tuple[str, int] = ("http://127.0.0.1:8025", 24)) -> DryRun:
    """``fresh``: decide as if the mail had never been seen (``replay`` of a stored one)."""
    mail = parse(raw)
    if envelope.mail_from and not org.is_corporate(envelope.mail_from):
        return DryRun("refused", f"550 5.7.1 at MAIL FROM: {envelope.mail_from} is outside "
                                 f"the corporate domains ({', '.join(org.domains)})")
    if not any(org.department_for_address(r) for r in envelope.rcpt_to):
        return DryRun("refused", f"550 5.1.1: no department address among {', '.join(envelope.rcpt_to)}")
    message = facts.Message("dry-run", envelope, mail, classify(mail, envelope),
                               ("replay:" if fresh else "") + facts.message_key(mail, raw))
    context = facts.Context(org, rule_table, reader, renderer, facts.Settings(
        auth_config or AuthConfig(), secret, hostname, reopen_days, max_participants, sender_budget, *web))
    notes: list[str] = []
    with _read_only(engine, notes) as conn:
        planner = Planner(conn, (clock or SystemClock()).now(), notifications or NotificationsConfig(),
                          deadlines=org.deadlines)
        try:
            plan = dispatch.decide(message, context, planner)
        except dispatch.Unroutable as exc:
            return DryRun("refused", str(exc), notes=notes)
        return _account(plan, renderer, notes)


@contextlib.contextmanager
def _read_only(engine: Engine | None, notes: list[str]) -> Iterator[Connection]:
    """A connection that cannot write; an empty database when the configured one cannot
    be reached."""
    if engine is not None:
        with contextlib.ExitStack() as stack:
            try:
                conn = stack.enter_context(db.read_only(engine))
                conn.exec_driver_sql("SELECT 1")
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                notes.append(f"database not reachable, replies to tickets not recognised: {exc}")
            else:
                yield conn
                return
    empty = db.make_engine("sqlite://")
    db.init_schema(empty)
    try:
        with db.read_only(empty) as conn:
            yield conn
    finally:
        empty.dispose()


def _account(plan: p.Plan, renderer: Renderer, notes: list[str]) -> DryRun:
    result = DryRun(plan.disposition, plan.reason, notes=notes + plan.warnings)
    ticket = plan.ticket
    if ticket is not None:
        result.department = ticket.department
        if ticket.id > 0:
            result.ticket = ticket.number
    for op in plan.operations:
        result.plan.append(describe(op))
        if isinstance(op, ops.OpenTicket):
            t = op.ticket
            result.department, result.category, result.kind = t.department, t.category, t.kind
            result.priority, result.assign, result.transferred_from = t.priority, t.assignee, op.transferred_from
        elif isinstance(op, ops.Send):
            rendered = renderer.render(op.notice.template, op.department.code, ticket=op.ticket,
                                       department=op.department, **op.context)
            token = f"[#{op.ticket.number}] " if op.ticket is not None else ""
            result.mail += [{"to": r.email, "template": op.notice.template, "subject": token + rendered.subject,
                             "body": rendered.body} for r in op.recipients]
    routing = plan.routing
    if isinstance(routing, Routing):
        result.rules = [{"rule": h.rule, "words": list(h.words)} for h in routing.hits]
        result.triage = routing.triage
        result.reading = routing.reading.as_dict() if routing.reading else None
    return result


def describe(op: ops.Operation) -> str:
    """One line per operation, as the dry run shows it."""
    if isinstance(op, ops.AddPerson):
        return f"add person {op.person.email}"
    if isinstance(op, ops.RenamePerson):
        return f"rename {op.person.email} to {op.name!r}"
    if isinstance(op, ops.OpenTicket):
        t = op.ticket
        return f"open a ticket in {t.department}" + (f", category {t.category}" if t.category else ", no category")
    if isinstance(op, ops.AddEntry):
        return f"add a {op.type} to {op.ticket.number}" + (" (unauthenticated)" if op.unauthenticated else "")
    if isinstance(op, ops.AddEvent):
        return f"event on {op.ticket.number}: {op.text}"
    if isinstance(op, ops.SetStatus):
        return f"{op.ticket.number}: status {op.ticket.status} -> {op.status}"
    if isinstance(op, ops.SetCategory):
        return f"{op.ticket.number}: category {op.category}"
    if isinstance(op, ops.SetFields):
        return f"{op.ticket.number}: " + ", ".join(f"{k} {v}" for k, v in op.fields)
    if isinstance(op, ops.RememberMessageId):
        return f"remember the Message-ID for {op.ticket.number}"
    if isinstance(op, ops.AddParticipants):
        return f"{op.ticket.number}: copy " + ", ".join(person.email for person in op.people)
    if isinstance(op, ops.RemoveParticipant):
        return f"{op.ticket.number}: no longer copy {op.person.email}"
    if isinstance(op, ops.Link):
        return f"link {op.a.number} and {op.b.number}"
    if isinstance(op, ops.Send):
        return f"send {op.notice.template} to " + ", ".join(r.email for r in op.recipients)
    if isinstance(op, ops.MarkBounced):
        return f"mark outgoing mail #{op.outbox_id} failed: {op.why}"
    if isinstance(op, ops.SetProfile):
        return f"profile of {op.person.email}: " + ", ".join(k for k, _ in op.fields)
    return type(op).__name__
