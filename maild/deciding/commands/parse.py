"""The one parser of command lines, for staff commands and self-service alike: the ``#``
lines at the very top of what the person wrote — quoted history and signatures are
already gone (quotes.reply_text), so a quoted command is never read — and the text
below them."""
from __future__ import annotations

import re

from maild.deciding.commands.base import CommandLine, CommandMail
from maild.deciding.commands.registry import BY_WORD
from maild.deciding.organisation import Department, Staff
from maild.reading.textnorm import seen, visible
from maild.values import TicketRef

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
    commands: list[CommandLine] = []
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
                    commands.append(CommandLine(line.lstrip("\\"), "", "", ""))
                    i += 1
                break
            word = found.group(1).lower()
            args = _MD_ESCAPE.sub(r"\1", _MD_LINK.sub(r"\1", found.group(2) or "")).strip()
            commands.append(CommandLine(line.lstrip("\\"), BY_WORD.get(word, ""), args, word))
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
