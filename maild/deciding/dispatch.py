"""The message's way: one ordered table of cases, read top to bottom; the first that takes
the message returns its plan. This is the decision — the worker writes what it returns,
``maild rules test`` and ``maild replay`` print it — so the two cannot drift apart.

    CASES                what it is                                    becomes
    duplicate            this Message-ID again from the same sender    a record, nothing else
    web_link             the web pages' job: mail a confirm/sign-in    the link mailed, no ticket
    report_on_ours       a robot's mail to our own mail's return path  the mail marked; an event
    own_address          mail in a helpdesk address's own name         a record, no answer
    outside              a sender outside the corporate domains        one explanation a day
    self_service         #история, #профиль, #найти, confirming        the answer, no ticket
    command              staff command lines at the top                all or none, a receipt
    robot                automatic mail naming no ticket of ours       a record, no answer
    conversation         a reply, a response, a robot on a ticket      an entry and the mail
    on_behalf            #от имени above a colleague's forwarded mail  a ticket for the colleague
    new_request          everything else                               a ticket (or held: budget)

A case reads the database (through the planner's connection) and never writes it.
Failure: a case raises only on a bug or a database error; the worker retries the message
and quarantines it after ``worker.max_attempts`` (``Unroutable`` is one such bug: no
department among the recipients, which intake refuses).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from maild.acting import store
from maild.deciding import auth, behalf, commands, conversation, rules, selfservice, talk, web_jobs
from maild.deciding.conversation import Effect
from maild.deciding.facts import Context, Facts, Message, facts
from maild.deciding.organisation import Department
from maild.deciding.plan import Plan, Planner
from maild.reading import forwards
from maild.reading.classify import Kind
from maild.sending import verp
from maild.values import Disposition, Notice, OutboxKind, Recipient


class Unroutable(Exception):
    """No department address among the recipients (the rules changed since intake)."""


Case = Callable[[Message, Facts, Context, Planner], "Plan | None"]


def decide(m: Message, c: Context, plan: Planner) -> Plan:
    f = facts(m, c, plan)
    for case in CASES:
        result = case(m, f, c, plan)
        if result is not None:
            if f.key != m.key:
                result.record_key = result.record_key or f.key
            return result
    raise AssertionError("new_request takes every message")     # the table ends with it


# -- the cases, in the table's order ---------------------------------------------------
def duplicate(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    if f.seen is None:
        return None
    reason = f"same Message-ID as inbound #{f.seen.id}"
    ticket = store.ticket_by_id(plan.conn, f.seen.ticket_id) if f.seen.ticket_id else None
    if f.seen.spool_id != m.spool_id and store.duplicate_of(plan.conn, f"duplicate:{m.spool_id}") is None:
        # A retried delivery, or the same mail sent to both addresses separately: a record
        # of its own (under a key of its own), like every message.
        return plan.finish(Disposition.DUPLICATE, reason, ticket, record_key=f"duplicate:{m.spool_id}")
    # This very file again, after a crash between the commit and the archiving: its record
    # (the original's, or its own duplicate record) is already there.
    return plan.finish(Disposition.DUPLICATE, reason, ticket, record=False)


def web_link(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """A link the web pages asked to mail (web_jobs): to the address typed on the form, and
    only to a corporate one that is nobody's helpdesk address (the form refused others; the
    rules may have changed since). The mail holds no text from the form: a stranger who types
    someone's address cannot make the helpdesk mail them words of his."""
    kind = web_jobs.kind_of(m.envelope, m.mail)
    if kind is None or not kind.is_job:
        return None
    address, path = f.sender.lower(), web_jobs.link_path(m.mail)
    if not path or not address or not c.org.is_corporate(address) or c.org.is_department_address(address):
        return plan.finish(Disposition.WEB_LINK_REFUSED, f"no {kind} link for {address or '<>'}: "
                           + ("not a corporate address" if path else "the job names no path on our pages"))
    department = f.written_to or c.org.departments[0]
    chosen = department.category(m.mail.header(web_jobs.CATEGORY_HEADER) or "")
    plan.send(None, department, Notice(OutboxKind.WEB_LINK, f"web_{kind.value.replace('-', '_')}", "auto-generated"),
              [Recipient(address, f.name)], None, link=c.settings.web_url + path, hours=c.settings.link_hours,
              category=chosen.name if chosen else "", asked_at=m.envelope.received)
    return plan.finish(Disposition.WEB_LINK_SENT, f"{kind} link mailed to {address}")


