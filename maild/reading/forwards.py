"""Who wrote the mail a forward carries (issue 17): ``#новая`` without an address and
``#от имени`` file the ticket for that person. A forward is either the message attached
(message/rfc822: its From, read by the MIME walker, ``Mail.forwarded_from``) or the text
below a client's forward line — Gmail's "Forwarded message", Outlook's "Original Message"
or its rule of underscores, Thunderbird's and Yandex's "Пересланное сообщение", Apple's
"Begin forwarded message:" — whose header block names the author ("From:", "От:"). Only the
first forward counts: a forward of a forward is credited to the one who forwarded it last.
What is found is a claim in text, not a proof: the callers decide what it may do.
"""
from __future__ import annotations

import re
from email.utils import parseaddr

from maild.reading.mail import Address, Mail

_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|original message|пересланное сообщение|пересылаемое сообщение"
    r"|перенаправленное сообщение|исходное сообщение|beginning of forwarded message"
    r"|начало пересылаемого сообщения|начало переадресованного сообщения)\s*-{2,}"
    r"|begin forwarded message:|начало переадресованного сообщения:|_{10,})\s*$", re.I)
_FROM = re.compile(r"^\s*\**\s*(?:from|от|von|de)\s*\**\s*:\s*(.+)$", re.I)
_MAILTO = re.compile(r"\[mailto:([^\]\s]+)\]", re.I)
HEADER_LINES = 8        # the author's line is in the block right below the forward line


def original_author(mail: Mail) -> Address | None:
    """The author of the forwarded message, or None when the mail forwards none."""
    return mail.forwarded_from or inline_author(mail.text)


def body(mail: Mail) -> str:
    """What a forwarder sent below their command lines (``#новая``, ``#от имени``): their
    words and the forward as written — header block included, which a reply's reading would
    cut as a quote — and an attached message's text."""
    lines = mail.text.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    text = "\n".join(lines[start:]).strip()
    if mail.forwarded_text and mail.forwarded_text.strip() not in text:
        text = f"{text}\n\n{mail.forwarded_text.strip()}".strip()
    return text


def inline_author(text: str) -> Address | None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not _MARKER.match(line):
            continue
        for below in lines[i + 1:i + 1 + HEADER_LINES]:
            found = _FROM.match(below)
            if found:
                return _address(found.group(1))
        return None
    return None


_PREFIX = re.compile(r"^\s*(?:(?:fwd?|fw|пересл|перес|переслано|re|ответ|отв)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def without_prefix(subject: str) -> str:
    """``Fwd: Re: Не печатает`` -> ``Не печатает`` (the forwarded mail's own subject)."""
    return _PREFIX.sub("", subject).strip() or subject


def _address(value: str) -> Address | None:
    value = value.replace("*", " ").strip()
    mailto = _MAILTO.search(value)          # Outlook: "Иван Иванов [mailto:ivan@torex.ru]"
    if mailto:
        return Address(mailto.group(1).lower(), " ".join(_MAILTO.sub(" ", value).split()).strip('"'))
    name, address = parseaddr(value)
    address = address.strip().lower()
    if "@" not in address or any(c.isspace() for c in address) or len(address) > 320:
        return None
    return Address(address, name.strip())
