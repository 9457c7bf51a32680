"""Who wrote the mail a forward carries (issue 17): ``#новая`` without an address and
``#от имени`` file the ticket for that person. A forward is either the message attached
(message/rfc822: its From, read by the MIME walker, ``Mail.forwarded_from``) or the text
below a client's forward line — Gmail's "Forwarded message", Outlook's "Original Message"
or its rule of underscores, Thunderbird's and Yandex's "Пересланное сообщение", Apple's
"Begin forwarded message:" — whose header block names the author ("From:", "От:", "От
кого:", Yandex's "02.12.2026, 09:14, Имя <адрес>:"); and Outlook's bare block of "From:"
followed by "Sent:". The first forward that names an author counts: a forward of a forward
is credited to the one who forwarded it last. What is found is a claim in text, not a
proof: the callers decide what it may do.

Mail text is anyone's: every line is cut to LINE_LIMIT before a pattern reads it, and a
value that no parser can read is no author, never an error.
"""
from __future__ import annotations

import re
from email.utils import parseaddr

from maild.reading.mail import Address, Mail

LINE_LIMIT = 400
HEADER_LINES = 8        # the author's line is in the block right below the forward line
_MARKER = re.compile(
    r"^\\?(?:-{2,} ?(?:forwarded message|original message|пересланное сообщение|пересылаемое сообщение"
    r"|перенаправленное сообщение|исходное сообщение|beginning of forwarded message"
    r"|начало пересылаемого сообщения|начало переадресованного сообщения) ?\\?-{2,}"
    r"|begin forwarded message:|начало переадресованного сообщения:|_{10,})$", re.I)
_FROM = re.compile(r"^\**(?:from|от кого|от|von|de)\**:\s?(.+)$", re.I)
_SENT = re.compile(r"^\**(?:sent|date|отправлено|дата)\**:", re.I)
_YANDEX = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{2,4},? \d{1,2}:\d{2},? (.+):$")
_ANGLE = re.compile(r"<([^<>\s]{1,320})>")
_MAILTO = re.compile(r"\[mailto:([^\]\s]{1,320})\]", re.I)
_PLAIN = re.compile(r"^[A-Za-z0-9._+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


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
    lines = [" ".join(line[:LINE_LIMIT].split()) for line in text.splitlines()]
    for i, line in enumerate(lines):
        if _MARKER.match(line):
            found = _block_author(lines[i + 1:i + 1 + HEADER_LINES])
        elif _FROM.match(line) and any(_SENT.match(x) for x in lines[i + 1:i + 4]):
            found = _block_author([line])           # Outlook's block without a line above it
        else:
            continue
        if found is not None:
            return found
    return None


def _block_author(block: list[str]) -> Address | None:
    for line in block:
        found = _FROM.match(line) or _YANDEX.match(line)
        if found:
            return _address(found.group(1))
    return None


def _address(value: str) -> Address | None:
    value = value.replace("*", " ").strip()[:LINE_LIMIT]
    for pattern in (_MAILTO, _ANGLE):        # Outlook's [mailto:a], everyone's <a>
        found = pattern.search(value)
        if found:
            name = " ".join(pattern.sub(" ", value).split()).strip('"\' ,')
            return _checked(found.group(1), name)
    try:
        name, address = parseaddr(value)
    except Exception:                       # a crafted header (nested comments): no author
        return None
    return _checked(address, name)


def _checked(address: str, name: str) -> Address | None:
    """Only a plain address a typed ``#новая адрес`` would take: no source routes (%), no
    quotes, no second @, no spaces."""
    address = address.strip().lower()
    return Address(address, name.strip()[:200]) if _PLAIN.match(address) and len(address) <= 320 else None


_PREFIX = re.compile(r"^\s*(?:(?:fwd?|fw|пересл|перес|переслано|re|ответ|отв)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def without_prefix(subject: str) -> str:
    """``Fwd: Re: Не печатает`` -> ``Не печатает`` (the forwarded mail's own subject)."""
    return _PREFIX.sub("", subject[:1000]).strip() or subject
