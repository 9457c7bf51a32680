"""``#новая`` / ``#new``: file a ticket on an employee's behalf — a phone call (``#новая
адрес``: source ``phone``) or a forwarded mail (``#новая`` alone above an employee's
forwarded message: the ticket is theirs, source ``email``). Who filed it is recorded, the
employee is acknowledged as if they had written; subject and text from the mail."""
from __future__ import annotations

from dataclasses import replace
from email.utils import parseaddr

from maild.deciding import rules
from maild.deciding.commands.base import Applying, Checking, CommandLine, Refusal, StaffCommand, Step
from maild.reading import forwards
from maild.values import PersonRef, Status


class New(StaffCommand):
    key = "new"
    words = ("новая", "new")
    usage, usage_en = "#новая [адрес]", "#new [address]"
    help = ("завести заявку за сотрудника: по звонку (с адресом) или пересланное письмо сотрудника "
            "(без адреса); тема и текст — из письма")
    section = "new"
    on_ticket = False

    def speaks(self, step: Step) -> bool:
        return True

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        state = k.state
        if state.ticket is not None or state.new:
            return Refusal("new-with-ticket", state.ticket.number if state.ticket else "")
        if k.written_to.code != k.member.department:
            return Refusal("wrong-address", k.home.address)
        forwarded = not c.args.strip()
        if forwarded:
            author = k.forwarded() if k.forwarded is not None else None
            if author is None:
                return Refusal("no-forwarded-author")
            if k.org.staff_by_email(author.email) is not None:
                return Refusal("not-employee", author.email)
            name, address = author.name, author.email.lower()
        else:
            name, address = parseaddr(c.args)
            address = address.strip().lower()
            if "@" not in address or not address.isascii() or any(ch in c.args for ch in ",;"):
                return Refusal("bad-address", c.args)
        if not k.org.is_corporate(address) or k.org.is_department_address(address):
            return Refusal("not-employee", address)
        state.new, state.department, state.status = True, k.home, Status.OPEN
        return Step(c, value=address, person=PersonRef(0, address, name), forwarded=forwarded)

    def plan(self, step: Step, a: Applying) -> None:
        plan, member, mail = a.plan, a.member, a.mail
        department = a.org.department_of(member.department)
        # The name a staff member typed names a new person, never renames a known one.
        employee = plan.person(step.value, step.person.name if step.person else "", rename=False)
        text = forwards.body(mail) if step.forwarded else a.block.text.strip()
        as_request = replace(mail, text=f"{mail.subject}\n\n{text}", text_from_html=False, html="")
        routing: rules.Routing | None = rules.route(as_request, (department.address,), employee.email, department,
                                                    a.org, a.table, a.reader)
        if routing is not None and routing.department.code != department.code:
            routing = None      # staff chose the department (the rules would transfer it)
        elif routing is not None:   # the policy's auto-answers and closing are for mail, not calls
            routing = replace(routing, close=None, reply=None)
        subject = forwards.without_prefix(mail.subject) if step.forwarded else mail.subject
        ticket = plan.open_ticket(department, subject, employee, routing, source="email" if step.forwarded else "phone",
                                  filed_by=member.login)
        plan.add_entry(ticket, "message", mail, employee, touch=False, body=text)
        plan.event(ticket, f"Переслал(а) письмо сотрудника: {member.name}" if step.forwarded
                   else f"Принята по телефону: {member.name}")
        a.talk.notify_new(ticket, department, mail, employee, routing=routing, body=text, filed_by=member,
                          forwarded_by={"name": member.name, "email": member.email} if step.forwarded else None)
        a.ticket, a.filed = ticket, True
