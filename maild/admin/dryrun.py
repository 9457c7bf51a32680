"""``maild rules test MAIL.eml``: what maild would do with a mail, and why. Touches nothing:
the database is only read (to see whether the mail answers a ticket), nothing is written,
no mail is sent; the mail that would be sent is rendered and shown."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy.engine import Engine

from maild.deciding import auth, commands, conversation, match, rules, selfservice
from maild.reading import quotes
from maild.acting import store
from maild.sending import verp
from maild.reading.classify import Kind
from maild.config import AuthConfig
from maild.reading.classify import classify
from maild.acting.db import is_unavailable
from maild.acting.models import now
from maild.deciding.organisation import Organisation
from maild.reading.parse import parse
from maild.sending.render import Renderer
from maild.routing.reader import Reader
from maild.values import Envelope
from maild.values import TicketRef
from maild import values


@dataclass
class DryRun:
    disposition: str              # new-ticket, reply-added, auto-reply-ignored, command-mail, refused, ...
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
        if self.triage and self.disposition == "new-ticket":
            lines.append("triage: open with no category, the staff alert lists the likeliest ones")
        if self.rules:
            lines.append("decided by:")
            lines += [f"  - {r['rule']}" + (f": {', '.join(r['words'])}" if r["words"] else "") for r in self.rules]
        for note in self.notes:
            lines.append(f"note: {note}")
        for m in self.mail:
            lines += ["", f"--- would send to {m['to']}: {m['subject']}", m["body"].rstrip()]
        return "\n".join(lines)


def explain(raw: bytes, envelope: Envelope, org: Organisation, rule_table: tuple[rules.Rule, ...],
            reader: Reader | None, renderer: Renderer, engine: Engine | None, auth_config: AuthConfig | None = None,
            secret: bytes = b"", reopen_days: int = 14, hostname: str = "") -> DryRun:
    mail = parse(raw)
    verdict = classify(mail, envelope)
    sender = mail.sender.email if mail.sender else envelope.mail_from
    if envelope.mail_from and not org.is_corporate(envelope.mail_from):
        return DryRun("refused", f"550 5.7.1 at MAIL FROM: {envelope.mail_from} is outside "
                                 f"the corporate domains ({', '.join(org.domains)})")
    if verdict.automatic and secret and verp.bounced(secret, envelope.rcpt_to, hostname):
        disposition = "bounce-recorded" if verdict.kind is Kind.BOUNCE else "auto-reply-ignored"
        return DryRun(disposition, f"automatic mail ({verdict.reason}) to the return path of one of our mails: "
                      "that mail is marked failed (a bounce) and its ticket gets an event")
    notes: list[str] = []
    found = decision = None
    if engine is not None:
        try:
            with engine.connect() as conn:
                found = match.find(conn, mail, {d.code for d in org.departments}, envelope.rcpt_to)
                if found is not None:
                    # What the worker would decide: the same policy, read-only.
                    # Someone not yet known is nobody's requester or participant, but may be staff.
                    author = (store.person_ref(conn, sender) or values.PersonRef(-1, sender.lower(), "")
                              if sender else None)
                    ids = {p.id for p in store.participants(conn, found.ticket.id)}
                    member = org.staff_by_email(sender) if sender and mail.sole_author else None
                    role = conversation.role_of(org, found.ticket, author, ids, member)
                    proof = None
                    if role is conversation.Role.STAFF and auth_config is not None:
                        proof = auth.check(mail, envelope, member.email, found.ticket.number, auth_config, secret)
                    decision = conversation.decide(found.ticket, found.how, role, verdict, now(),
                                                   reopen_days, proof)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            notes.append(f"database not reachable, replies to tickets not recognised: {exc}")
    if sender and not org.is_corporate(sender):
        return DryRun("refused-domain", f"{sender} is outside the corporate domains; "
                      + ("automatic mail: no answer" if verdict.automatic
                         else "answered with the 'outside' template, at most once a day"), notes=notes)
    member = org.staff_by_email(sender) if sender and mail.sole_author else None
    if selfservice.confirms(envelope.rcpt_to):
        return DryRun("profile-request", "a reply confirming a waiting profile change", notes=notes)
    if not verdict.automatic and (member is not None or commands.may_start(mail.text)
                                  or selfservice.asks_by_subject(mail.subject)):
        written = quotes.reply_text(mail.text, mail.html if mail.text_from_html else "", fallback=False)
        request = selfservice.read(mail.subject, written, {d.code for d in org.departments}, found is not None)
        if request is not None:
            return DryRun(f"{request.kind}-request", f"a {request.kind} request of {sender}: answered by mail, "
                          "no ticket (changes to a profile need proof or the owner's confirmation)")
        block = commands.read(written) if member is not None else None
        if block is not None:
            proof = auth.check(mail, envelope, member.email, None, auth_config, secret) if auth_config else None
            return DryRun("command-mail", f"commands from {member.login}: {', '.join(block.lines)}; applied "
                          "all or none, with a receipt, if the mail is authenticated "
                          f"({proof.how if proof else 'not checked'}); the dry run applies nothing")
    if decision is not None and decision.effect is not conversation.Effect.NEW_LINKED:
        disposition = decision.disposition
        if decision.effect is conversation.Effect.AUTOMATIC and verdict.kind is Kind.BOUNCE:
            disposition = "bounce-recorded"
        return DryRun(disposition, decision.reason, ticket=found.ticket.number,
                      department=found.ticket.department, notes=notes)
    if decision is not None:
        notes.append(f"names {found.ticket.number}, but: {decision.reason}; a new ticket linked to it")
    department = next(filter(None, map(org.department_for_address, envelope.rcpt_to)), None)
    if department is None:
        return DryRun("refused", f"550 5.1.1: no department address among {', '.join(envelope.rcpt_to)}")
    routing = rules.route(mail, envelope.rcpt_to, sender or "", department, org, rule_table, reader)
    result = DryRun(
        "new-ticket", "names no ticket of ours", department=routing.department.code,
        category=routing.category.name if routing.category else None, kind=routing.kind,
        priority=routing.priority, assign=routing.assign,
        transferred_from=routing.transferred_from.code if routing.transferred_from else None,
        rules=[{"rule": h.rule, "words": list(h.words)} for h in routing.hits], notes=notes,
        triage=routing.triage, reading=routing.reading.as_dict() if routing.reading else None)
    if verdict.automatic:
        result.disposition = "bounce-recorded" if verdict.kind is Kind.BOUNCE else "auto-reply-ignored"
        result.reason = f"automatic mail ({verdict.reason}) naming no ticket: no ticket, no answer"
        result.department = result.category = result.kind = None
        return result
    ticket = TicketRef(0, f"{routing.department.code}-NNNNNN", routing.department.code, mail.subject,
                       "closed" if routing.close else "open", now(), None, routing.assign, None,
                       result.category, routing.kind)
    requester = {**values.card(None), "email": sender or "", "name": mail.sender.name if mail.sender else ""}
    transfer = ({"from": routing.transferred_from, "reason": routing.transfer_reason}
                if routing.transferred_from else None)
    reason = routing.hits[-1].description if routing.hits else ""
    if routing.close:
        result.disposition = "closed-" + routing.close.replace("_", "-")
        outgoing = [(routing.close, sender, dict(requester=requester, reason=reason))]
    else:
        outgoing = [("ack", sender, dict(requester=requester, previous=None, transfer=transfer,
                                                  filed_by=None))]
        outgoing += [("new_ticket_alert", m.email, dict(requester=requester, body=mail.text,
                                                         attachments=mail.attachments, previous=None,
                                                         transfer=transfer, why=routing.explain(),
                                                         triage=routing.suggestions(),
                                                         warning=conversation.sender_warning(mail),
                                                         filed_by=None))
                     for m in routing.department.staff if not routing.assign or m.login == routing.assign]
        if routing.reply:
            outgoing.append((routing.reply, sender, dict(requester=requester, reason=reason)))
    for template, to, context in outgoing:
        rendered = renderer.render(template, routing.department.code, ticket=ticket,
                                   department=routing.department, **context)
        result.mail.append({"to": to, "template": template,
                            "subject": f"[#{ticket.number}] {rendered.subject}", "body": rendered.body})
    return result