def report_on_ours(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """A bounce (or a robot's answer) sent to the return path of one of our mails."""
    if not m.verdict.automatic:
        return None
    message_id = verp.bounced(c.settings.secret, m.envelope.rcpt_to, c.settings.hostname)
    if message_id is None:
        return None
    row = store.outbox_by_message_id(plan.conn, message_id)
    ticket = store.ticket_by_id(plan.conn, row.ticket_id) if row is not None and row.ticket_id else None
    if row is None:
        return plan.finish(Disposition.BOUNCE_RECORDED, f"report on our mail <{message_id}>, no longer in the outbox")
    if m.verdict.kind is not Kind.BOUNCE:
        return plan.finish(Disposition.AUTO_REPLY_IGNORED,
                           f"automatic answer ({m.verdict.reason}) to our mail to {row.recipient}", ticket)
    status = verp.report_status(m.mail.report, m.mail.text, m.mail.subject)
    said = " ".join(x for x in (status.status, status.text) if x) or "no reason given"
    if status.delivered:
        return plan.finish(Disposition.BOUNCE_RECORDED, f"our mail to {row.recipient} delivered: {said}", ticket)
    if status.delayed:
        if ticket is not None:
            plan.event(ticket, f"Письмо для {row.recipient} задерживается: {said}")
        return plan.finish(Disposition.BOUNCE_RECORDED, f"delivery of our mail to {row.recipient} delayed: {said}",
                           ticket)
    plan.mark_bounced(row.id, f"bounced: {said}")
    if ticket is not None:
        plan.event(ticket, f"Письмо для {row.recipient} не доставлено: {said}")
    return plan.finish(Disposition.BOUNCE_RECORDED, f"our mail to {row.recipient} bounced: {said}", ticket)


def own_address(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """Mail in a department's own name (forged, or a misconfigured forward): a helpdesk
    address is never a requester, and nothing is sent to it (that is how loops start)."""
    if f.sender and c.org.is_department_address(f.sender) and not m.verdict.automatic:
        return plan.finish(Disposition.REFUSED_OWN_ADDRESS,
                           f"{f.sender} is a helpdesk address: recorded, no ticket, no answer")
    return None


def outside(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """A sender outside the corporate domains: no ticket; one explanation a day, never to
    automatic mail, and only when the envelope sender is that same address or the mail
    came through the company's own relay (``auth.trusted_networks``): otherwise the From
    names anyone at all, and answering it would make us a backscatter source."""
    org, sender = c.org, f.sender
    if not sender or org.is_corporate(sender) or (f.found and m.verdict.automatic):
        return None
    department = f.written_to or org.departments[0]
    reason = f"{sender} is outside the corporate domains ({', '.join(org.domains)})"
    own = m.envelope.mail_from.lower() == sender.lower() or auth.from_trusted_network(m.envelope, c.settings.auth)
    answered = (own and not m.verdict.automatic and sender.isascii() and not plan.pending_to(sender, "outside")
                and not store.noticed_since(plan.conn, sender.lower(), "outside", plan.now - timedelta(days=1)))
    if answered:
        plan.send(None, department, Notice(OutboxKind.OUTSIDE, "outside", "auto-replied"), [Recipient(sender.lower())],
                  m.mail, subject=m.mail.subject, domains=", ".join(org.domains))
    reason += "; answered" if answered else (
        "; not answered (automatic, or answered today)" if own
        else f"; not answered: the envelope sender {m.envelope.mail_from or '<>'} is another address, "
             "and the mail did not come through a trusted relay")
    return plan.finish(Disposition.REFUSED_DOMAIN, reason)


def _may_command(m: Message, f: Facts) -> bool:
    """Staff mail is always read for command lines, on the text the reader sees (quotes,
    signatures and invisible marks gone): a cheap look at the raw text could miss a
    "#заметка" below a quote and send it on as an answer."""
    return f.known is not None and not m.verdict.automatic and (
        selfservice.confirms(m.envelope.rcpt_to) or f.member is not None
        or commands.may_start(m.mail.text) or selfservice.asks_by_subject(m.mail.subject))


def self_service(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """An employee's history or profile: answered, no ticket touched."""
    if not _may_command(m, f):
        return None
    request: selfservice.Request | None
    if selfservice.confirms(m.envelope.rcpt_to):
        request = selfservice.Request("confirm")
    else:
        request = selfservice.read(m.mail.subject, m.written, {d.code for d in c.org.departments},
                                   f.found is not None, staff=f.member is not None)
    if request is None:
        return None
    author = f.sender_person(plan)       # _may_command: there is a sender
    department = f.written_to or c.org.departments[0]
    proof = auth.check(m.mail, m.envelope, author.email,
                       selfservice.PROFILE_SIGNATURE if request.kind == "confirm" else None,
                       c.settings.auth, c.settings.secret, mailbox_only=request.kind == "confirm")
    disposition, reason = selfservice.SelfService(plan).answer(request, author, department, m.mail, proof)
    return plan.finish(disposition, reason)


def command(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """A staff member's command mail: applied whole or not at all, with a receipt."""
    if f.member is None or not _may_command(m, f):
        return None
    block = commands.read(m.written)
    if block is None:
        return None
    member, ticket, known = f.member, (f.found.ticket if f.found else None), f.known
    assert known is not None                 # _may_command: there is a sender
    customer = ticket is not None and (ticket.requester_id == known.id or known.id in {
        person.id for person in plan.participants(ticket)})
    written_to = f.written_to or c.org.department_of(member.department)
    if not commands.is_command_mail(block, member, ticket, written_to, customer):
        return None
    author = f.sender_person(plan)
    proof = auth.check(m.mail, m.envelope, member.email, f.found.numbers if f.found else None,
                       c.settings.auth, c.settings.secret)
    result = commands.Commander(plan, c.org, c.renderer, c.table, c.reader, c.settings.max_participants).run(
        block, member, author, m.mail, ticket, written_to, proof)
    return plan.finish(Disposition.COMMAND_APPLIED if result.applied else Disposition.COMMAND_REFUSED,
                       result.reason, result.ticket)


def robot(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """A robot's mail that names no ticket of ours: recorded (and archived), never a
    ticket, never answered — that is how two robots never talk forever."""
    if f.found is not None or not m.verdict.automatic:
        return None
    disposition = Disposition.BOUNCE_RECORDED if m.verdict.kind is Kind.BOUNCE else Disposition.AUTO_REPLY_IGNORED
    return plan.finish(disposition, f"automatic mail ({m.verdict.reason}) naming no ticket: no ticket, no answer")


def _decision(m: Message, f: Facts, c: Context, plan: Planner) -> conversation.Decision:
    ticket = f.found.ticket if f.found else None
    role = proof = None
    if ticket is not None:
        participant_ids = {person.id for person in plan.participants(ticket)}
        role = conversation.role_of(c.org, ticket, f.known, participant_ids, f.member)
        if role is conversation.Role.STAFF and f.member is not None:     # STAFF: the mail speaks for one
            proof = auth.check(m.mail, m.envelope, f.member.email, f.found.numbers if f.found else ticket.number,
                               c.settings.auth, c.settings.secret)
    return conversation.decide(ticket, f.found.how if f.found else "", role, m.verdict, plan.now,
                               c.settings.reopen_days, proof)


def on_ticket(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """A reply, a staff response, a robot's answer or unproven staff mail on the ticket the
    mail names (a stranger's mail or a reply long after closing is a new request)."""
    if f.found is None:
        return None
    decision = _decision(m, f, c, plan)
    if decision.effect is Effect.NEW_LINKED:
        return None
    ticket = decision.ticket
    assert ticket is not None                # the mail names one (f.found)
    department = c.org.department(ticket.department)
    if department is None:
        raise Unroutable(f"{ticket.number} belongs to {ticket.department}, no longer in the rules")
    author = f.author(plan)
    disposition = decision.disposition
    if decision.effect is Effect.AUTOMATIC and m.verdict.kind is Kind.BOUNCE:
        disposition = Disposition.BOUNCE_RECORDED
    talk.Conversation(plan, c.org, c.settings.max_participants, _hints(c)).apply(
        decision, ticket, department, m.mail, author,
        copies_proven=decision.effect is Effect.RESPONSE or _copies_proven(m, f, c, ticket.number))
    return plan.finish(disposition, decision.reason, ticket)


def _hints(c: Context) -> talk.Hints:
    return lambda department: commands.alert_hints(c.org, department)


def _copies_proven(m: Message, f: Facts, c: Context, number: str) -> bool:
    """Only a mail that copies someone needs its sender proven (a forged Cc recruits nobody)."""
    mail = m.mail
    copies = bool(mail.cc) or len(mail.to) > 1
    return copies and f.known is not None and mail.sole_author and auth.check(
        mail, m.envelope, f.known.email, number, c.settings.auth, c.settings.secret).ok


def on_behalf(m: Message, f: Facts, c: Context, plan: Planner) -> Plan | None:
    """``#от имени`` (deciding/behalf.py): the forwarded mail's author is the requester, when
    the forwarder's mail is proven; else the forwarder's own request, saying why."""
    if f.found is not None or f.member is not None or not f.sender or m.verdict.automatic:
        return None
    if not behalf.asked(m.written):
        return None
    # The proof first: an unproven mail's text is not even read for an author.
    proof = auth.check(m.mail, m.envelope, f.sender, None, c.settings.auth, c.settings.secret)
    author = forwards.original_author(m.mail) if proof.ok else None
    why = (behalf.refusal(author, f.sender, c.org) if proof.ok
           else f"письмо отправителя не подтверждено ({proof.said or proof.how})")
    budget, since = c.settings.new_tickets_per_sender_hour, plan.now - timedelta(hours=1)
    forwarder_id = f.known.id if f.known is not None else 0
    if why is None and forwarder_id > 0 and (store.opened_by(plan.conn, forwarder_id, since)
                                             + store.joined_since(plan.conn, forwarder_id, since)) >= budget:
        # What the forwarder files for others counts in their hour's budget, as their own.
        return _over_budget(m, f, plan, f.written_to or c.org.departments[0], budget, since)
    if why is not None or author is None:
        result = new_request(m, f, c, plan)
        if result.ticket is not None:
            plan.event(result.ticket, f"«#от имени» не применена: {why}")
        return result
    department = f.written_to
    if department is None:
        raise Unroutable(f"no department address among {', '.join(m.envelope.rcpt_to)}")
    forwarded = replace(m.mail, text=forwards.body(m.mail), text_from_html=False, html="")
    routing = rules.route(forwarded, m.envelope.rcpt_to, author.email, department, c.org, c.table, c.reader)
    # The policy's own answers and closings are for the employee's mail, as with #новая.
    routing = replace(routing, close=None, reply=None)
    employee = plan.person(author.email, author.name, rename=False)
    forwarder = f.author(plan)
    ticket = plan.open_ticket(routing.department, forwards.without_prefix(m.mail.subject), employee, routing)
    plan.add_entry(ticket, "message", forwarded, employee, touch=False)
    if forwarder is not None:
        plan.add_participants(ticket, [forwarder])
    by = {"name": forwarder.name if forwarder else "", "email": f.sender}
    plan.event(ticket, f"Переслана от имени сотрудника: {by['name'] or by['email']}")
    talk.Conversation(plan, c.org, c.settings.max_participants, _hints(c)).notify_new(
        ticket, routing.department, forwarded, employee, routing=routing, forwarded_by=by)
    return plan.finish(Disposition.TICKET_CREATED, f"#от имени from {f.sender}: filed for {author.email}; "
                       + routing.explain(), ticket, routing=routing)


def new_request(m: Message, f: Facts, c: Context, plan: Planner) -> Plan:
    """A new ticket with the department written to and the admin's categories and rules
    (worked out beside the parsing, unless this is not the department it assumed); a
    sender over the hour's budget opens none."""
    org = c.org
    decision = _decision(m, f, c, plan)
    department = f.written_to or (org.department(decision.ticket.department) if decision.ticket else None)
    if department is None:
        raise Unroutable(f"no department address among {', '.join(m.envelope.rcpt_to)}")
    routing = m.routing or rules.route(m.mail, m.envelope.rcpt_to, f.sender or "", department, org, c.table,
                                       c.reader)
    department = routing.department
    budget = c.settings.new_tickets_per_sender_hour
    since = plan.now - timedelta(hours=1)
    if f.known is not None and f.known.id > 0 and store.opened_by(plan.conn, f.known.id, since) >= budget:
        return _over_budget(m, f, plan, department, budget, since)
    author = f.author(plan)
    source = "web" if web_jobs.kind_of(m.envelope, m.mail) is web_jobs.WebKind.REQUEST else "email"
    ticket = plan.open_ticket(department, m.mail.subject, author, routing, source=source)
    reason = decision.reason
    if routing.hits:
        reason += "; " + routing.explain()
    if routing.reading is not None:
        reason += "; " + routing.reading.summary()
    disposition: str = Disposition.TICKET_CREATED
    if routing.close:
        disposition = Disposition.closed(routing.close)
    talk.Conversation(plan, org, c.settings.max_participants, _hints(c)).apply(
        decision, ticket, department, m.mail, author, routing,
        copies_proven=_copies_proven(m, f, c, ticket.number))
    return plan.finish(disposition, reason, ticket, routing=routing)


def _over_budget(m: Message, f: Facts, plan: Planner, department: Department, budget: int, since) -> Plan:
    """The sender opened ``budget`` tickets within the hour: this mail is recorded and
    archived (``maild log``, ``maild replay``), opens no ticket and alerts nobody; the
    department hears once an hour per sender, so 200 mails make one alert, not 400."""
    author = f.known
    assert author is not None                # a sender's budget: there is a sender
    reason = (f"{author.email} opened {budget} tickets within the hour (loop_guard.new_tickets_per_sender_hour):"
              " recorded, no ticket, no alert")
    if store.held_from(plan.conn, m.envelope.mail_from, since) == 0:
        plan.send(None, department, Notice(OutboxKind.BUDGET, "sender_budget", "auto-generated"),
                  [Recipient(s.email, s.name) for s in department.staff], None,
                  sender={"email": author.email, "name": author.name}, budget=budget, subject=m.mail.subject)
    plan.warn(f"{m.spool_id}: {reason}")
    return plan.finish(Disposition.HELD_OVER_BUDGET, reason)


CASES: tuple[Case, ...] = (duplicate, web_link, report_on_ours, own_address, outside, self_service, command, robot,
                           on_ticket, on_behalf, new_request)
