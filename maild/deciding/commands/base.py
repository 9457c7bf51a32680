"""What every staff command is made of: the parsed line, the check's verdict (a ``Step``
or a ``Refusal``), and the ``Command`` class each command file fills in.

A command has its words in both languages (Russian first: that is how ``#помощь`` lists
them), a usage line, a one-line help text, and two methods: ``check`` — is this line
right, given the ticket as the lines above leave it? — and ``plan`` — what it does, said
to the planner (it writes nothing). The commander (commander.py) runs them: all lines
checked first, then planned only if none was refused.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from maild.acting import store
from maild.acting.search import Found
from maild.deciding.operations import AddEntry
from maild.deciding.organisation import Department, Organisation, Staff
from maild.reading.mail import Address, Mail
from maild.sending.render import Renderer
from maild.values import PersonRef, TicketRef

if TYPE_CHECKING:
    from maild.deciding.plan import Planner
    from maild.deciding.talk import Conversation
    from maild.routing.reader import Reader


@dataclass(frozen=True)
class CommandLine:
    line: str        # as written, for the receipt
    keyword: str     # canonical (``take``...), "" when the word is unknown
    args: str
    word: str        # the word as written


@dataclass(frozen=True)
class CommandMail:
    commands: tuple[CommandLine, ...]
    text: str        # what follows the command lines: a response, a note or a new ticket's body

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(c.line for c in self.commands)


@dataclass(frozen=True)
class Refusal:
    """Why a line is refused: a code the receipt template words, and its particulars."""
    code: str
    detail: str = ""


@dataclass(frozen=True)
class Step:
    """A command line checked against the organisation and the ticket: what to plan."""
    command: CommandLine
    staff: Staff | None = None              # assign
    department: Department | None = None    # transfer
    value: str = ""                         # priority, category, reason, canned name, scope, address
    at: datetime | None = None              # deadline
    person: PersonRef | None = None         # new
    ticket: TicketRef | None = None         # merge: the ticket merged into
    forwarded: bool = False                 # new: for the author of the forwarded mail


@dataclass
class Virtual:
    """The ticket as the lines above the current one leave it (for checking only)."""
    ticket: TicketRef | None
    department: Department | None
    status: str = ""
    participants: set[str] = field(default_factory=set)
    new: bool = False           # a #new above will have made the ticket
    transferred: bool = False
    merged_into: str = ""       # a #объединить above merged the ticket into this one


@dataclass
class Checking:
    """What a check may look at."""
    org: Organisation
    renderer: Renderer
    member: Staff
    block: CommandMail
    state: Virtual
    written_to: Department
    now: datetime | None = None         # the planner's: what "in 4 hours" counts from
    ticket_named: Callable[[str], TicketRef | None] | None = None   # a number as written -> its ticket
    forwarded: Callable[[], Address | None] | None = None   # the author of a forwarded message, read
    #                                                          only when #новая alone asks (reading/forwards.py)

    @property
    def home(self) -> Department:
        return self.org.department_of(self.member.department)

    @property
    def here(self) -> Department:
        """The department of the ticket the lines act on (Commander._check saw it exists)."""
        assert self.state.department is not None
        return self.state.department


@dataclass
class Outputs:
    """What the receipt shows besides each line's result."""
    help: bool = False                  # the list of commands (#помощь)
    queue: tuple | None = None          # (scope, rows, cut) of #список
    canned: dict | None = None          # name -> description of #шаблон alone
    found: tuple[str, Found] | None = None    # (the words asked, what #найти found)
    unsent: bool = False                # text or files that went to nobody


@dataclass
class Applying:
    """What planning a step may use and change: the ticket as the steps above leave it,
    and what the receipt is to show."""
    plan: Planner
    talk: Conversation
    org: Organisation
    renderer: Renderer
    member: Staff
    author: PersonRef
    mail: Mail
    block: CommandMail
    ticket: TicketRef | None
    table: tuple = ()
    reader: Reader | None = None
    outputs: Outputs = field(default_factory=Outputs)
    canned_bodies: list[str] = field(default_factory=list)
    status_step: Step | None = None     # a step whose mail to the requester carries the text
    merged_into: TicketRef | None = None    # a #объединить merged the ticket: the text goes there
    filed: bool = False                 # a #new made the ticket

    @property
    def on(self) -> TicketRef:
        """The ticket a step acts on: there is one (Commander._check refused the line otherwise)."""
        assert self.ticket is not None
        return self.ticket

    @property
    def department(self) -> Department:
        return self.org.department_of(self.on.department)

    def first_words(self) -> str:
        """The request as the requester wrote it (for staff who take a ticket over)."""
        if self.on.id > 0:
            return store.first_message(self.plan.conn, self.on.id)
        # A ticket this mail opens (#новая a line above): its first message is in the plan.
        return next((op.body or "" for op in self.plan.operations
                     if isinstance(op, AddEntry) and op.ticket.id == self.on.id and op.type == "message"), "")


class Command:
    """What every command has: its words in both languages (Russian first: that is how
    ``#помощь`` lists them), a usage line, a Russian help line, where ``#помощь`` lists it,
    and the check of its line."""
    key: ClassVar[str]                  # canonical, English: ``take``
    words: ClassVar[tuple[str, ...]]    # every word that says it, Russian first
    usage: ClassVar[str]                # the Russian form with its argument, for #помощь
    usage_en: ClassVar[str]
    help: ClassVar[str]                 # what it does, in Russian, for #помощь
    section: ClassVar[str] = "ticket"   # where #помощь lists it: ticket | new | anyone
    on_ticket: ClassVar[bool] = True    # acts on the ticket the mail is about

    def needs_ticket(self, args: str) -> bool:
        return self.on_ticket

    def check(self, c: CommandLine, k: Checking) -> Step | Refusal:
        return Step(c) if not c.args else Refusal("unexpected-argument", c.args)


class StaffCommand(Command, ABC):
    """A staff command: the commander checks every line, then plans each step."""

    @abstractmethod
    def plan(self, step: Step, a: Applying) -> None:
        """What the step does, said to the planner (nothing is written here)."""

    def speaks(self, step: Step) -> bool:
        """Whether the mail's text goes on to the ticket with it (#help and #list answer
        the sender only)."""
        return self.on_ticket
