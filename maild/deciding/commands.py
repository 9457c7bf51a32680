"""Staff steer tickets by mail: keyword lines at the very top of the body.

    #take            #взять                     assign the ticket to me
    #assign WHO      #назначить                 to a colleague of my department (login or address)
    #transfer DEPT   #передать                  to the other department (code or short name)
    #note            #заметка                   the text below is an internal note
    #canned [NAME]   #шаблон                    send a canned answer; alone: list them
    #category NAME   #категория
    #priority P      #приоритет                 low|normal|high|urgent (низкий|обычный|высокий|срочный)
    #close [WHY]     #закрыть
    #reopen          #открыть
    #cc add|remove ADDRESS   #копия добавить|убрать
    #new ADDRESS     #новая                     file a ticket on an employee's behalf (phone)
    #list [mine|open|all]    #список
    #help            #помощь

Three stages, each its own function:

- ``read`` (pure): the command lines at the top of what the person wrote — quoted history
  and signatures are already gone (quotes.reply_text), so a quoted command is never read —
  and the text below them;
- ``Commander.resolve``: each line checked against the organisation and the ticket as the
  lines above it leave it, becoming a ``Step`` or a ``Refusal``;
- ``Commander.apply``: only when no line was refused (a command mail is all or nothing).

Every command mail gets a receipt: each line with done or the reason it was refused.
Who may command (staff, authenticated, own department) is checked here too; the proof
itself is auth.py's.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from email.utils import parseaddr

from maild.deciding import rules
from maild.acting import store
from maild.deciding.auth import AuthResult
from maild.deciding.conversation import Conversation
from maild.deciding.organisation import Department, Organisation, Staff
from maild.reading.textnorm import seen, visible
from maild.reading.parse import Mail
from maild.sending.render import Renderer
from maild.deciding.plan import Planner
from maild.values import Notice, PersonRef, Recipient, TicketRef

log = logging.getLogger("maild.commands")

# canonical keyword -> the words that say it
KEYWORDS = {
    "take": ("take", "взять"),
    "assign": ("assign", "назначить"),
    "transfer": ("transfer", "передать"),
    "note": ("note", "заметка"),
    "canned": ("canned", "шаблон"),
    "category": ("category", "категория"),
    "priority": ("priority", "приоритет"),
    "close": ("close", "закрыть"),
    "reopen": ("reopen", "открыть"),
    "cc": ("cc", "копия"),
    "new": ("new", "новая"),
    "list": ("list", "список"),
    "help": ("help", "помощь"),
}
_KEYWORD_OF = {word: key for key, words in KEYWORDS.items() for word in words}
PRIORITIES = {"low": "low", "низкий": "low", "normal": "normal", "обычный": "normal",
              "high": "high", "высокий": "high", "urgent": "urgent", "срочный": "urgent"}
CC_OPERATIONS = {"add": "add", "добавить": "add", "remove": "remove", "убрать": "remove", "удалить": "remove"}
LIST_SCOPES = {"": "open", "open": "open", "открытые": "open", "mine": "mine", "мои": "mine",
               "all": "all", "все": "all"}
# Commands that act on a ticket (all others work without one).
ON_TICKET = {"take", "assign", "transfer", "note", "category", "priority", "close", "reopen", "cc"}
STATUS_TEMPLATES = {"close": "closed", "reopen": "reopened", "transfer": "transferred"}
STAFF_RESOLUTION = "resolved"      # tickets.resolution of a ticket staff closed
LIST_LIMIT = 200

# ``#`` and a word at the start of a line; html2text may have escaped the ``#``. Read on the
# visible text (textnorm): a BOM or a zero-width space before it, a no-break space after it,
# "#заметка:" and "# заметка" are the same command line to the person who typed it.
_MAY_START = re.compile(r"\s*\\?#")
# What html2text makes of an HTML mail's command line: autolinked addresses, escapes.
_MD_LINK = re.compile(r"\[([^\]]*)\]\((?:mailto:)?[^)]*\)")
_MD_ESCAPE = re.compile(r"\\([\\_*#\[\]()`.+!-])")
# A first line that starts with "#" once invisible marks and markdown (html2text's list
# bullets, link brackets) are gone is meant as a command, readable or not: fail closed.
_COMMAND_LIKE = re.compile(r"^\\?#")
_MD_BULLET = re.compile(r"^[*+-][ \t]+(?=\\?#)")
_LINE = re.compile(r"^\\?#[ \t]*([^\W\d_][\w-]*)[ \t]*[:.,;]?(?:[ \t]+(.*))?$")


@dataclass(frozen=True)
class Command:
    line: str        # as written, for the receipt
    keyword: str     # canonical (``take``...), "" when the word is unknown
    args: str
    word: str        # the word as written


@dataclass(frozen=True)
class CommandMail:
    commands: tuple[Command, ...]
    text: str        # what follows the command lines: a response, a note or a new ticket's body

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(c.line for c in self.commands)


def may_start(text: str) -> bool:
    """A cheap first look (every message passes here): could the body start with a command?"""
    return _MAY_START.match(visible(text[:500])) is not None


def read(body: str) -> CommandMail | None:
    """The command lines at the top of ``body`` (blank lines between them allowed) and the
    text after them; None when the body does not start with ``#``. A first line that starts
    with ``#`` but is no readable command line is kept as an unknown command: the mail is
    then refused whole with a receipt, never sent on as an answer (confidentiality fails
    closed)."""
    lines = visible(body).splitlines()
    commands = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not commands:
            # The first line as the eye sees it: no zero-width marks, no fillers, no bullet.
            line = _MD_BULLET.sub("", _MD_LINK.sub(r"\1", seen(line).strip()))
        if line:
            found = _LINE.match(line)
            if found is None:
                if not commands and _COMMAND_LIKE.match(line):
                    commands.append(Command(line.lstrip("\\"), "", "", ""))
                    i += 1
                break
            word = found.group(1).lower()
            args = _MD_ESCAPE.sub(r"\1", _MD_LINK.sub(r"\1", found.group(2) or "")).strip()
            commands.append(Command(line.lstrip("\\"), _KEYWORD_OF.get(word, ""), args, word))
        i += 1
    if not commands:
        return None
    return CommandMail(tuple(commands), "\n".join(lines[i:]).strip("\n"))


def is_command_mail(block: CommandMail, member: Staff, ticket: TicketRef | None, written_to: Department,
                    customer: bool) -> bool:
    """Whether a staff member's mail that starts with ``#`` lines is a command mail.
    On their own department's ticket, or new mail to their own department: yes (an unknown
    word is refused). As the requester or a participant of a ticket (staff file tickets
    too) of the other department's ticket: never — it is their ordinary mail ("#принтер не
    печатает"). Writing to the other department otherwise: only when the first word is a
    command (which is then refused)."""
    own = ticket.department == member.department if ticket is not None else written_to.code == member.department
    if own:
        return True
    return not customer and bool(block.commands[0].keyword)


@dataclass(frozen=True)
class Refusal:
    """Why a line is refused: a code the receipt template words, and its particulars."""
    code: str
    detail: str = ""


@dataclass(frozen=True)
class Step:
    """A command resolved against the organisation and the ticket: what to apply."""
    command: Command
    staff: Staff | None = None              # assign
    department: Department | None = None    # transfer
    value: str = ""                         # priority, category, reason, canned name, scope, address
    person: PersonRef | None = None         # cc remove


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


@dataclass
class _Virtual:
    """The ticket as the lines above the current one leave it (for checking only)."""
    ticket: TicketRef | None
    department: Department | None
    status: str = ""
    participants: set[str] = field(default_factory=set)
    new: bool = False           # a #new above will have made the ticket
    transferred: bool = False


class Commander:
    def __init__(self, plan: Planner, org: Organisation, renderer: Renderer,
                 table: tuple[rules.Rule, ...] = (), reader=None, max_participants: int = 10):
        self.plan = plan
        self.org = org
        self.renderer = renderer
        self.table = table
        self.reader = reader
        self.talk = Conversation(plan, org, max_participants)

    # -- the whole mail -------------------------------------------------------------------
    def run(self, block: CommandMail, member: Staff, author: PersonRef, mail: Mail,
            ticket: TicketRef | None, written_to: Department, proof: AuthResult) -> Result:
        home = self.org.department(member.department)
        own = ticket if ticket is not None and ticket.department == member.department else None
        if not proof.ok:
            self.talk.refuse_unauthenticated(proof.how, own, home, mail, author, block.lines)
            return Result(False, f"command mail in the name of {member.email} not authenticated: {proof.how}", own)
        self.talk.copies_proven = True          # authenticated staff: its copies may join
        lines, steps = self.resolve(block, member, ticket, written_to)
        refused = [line for line in lines if line.refusal is not None]
        if refused:
            self._receipt(member, home, own, mail, lines, applied=False)
            why = "; ".join(f"{line.line!r}: {line.refusal.code}" for line in refused)
            return Result(False, f"commands from {member.login} refused ({proof.how}): {why}", own)
        ticket, outputs = self.apply(steps, block, member, author, mail, ticket)
        still_own = ticket if ticket is not None and ticket.department == member.department else None
        self._receipt(member, home, still_own, mail, lines, applied=True, **outputs)
        done = ", ".join(c.keyword for c in block.commands)
        return Result(True, f"commands from {member.login} applied ({proof.how}): {done}", ticket)

    # -- checking -------------------------------------------------------------------------
    def resolve(self, block: CommandMail, member: Staff, ticket: TicketRef | None,
                written_to: Department) -> tuple[list[ReceiptLine], list[Step]]:
        state = _Virtual(ticket, self.org.department(ticket.department) if ticket else None,
                         ticket.status if ticket else "",
                         {p.email for p in self.plan.participants(ticket)} if ticket else set())
        lines, steps = [], []
        foreign = ticket is not None and ticket.department != member.department
        for command in block.commands:
            if foreign:     # not even #help: the mail is about another department's ticket
                lines.append(ReceiptLine(command.line, Refusal("other-department", state.department.short
                                                               if state.department else ticket.department)))
                continue
            outcome = self._check(command, block, member, state, written_to)
            if isinstance(outcome, Refusal):
                lines.append(ReceiptLine(command.line, outcome))
            else:
                lines.append(ReceiptLine(command.line))
                steps.append(outcome)
        return lines, steps

    def _check(self, c: Command, block: CommandMail, member: Staff, state: _Virtual,
               written_to: Department) -> Step | Refusal:
        key, args = c.keyword, c.args
        if not key:
            return Refusal("unknown-keyword", c.word)
        home = self.org.department(member.department)
        if key == "help":
            return Step(c) if not args else Refusal("unexpected-argument", args)
        if key == "list":
            scope = LIST_SCOPES.get(args.lower())
            return Step(c, value=scope) if scope else Refusal("bad-scope", args)
        if key == "canned" and not args:
            return Step(c)
        if key == "new":
            if state.ticket is not None or state.new:
                return Refusal("new-with-ticket", state.ticket.number if state.ticket else "")
            if written_to.code != member.department:
                return Refusal("wrong-address", home.address)
            name, address = parseaddr(args)
            address = address.strip().lower()
            if not args or "@" not in address or not address.isascii() or any(c in args for c in ",;"):
                return Refusal("bad-address", args)
            if not self.org.is_corporate(address) or self.org.is_department_address(address):
                return Refusal("not-employee", address)
            state.new, state.department, state.status = True, home, "open"
            return Step(c, value=address, person=PersonRef(0, address, name))
        # The rest act on the ticket the mail is about.
        if state.ticket is None and not state.new:
            return Refusal("needs-ticket")
        if state.transferred:
            return Refusal("after-transfer", state.department.short)
        department = state.department
        if department is None or department.code != member.department:
            return Refusal("other-department", department.short if department else "")
        if key in ("take",) and args:
            return Refusal("unexpected-argument", args)
        if key == "take":
            return Step(c, staff=member)
        if key == "assign":
            if not args:
                return Refusal("missing-argument", "#assign логин или адрес")
            colleague = self._staff(args)
            if colleague is None:
                return Refusal("unknown-colleague", args)
            if colleague.department != department.code:
                return Refusal("colleague-elsewhere", f"{colleague.name}, {self.org.department(colleague.department).short}")
            return Step(c, staff=colleague)
        if key == "transfer":
            word, reason = (args.split(None, 1) + ["", ""])[:2]
            if not word:
                return Refusal("missing-argument", "#transfer OSA|DAB")
            target = self._department(word)
            if target is None:
                return Refusal("unknown-department", word)
            if target.code == department.code:
                return Refusal("same-department", target.short)
            state.transferred, state.department = True, target
            return Step(c, department=target, value=reason.strip())
        if key == "note":
            if state.new:
                return Refusal("note-with-new")     # that text is the new ticket's
            # ``#note text``: the text may start on the command's own line.
            return Step(c, value=args) if args or block.text.strip() else Refusal("empty-note")
        if key == "canned":
            name = args.lower()
            if name not in self.renderer.canned(department.code):
                return Refusal("unknown-canned", args)
            return Step(c, value=name)
        if key == "category":
            category = department.category(args) if args else None
            if category is None:
                return Refusal("unknown-category", args)
            return Step(c, value=category.name)
        if key == "priority":
            priority = PRIORITIES.get(args.lower())
            return Step(c, value=priority) if priority else Refusal("bad-priority", args)
        if key == "close":
            if state.status == "closed":
                return Refusal("already-closed")
            state.status = "closed"
            return Step(c, value=args)
        if key == "reopen":
            if state.status != "closed":
                return Refusal("not-closed")
            state.status = "open"
            return Step(c, value=args)
        # cc
        operation, address = (args.split(None, 1) + ["", ""])[:2]
        operation = CC_OPERATIONS.get(operation.lower(), "")
        address = parseaddr(address)[1].strip().lower()
        if not operation or "@" not in address:
            return Refusal("bad-cc", args)
        if operation == "add":
            if not self.org.is_corporate(address) or not address.isascii():
                return Refusal("not-employee", address)
            if self.org.is_department_address(address) or self.org.staff_by_email(address) is not None:
                return Refusal("cc-staff", address)
            state.participants.add(address)
            return Step(c, value="add:" + address)
        if address not in state.participants:
            return Refusal("not-participant", address)
        state.participants.discard(address)
        return Step(c, value="remove:" + address)

    def _staff(self, who: str) -> Staff | None:
        who = parseaddr(who)[1] or who
        who = who.strip().lower()
        for department in self.org.departments:
            for member in department.staff:
                if who in (member.login.lower(), member.email.lower()):
                    return member
        return None

    def _department(self, word: str) -> Department | None:
        word = word.strip().lower()
        return next((d for d in self.org.departments
                     if word in (d.code.lower(), d.short.lower(), d.address.lower())), None)

    # -- applying -------------------------------------------------------------------------
    def apply(self, steps: list[Step], block: CommandMail, member: Staff, author: PersonRef,
              mail: Mail, ticket: TicketRef | None) -> tuple[TicketRef | None, dict]:
        a = self.plan
        outputs: dict = {"help": False, "queue": None, "canned": None, "unsent": False}
        canned_bodies: list[str] = []
        status_step: Step | None = None
        note = any(s.command.keyword == "note" for s in steps)
        note_text = "\n".join(part for part in [s.value for s in steps if s.command.keyword == "note"]
                              + [block.text.strip()] if part)
        filed = False
        for step in steps:
            key = step.command.keyword
            department = self.org.department(ticket.department) if ticket else None
            if key == "help":
                outputs["help"] = True
            elif key == "list":
                rows = store.queue(a.conn, member.department,
                                   assignee=member.login if step.value == "mine" else None,
                                   closed_too=step.value == "all", limit=LIST_LIMIT)
                outputs["queue"] = (step.value, rows, len(rows) == LIST_LIMIT)
            elif key == "canned" and not step.value:
                outputs["canned"] = self.renderer.canned(member.department)
            elif key == "new":
                ticket = self._new(step, block, member, mail)
                filed = True
            elif key in ("take", "assign"):
                ticket = a.set_fields(ticket, assignee=step.staff.login)
                a.event(ticket, f"Назначена: {step.staff.name} ({step.command.line})", author)
                if step.staff.email.lower() != member.email.lower():
                    a.send(ticket, department, Notice("alert", "assigned", "auto-generated", True),
                            [Recipient(step.staff.email, step.staff.name)], mail,
                            by={"name": member.name}, staff={"name": step.staff.name},
                            body=self._first_words(ticket))
            elif key == "transfer":
                ticket = a.set_fields(ticket, department=step.department.code, assignee=None,
                                      transferred_from=department.code)
                a.event(ticket, f"Передана из {department.short} в {step.department.short}"
                                + (f": {step.value}" if step.value else ""), author)
                a.send(ticket, step.department, Notice("alert", "transfer_alert", "auto-generated", True),
                        self.talk.staff_for(ticket, step.department), mail,
                        by={"name": member.name, "department": department.short}, reason=step.value,
                        body=self._first_words(ticket))
                status_step = step
            elif key == "canned":
                canned_bodies.append(self.renderer.render_canned(
                    step.value, department.code, ticket=ticket, department=department,
                    staff={"name": member.name, "email": member.email},
                    requester=self._requester(ticket)))
            elif key == "category":
                category = department.category(step.value)
                ticket = a.set_category(ticket, category.name, category.kind)
                a.event(ticket, f"Категория: {category.name}", author)
            elif key == "priority":
                ticket = a.set_fields(ticket, priority=step.value)
                a.event(ticket, f"Приоритет: {step.value}", author)
            elif key == "close":
                ticket = a.set_status(ticket, "closed", resolution=STAFF_RESOLUTION)
                a.event(ticket, "Закрыта" + (f": {step.value}" if step.value else ""), author)
                status_step = step
            elif key == "reopen":
                ticket = a.set_status(ticket, "open")
                a.event(ticket, "Открыта снова" + (f": {step.value}" if step.value else ""), author)
                status_step = step
            elif key == "cc":
                operation, _, address = step.value.partition(":")
                if operation == "add":
                    # Capped like any copy, and the requester is told (conversation.add_participants).
                    self.talk.add_participants(ticket, [a.person(address)], author)
                else:       # looked up now: it may have been added by a line above
                    a.remove_participant(ticket, a.person_ref(address))
                    a.event(ticket, f"Из копии убран(а) {address}", author)
        speaks = any(s.command.keyword in ON_TICKET or s.command.keyword == "new"
                     or (s.command.keyword == "canned" and s.value) for s in steps)
        if not speaks:
            # #help, #list, #canned alone answer the sender only: their text goes to nobody.
            outputs["unsent"] = bool(block.text.strip() or mail.attachments)
        elif ticket is not None:
            # After #new the text is the ticket's own; a canned answer or #close still go out.
            text = "" if filed else (note_text if note else block.text.strip())
            self._text(ticket, text, member, author, mail, note, canned_bodies, status_step,
                       keep_mail=not filed)
        return ticket, outputs

    def _text(self, ticket: TicketRef, text: str, member: Staff, author: PersonRef, mail: Mail,
              note: bool, canned: list[str], status_step: Step | None,
              keep_mail: bool = True) -> None:
        """What the text below the commands becomes: an internal note (``#note``), or the
        department's response, sent with any canned answer and status change in one mail."""
        a = self.plan
        department = self.org.department(ticket.department)
        public = "\n\n".join(part for part in ([] if note else [text]) + canned if part.strip())
        # The mail's attachments go with what the staff member wrote: the note, or the response.
        theirs = mail.attachments if keep_mail else ()
        bare = replace(mail, attachments=())
        if note:
            a.add_entry(ticket, "note", mail if keep_mail else bare, author, body=text)
            # Notes are for colleagues: all of the department's staff but the author.
            a.send(ticket, department, Notice("alert", "note_alert", "auto-generated", True),
                    [Recipient(m.email, m.name) for m in department.staff
                     if m.email.lower() != member.email.lower()], mail,
                    author={"name": member.name, "email": member.email}, body=text, attachments=theirs)
        if public:
            with_files = not note and keep_mail
            a.add_entry(ticket, "response", mail if with_files else bare, author, of_this_mail=keep_mail,
                        body=public)
            if keep_mail:
                self.talk.participants_from_copies(ticket, mail, author)
        elif not note and keep_mail:
            if mail.attachments:        # kept with the ticket, shown to staff only
                a.add_entry(ticket, "note", mail, author, body="")
            else:
                a.remember_message_id(ticket, mail)
        public_files = theirs if public and not note else ()
        if status_step is not None and not a.notifications.allows(
                department.code, STATUS_TEMPLATES[status_step.command.keyword]):
            status_step = None      # status mails are off here: the text goes as a response
        if status_step is not None:
            key = status_step.command.keyword
            self.talk.tell_requester(ticket, department, mail, author, STATUS_TEMPLATES[key], kind="status",
                                     body=public, reason=status_step.value, attachments=public_files)
        elif public:
            if ticket.status not in ("answered", "closed"):
                ticket = a.set_status(ticket, "answered")
            self.talk.tell_requester(ticket, department, mail, author, "response", body=public,
                                     attachments=public_files)

    def _new(self, step: Step, block: CommandMail, member: Staff, mail: Mail) -> TicketRef:
        """A ticket filed on an employee's behalf: source ``phone``, who filed it recorded,
        the employee acknowledged as if they had written; subject and text from the mail."""
        a = self.plan
        department = self.org.department(member.department)
        # The name a staff member typed names a new person, never renames a known one.
        employee = a.person(step.value, step.person.name if step.person else "", rename=False)
        text = block.text.strip()
        as_request = replace(mail, text=f"{mail.subject}\n\n{text}", text_from_html=False, html="")
        routing = rules.route(as_request, (department.address,), employee.email, department, self.org, self.table,
                              self.reader)
        if routing.department.code != department.code:
            routing = None      # staff chose the department (the rules would transfer it)
        else:                   # the policy's auto-answers and closing are for mail, not calls
            routing = replace(routing, close=None, reply=None)
        ticket = a.open_ticket(department, mail.subject, employee, routing, source="phone", filed_by=member.login)
        a.add_entry(ticket, "message", mail, employee, touch=False, body=text)
        a.event(ticket, f"Принята по телефону: {member.name}")
        self.talk.notify_new(ticket, department, mail, employee, routing=routing, body=text, filed_by=member)
        return ticket

    def _first_words(self, ticket: TicketRef) -> str:
        return store.first_message(self.plan.conn, ticket.id) if ticket.id > 0 else ""

    def _requester(self, ticket: TicketRef) -> dict:
        person = self.plan.person_by_id(ticket.requester_id)
        return {"email": person.email if person else "", "name": person.name if person else ""}

    def _receipt(self, member: Staff, home: Department, ticket: TicketRef | None, mail: Mail,
                 lines: list[ReceiptLine], applied: bool, help: bool = False, queue=None,
                 canned: dict | None = None, unsent: bool = False) -> None:
        """The result mail to the staff member: each line done or refused, and what they asked for."""
        self.plan.send(ticket, home, Notice("receipt", "receipt", "auto-replied", ticket is not None),
                           [Recipient(member.email, member.name)], mail, staff={"name": member.name},
                           lines=lines, applied=applied, help=help, queue=queue, canned=canned, unsent=unsent,
                           subject=ticket.subject if ticket is not None else mail.subject)
