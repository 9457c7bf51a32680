"""``#от имени`` / ``#on behalf`` (issue 17): an employee — a manager, a colleague — forwards
someone's mail to a department with this line at the top, and the ticket is filed for the
person who wrote the forwarded mail, who gets the acknowledgement; the forwarder joins the
ticket as a participant. The forwarded From is a claim in text, so it counts only when the
forwarder's own mail is proven (auth.check, as staff mail is); otherwise — or when no author
is found — the mail is the forwarder's own request, and the ticket says why (never dropped).
"""
from __future__ import annotations

import re

from maild.deciding.organisation import Organisation
from maild.reading.mail import Address

_LINE = re.compile(r"^# ?(?:от имени|on behalf) ?[.:]?$", re.I)


def asked(written: str) -> bool:
    """The mail asks for #от имени: its first line that is not blank is the line."""
    first = next((line for line in written.splitlines() if line.strip()), "")
    return bool(_LINE.match(" ".join(first[:100].split())))      # anyone's text: cut before reading


def refusal(author: Address | None, sender: str, org: Organisation) -> str | None:
    """Why the forwarded author cannot be the requester (None: they can)."""
    if author is None:
        return "в письме не найдено пересланное письмо с автором"
    address = author.email.lower()
    if not org.is_corporate(address) or org.is_department_address(address):
        return f"автор пересланного письма {address} — не сотрудник компании"
    if org.staff_by_email(address) is not None:
        return f"автор пересланного письма {address} — сотрудник отдела: он заводит заявки сам (#новая)"
    if _base(address) == _base(sender):
        return "автор пересланного письма — сам отправитель"
    return None


def _base(address: str) -> str:
    """``m.orlova+x@torex.ru`` is ``m.orlova@torex.ru``."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"
