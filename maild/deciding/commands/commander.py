"""A staff member's command mail, whole: every line checked first (``resolve``: each
becomes a ``Step`` or a ``Refusal``, against the ticket as the lines above it leave it),
then — only if no line was refused, a command mail is all or nothing — each step
planned (``apply``), and the text below the commands planned as a note or the
department's response. Every command mail gets a receipt: each line with done or the
reason it was refused. Who may command (staff, authenticated, own department) is checked
here too; the proof itself is auth.py's.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from maild.acting import store
from maild.deciding import match
from maild.deciding.auth import AuthResult
from maild.deciding.commands.base import Applying, Checking, CommandLine, CommandMail, Outputs, Refusal, Step, Virtual
from maild.deciding.commands.registry import STAFF, alert_hints, help_rows
from maild.deciding.organisation import Department, Organisation, Staff
from maild.deciding.plan import Planner
from maild.deciding.talk import Conversation
from maild.reading import forwards
from maild.reading.mail import Address, Mail
from maild.sending.render import Renderer
from maild.values import Notice, OutboxKind, PersonRef, Recipient, Status, TicketRef

STATUS_TEMPLATES = {"close": "closed", "reopen": "reopened", "transfer": "transferred", "merge": "merged"}


@dataclass(frozen=True)
class ReceiptLine:
    line: str
    refusal: Refusal | None = None


@dataclass
class Result:
    """What a command mail came to, for the inbound record."""
    applied: bool
    reason: str
    ticket: TicketRef | None = None


class Commander:
    def __init__(self, plan: Planner, org: Organisation, renderer: Renderer,
                 table: tuple = (), reader=None, max_participants: int = 10):
        self.plan = plan
        self.org = org
        self.renderer = renderer
        self.table = table
        self.reader = reader
        self.talk = Conversation(plan, org, max_participants, lambda department: alert_hints(org, department))

    def run(self, block: CommandMail, member: Staff, author: PersonRef, mail: Mail,
            ticket: TicketRef | None, written_to: Department, proof: AuthResult) -> Result:
        home = self.org.department_of(member.department)
        own = ticket if ticket is not None and ticket.department == member.department else None
        if not proof.ok:
            self.talk.refuse_unauthenticated(proof.how, own, home, mail, author, block.lines, said=proof.said)
            return Result(False, f"command mail in the name of {member.email} not authenticated: {proof.how}", own)
        self.talk.copies_proven = True          # authenticated staff: its copies may join
        lines, steps = self.resolve(block, member, ticket, written_to, lambda: forwards.original_author(mail))
        refused = [line for line in lines if line.refusal is not None]
        if refused:
            self._receipt(member, home, own, mail, lines, applied=False)
            why = "; ".join(f"{line.line!r}: {line.refusal.code}" for line in refused if line.refusal)
            return Result(False, f"commands from {member.login} refused ({proof.how}): {why}", own)
        ticket, outputs = self.apply(steps, block, member, author, mail, ticket)
        still_own = ticket if ticket is not None and ticket.department == member.department else None
        self._receipt(member, home, still_own, mail, lines, applied=True, outputs=outputs)
        done = ", ".join(c.keyword for c in block.commands)
        return Result(True, f"commands from {member.login} applied ({proof.how}): {done}", ticket)

    # -- checking -------------------------------------------------------------------------
    def resolve(self, block: CommandMail, member: Staff, ticket: TicketRef | None,
                written_to: Department, forwarded: Callable[[], Address | None] | None = None
                ) -> tuple[list[ReceiptLine], list[Step]]:
        state = Virtual(ticket, self.org.department(ticket.department) if ticket else None,
                        ticket.status if ticket else "",
                        {p.email for p in self.plan.participants(ticket)} if ticket else set())
        checking = Checking(self.org, self.renderer, member, block, state, written_to, self.plan.now,
                            self._ticket_named, forwarded)
        lines, steps = [], []
        foreign = ticket is not None and ticket.department != member.department
        for command in block.commands:
            if foreign:     # not even #help: the mail is about another department's ticket
                where = state.department.short if state.department else ticket.department if ticket else ""
                lines.append(ReceiptLine(command.line, Refusal("other-department", where)))
                continue
            outcome = self._check(command, checking)
            lines.append(ReceiptLine(command.line, outcome if isinstance(outcome, Refusal) else None))
            if isinstance(outcome, Step):
                steps.append(outcome)
        return lines, steps

    def _check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        command = STAFF.get(c.keyword)
        if command is None:         # unknown, or self-service (#история is no staff command line)
            return Refusal("unknown-keyword", c.word)
        if command.needs_ticket(c.args):
            # The rest act on the ticket the mail is about.
            state = k.state
            if state.ticket is None and not state.new:
                return Refusal("needs-ticket")
            if state.transferred:
                return Refusal("after-transfer", k.here.short)
            if state.merged_into:
                return Refusal("after-merge", state.merged_into)
            if state.department is None or state.department.code != k.member.department:
                return Refusal("other-department", state.department.short if state.department else "")
        return command.check(c, k)

    def _ticket_named(self, text: str) -> TicketRef | None:
        """The ticket a command names (``OSA-123``, ``#OSA-000123``), merges followed."""
        number = match.parse_number(text, {d.code for d in self.org.departments})
        found = store.ticket_by_number(self.plan.conn, number) if number else None
        return store.surviving(self.plan.conn, found) if found else None

    # -- planning -------------------------------------------------------------------------
    def apply(self, steps: list[Step], block: CommandMail, member: Staff, author: PersonRef,
              mail: Mail, ticket: TicketRef | None) -> tuple[TicketRef | None, Outputs]:
        a = Applying(self.plan, self.talk, self.org, self.renderer, member, author, mail, block, ticket,
                     self.table, self.reader)
        for step in steps:
            STAFF[step.command.keyword].plan(step, a)
        note = any(s.command.keyword == "note" for s in steps)
        note_text = "\n".join(part for part in [s.value for s in steps if s.command.keyword == "note"]
                              + [block.text.strip()] if part)
        if not any(STAFF[s.command.keyword].speaks(s) for s in steps):
            # #help, #list, #canned alone answer the sender only: their text goes to nobody.
            a.outputs.unsent = bool(block.text.strip() or mail.attachments)
        elif a.ticket is not None:
            # After #new the text is the ticket's own; a canned answer or #close still go out.
            text = "" if a.filed else (note_text if note else block.text.strip())
            self._text(a, text, note)
        return a.ticket, a.outputs

    def _text(self, a: Applying, text: str, note: bool) -> None:
        """What the text below the commands becomes: an internal note (``#note``), or the
        department's response, sent with any canned answer and status change in one mail."""
        plan, ticket, mail, member, author = self.plan, a.on, a.mail, a.member, a.author
        # After #объединить the words belong with the letters, on the surviving ticket; the
        # merged ticket's requester still gets them in the one "merged" mail.
        on = a.merged_into or ticket
        keep_mail = not a.filed
        department = a.department
        public = "\n\n".join(part for part in ([] if note else [text]) + a.canned_bodies if part.strip())
        # The mail's attachments go with what the staff member wrote: the note, or the response.
        theirs = mail.attachments if keep_mail else ()
        bare = replace(mail, attachments=())
        if note:
            plan.add_entry(on, "note", mail if keep_mail else bare, author, body=text)
            # Notes are for colleagues: all of the department's staff but the author.
            plan.send(on, department, Notice(OutboxKind.ALERT, "note_alert", "auto-generated", True),
                      [Recipient(m.email, m.name) for m in department.staff
                       if m.email.lower() != member.email.lower()], mail,
                      author={"name": member.name, "email": member.email}, body=text, attachments=theirs)
        if public:
            with_files = not note and keep_mail
            plan.add_entry(on, "response", mail if with_files else bare, author, of_this_mail=keep_mail,
                           body=public)
            if keep_mail:
                self.talk.participants_from_copies(on, mail, author)
        elif not note and keep_mail:
            if mail.attachments:        # kept with the ticket, shown to staff only
                plan.add_entry(on, "note", mail, author, body="")
            else:
                plan.remember_message_id(on, mail)
        public_files = theirs if public and not note else ()
        status_step = a.status_step
        if status_step is not None and not plan.notifications.allows(
                department.code, STATUS_TEMPLATES[status_step.command.keyword]):
            status_step = None      # status mails are off here: the text goes as a response
        if status_step is not None:
            key = status_step.command.keyword
            self.talk.tell_requester(ticket, department, mail, author, STATUS_TEMPLATES[key], kind="status",
                                     body=public, reason=status_step.value, attachments=public_files)
        elif public:
            if ticket.status not in (Status.ANSWERED, Status.CLOSED):
                ticket = plan.set_status(ticket, Status.ANSWERED)
            self.talk.tell_requester(ticket, department, mail, author, "response", body=public,
                                     attachments=public_files)

    def _receipt(self, member: Staff, home: Department, ticket: TicketRef | None, mail: Mail,
                 lines: list[ReceiptLine], applied: bool, outputs: Outputs | None = None) -> None:
        """The result mail to the staff member: each line done or refused, and what they asked for."""
        o = outputs or Outputs()
        self.plan.send(ticket, home, Notice(OutboxKind.RECEIPT, "receipt", "auto-replied", ticket is not None),
                       [Recipient(member.email, member.name)], mail, staff={"name": member.name},
                       lines=lines, applied=applied, help=o.help, queue=o.queue, canned=o.canned,
                       unsent=o.unsent, commands=help_rows() if o.help else [],
                       found=o.found[1] if o.found else None, found_asked=o.found[0] if o.found else "",
                       subject=ticket.subject if ticket is not None else mail.subject)
