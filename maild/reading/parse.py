"""The only module that calls mail-parser: raw bytes in, one frozen ``Mail`` (mail.py) out;
the tree is walked by mime.py.

mail-parser builds the message tree (and reports defects); everything taken from it is
normalised here once: headers decoded from RFC 2047 in any charset (and raw 8-bit ones
guessed), addresses split into ``Address`` values, References as a tuple of ids, the text
body decoded by ``charset.decode`` (declared charset when it fits, detection otherwise),
HTML-only mail converted to text, attachments with decoded names, type, size and sha256.

If mail-parser itself gives up on a message, the stdlib parser (which it wraps) is used
directly and the failure is noted as a defect. Only when no text can be made at all does
``parse`` raise ``ParseError``, and the worker quarantines the message with the reason.
"""
from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import logging
import re
from datetime import UTC, datetime
from email.feedparser import BytesFeedParser
from email.message import Message

import mailparser

from maild.reading import charset
from maild.reading.mail import MSGID_RE, Address, Mail, ParseError, _deceptive, _printable, decode_header
from maild.reading.mime import _Walker, html_to_text

# mail-parser logs every part type it does not extract ("not handled") at WARNING: noise.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

_COMMENT = re.compile(r"\([^()]*\)")
_NAME_LIKE_ADDRESS = re.compile(r'^\s*([^<>",;:()]*@[^<>",;:()]*?)\s*<([^<>@\s]+@[^<>\s]+)>\s*$')


def _addresses(msg: Message, name: str) -> tuple[Address, ...]:
    # A raw 8-bit header comes as a Header object: decode it first (str() of it gives U+FFFD).
    values = [decode_header(v) if isinstance(v, email.header.Header) else str(v) for v in (msg.get_all(name) or [])]
    if not values:
        return ()
    if len(values) == 1:
        shown = _NAME_LIKE_ADDRESS.match(_COMMENT.sub(" ", values[0]))
        if shown:
            return (Address(email=shown.group(2).strip(), name=shown.group(1).strip()),)
    try:
        pairs = email.utils.getaddresses(values)
    except Exception:
        return ()
    out = []
    for display, addr in pairs:
        addr = charset.repair_header(addr).strip().strip("<>")
        if "@" not in addr or len(addr) > 320 or any(c.isspace() for c in addr):
            continue
        out.append(Address(email=addr, name=decode_header(display)))
    return tuple(out)


def _message_ids(value: str | None) -> tuple[str, ...]:
    value = _printable(str(value)) if value else value
    if not value:
        return ()
    ids = MSGID_RE.findall(str(value))
    if not ids and str(value).strip():
        ids = [str(value).split()[0].strip("<>")]
    return tuple(dict.fromkeys(ids))[:100]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


FEED_CHUNK = 64 * 1024
# The stdlib reads MIME parameters in time quadratic in their number (CPython gh-136063,
# in Python 3.11), several times a part: a 2 MB Content-Type would hold a parser process for
# an hour. No mail client writes one of even a few KB, so a longer one is refused.
MAX_PARAMETER_HEADER = 64 * 1024
_PARAMETER_HEADER = re.compile(rb"^content-(?:type|disposition)[ \t]*:", re.I | re.M)


def _check_parameter_headers(raw: bytes) -> None:
    for found in _PARAMETER_HEADER.finditer(raw):
        start = end = found.end()
        while True:                     # the header with its continuation lines
            newline = raw.find(b"\n", end)
            if newline < 0 or newline - start > MAX_PARAMETER_HEADER:
                newline = len(raw) if newline < 0 else newline
                break
            if raw[newline + 1:newline + 2] not in (b" ", b"\t"):
                break
            end = newline + 1
        if newline - start > MAX_PARAMETER_HEADER:
            name = found.group(0).decode("ascii", "replace").rstrip(": \t")
            raise ParseError(f"a {name} header of more than {MAX_PARAMETER_HEADER} bytes "
                             "(no mail client writes one; reading it would take hours)")


def _parse_tree(raw: bytes) -> tuple[Message, list[str]]:
    """The stdlib's tree, built from the bytes in chunks (``message_from_bytes`` first makes
    a str copy of the whole message, 4 bytes a character: 12 times a big attachment's size
    in memory at once), handed to mail-parser for its reading of the defects."""
    defects: list[str] = []
    try:
        feeder = BytesFeedParser(policy=email.policy.compat32)
        view = memoryview(raw)
        for start in range(0, len(raw), FEED_CHUNK):
            feeder.feed(bytes(view[start:start + FEED_CHUNK]))
        parsed = mailparser.MailParser(feeder.close())
        msg = parsed.message
        if parsed.has_defects:
            defects.extend(sorted(str(c) for c in parsed.defects_categories))
    except Exception as exc:  # mail-parser gives up on some torture tests
        defects.append(f"mail-parser failed ({type(exc).__name__}: {exc}); stdlib parser used")
        msg = None
    if msg is None:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return msg, defects


_BARE_CR = re.compile(rb"\r(?!\n)")


def _bare_cr_in_headers(raw: bytes) -> bytes:
    """In a header block with real line ends, a lone CR ends nothing: "Subject: x\\rBcc: y"
    is one header (with a space), never a second header smuggled in."""
    end = raw.find(b"\r\n\r\n")
    end = len(raw) if end < 0 else end
    lf = raw.find(b"\n\n")
    if 0 <= lf < end:
        end = lf
    head = raw[:end]
    return _BARE_CR.sub(b" ", head) + raw[end:] if b"\r" in head.replace(b"\r\n", b"") else raw


def parse(raw: bytes) -> Mail:
    # CR-only line endings (old Mac clients) hide every header from the parser.
    if b"\n" not in raw[:4096] and b"\r" in raw[:4096]:
        raw = raw.replace(b"\r", b"\r\n")
    else:
        raw = _bare_cr_in_headers(raw)
    _check_parameter_headers(raw)
    try:
        msg, defects = _parse_tree(raw)
        walker = _Walker()
        walker.walk(msg)
    except RecursionError:
        raise ParseError("MIME structure nested too deeply to read") from None
    except Exception as exc:
        raise ParseError(f"unreadable MIME structure: {type(exc).__name__}: {exc}") from None
    text = "\n\n".join(t.strip("\r\n") for t in walker.plain if t.strip())
    from_html = False
    html = ""
    if not text and walker.html:
        html = "\n".join(h for h in walker.html if h.strip())
        text = html_to_text(html)
        from_html = True
    if not text.strip() and walker.forwarded:      # a bare forward: the attached mail's text
        text = "\n\n".join(walker.forwarded)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    authors = _addresses(msg, "From")
    senders = authors or _addresses(msg, "Sender")
    headers = []
    for name, value in msg.items():
        headers.append((str(name).lower(), decode_header(value)))
    return Mail(
        message_id=(_message_ids(msg.get("Message-ID")) or (None,))[0],
        subject=decode_header(msg.get("Subject")),
        sender=senders[0] if senders else None,
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        reply_to=_addresses(msg, "Reply-To"),
        in_reply_to=_message_ids(msg.get("In-Reply-To")),
        references=_message_ids(" ".join(str(v) for v in msg.get_all("References") or [])),
        date=_date(msg.get("Date")),
        content_type=_printable(msg.get_content_type()),
        headers=tuple(headers),
        text=text,
        text_from_html=from_html,
        html=html,
        attachments=tuple(walker.attachments),
        defects=tuple(defects + walker.defects),
        sole_author=len(authors) == 1 and not _deceptive(authors[0].name, authors[0].email),
        report="\n".join(walker.reports),
        forwarded_from=next(iter(_addresses(walker.first_forwarded, "From")), None)
        if walker.first_forwarded is not None else None,
        forwarded_text=walker.forwarded[0] if walker.forwarded else "",
    )
