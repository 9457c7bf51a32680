"""The only module that reads MIME: raw bytes in, one frozen ``Mail`` out.

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

import binascii
import email
import email.header
import email.policy
import email.utils
import hashlib
import logging
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.feedparser import BytesFeedParser
from email.message import Message

import html2text
import mailparser
import tnefparse

from maild.reading import charset

# mail-parser logs every part type it does not extract ("not handled") at WARNING: noise.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

MAX_HEADER_TEXT = 4000      # a decoded subject or name longer than this is cut
MAX_DEPTH = 50              # MIME nesting beyond this is treated as an opaque attachment
MSGID_RE = re.compile(r"<([^<>\s]+)>")


class ParseError(Exception):
    """The message cannot be turned into text at all (the reason is the message)."""


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""

    def __str__(self) -> str:
        return email.utils.formataddr((self.name, self.email)) if self.name else self.email


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)   # b"" once stored (see without_data)
    content_id: str = ""
    inline: bool = False
    size: int = -1                    # of the data; filled in from it when not given
    sha256: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "size", len(self.data))
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    def without_data(self) -> Attachment:
        """The same attachment with its bytes dropped (they are in the blob store)."""
        return replace(self, data=b"")


@dataclass(frozen=True)
class Mail:
    message_id: str | None
    subject: str
    sender: Address | None                 # From (first address)
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    content_type: str
    headers: tuple[tuple[str, str], ...]   # (lowercased name, decoded value), in order
    text: str
    text_from_html: bool
    html: str                              # the HTML the text was made from ('' otherwise)
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    # Exactly one From address (not two, not a Sender standing in): only such mail may speak
    # with a staff member's authority.
    sole_author: bool = True
    report: str = ""        # the text of a delivery-status / disposition-notification part

    @property
    def deceptive_name(self) -> bool:
        """The sender's display name is another address ("ivan@torex.ru <evil@torex.ru>"):
        a warning sign — no authority, no participants, and the staff alert says so."""
        return self.sender is not None and _deceptive(self.sender.name, self.sender.email)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None


def decode_header(value: str | email.header.Header | None) -> str:
    """RFC 2047 words in any charset, unknown charsets and raw 8-bit bytes all made text."""
    if value is None:
        return ""
    if isinstance(value, str) and value.isascii() and "=?" not in value:
        text = " ".join(value.split())          # unfolded; the common case ends here
        if text.isprintable():
            return text[:MAX_HEADER_TEXT]
    try:
        if isinstance(value, email.header.Header):   # raw 8-bit header: (bytes, unknown-8bit)
            parts = email.header.decode_header(value)
        else:
            # Cut first: the stdlib's decoder is quadratic in the number of encoded words.
            parts = email.header.decode_header(re.sub(r"\r?\n[ \t]+", " ", str(value)[:MAX_HEADER_TEXT * 8]))
    except Exception:
        return charset.repair_header(str(value))[:MAX_HEADER_TEXT]
    out = []
    for chunk, cs in parts:
        if isinstance(chunk, str):
            out.append(charset.repair_header(chunk))
        elif cs is None:
            out.append(charset.decode(chunk))
        else:
            out.append(charset.decode(chunk, cs))
    decoded = "".join(out)
    decoded = "".join(ch if ch >= " " or ch == "\t" else " " for ch in decoded)
    return decoded.strip()[:MAX_HEADER_TEXT]


# "ivan@torex.ru <evil@torex.ru>": an address written as an unquoted display name. The old
# getaddresses reads two addresses (and maild filed it as ivan's); mail clients and the modern
# parser show one, evil's, named "ivan@torex.ru". Read it as they show it.
_COMMENT = re.compile(r"\([^()]*\)")
_ADDRESS_IN_NAME = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+\.[^\s<>\"'(),;:@]+")
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


def _deceptive(name: str, address: str) -> bool:
    """A display name that shows another address (also written with a full-width ＠, or beside
    the real one: "p.petrov@torex.ru via evil@torex.ru")."""
    shown = unicodedata.normalize("NFKC", name).lower()
    return any(found != address.lower() for found in _ADDRESS_IN_NAME.findall(shown))


def _printable(text: str) -> str:
    """No NUL or other control characters (PostgreSQL refuses NUL in text)."""
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f") if not text.isprintable() else text


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


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.unicode_snob = True
    try:
        return converter.handle(html).strip()
    except Exception:
        # html2text can fail on broken markup; crude tag stripping still gives the words.
        return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html)).strip()


REPORT_LIMIT = 4096


class _Walker:
    """Collects body text parts and attachments from a message tree. ``text_only``: the text
    of a forwarded message, nothing else — no attachment serialised or decoded, and nested
    forwards read in place, so a forward of a forward of ... costs its size once, not once
    per level."""

    def __init__(self, text_only: bool = False) -> None:
        self.text_only = text_only
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.defects: list[str] = []
        self.forwarded: list[str] = []     # the text of attached messages, for mail without its own
        self.reports: list[str] = []       # delivery-status parts, for bounce handling

    def walk(self, part: Message, depth: int = 0) -> None:
        ctype = part.get_content_type()
        if depth > MAX_DEPTH:
            if not self.text_only:
                self.defects.append("MIME nesting too deep; the rest kept as one attachment")
                self._attach(part, _serialise(part), "message/rfc822")
            return
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if self.text_only:
                if isinstance(inner, Message):
                    self.walk(inner, depth + 1)
                return
            data = _serialise(inner) if isinstance(inner, Message) else _payload(part)
            subject = decode_header(inner.get("Subject")) if isinstance(inner, Message) else ""
            self._attach(part, data, ctype, default_name=(subject or "message") + ".eml")
            if isinstance(inner, Message):
                self._forwarded_text(inner, subject, depth)
            return
        if part.is_multipart():
            children: object = part.get_payload()      # a list of parts, if well-formed
            if ctype.startswith("message/"):   # delivery-status and the like: keep whole
                if self.text_only:
                    return
                data = _serialise(part)
                self._attach(part, data, ctype)
                if len(self.reports) < 4:
                    self.reports.append(data[:REPORT_LIMIT].decode("utf-8", "replace").replace("\x00", ""))
                return
            for child in children if isinstance(children, list) else []:
                self.walk(child, depth + 1)
            return
        filename = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
            text = charset.decode(_payload(part), part.get_content_charset())
            if ctype == "text/plain" and str(part.get_param("format", "")).lower() == "flowed":
                text = _unflow(text, str(part.get_param("delsp", "")).lower() == "yes")
            (self.plain if ctype == "text/plain" else self.html).append(text)
            return
        if self.text_only:
            return
        data = _payload(part)
        if (ctype == "application/ms-tnef" or filename.lower() == "winmail.dat") and self._unpack_tnef(data):
            return
        self._attach(part, data, ctype, filename=filename)

    def _forwarded_text(self, inner: Message, subject: str, depth: int) -> None:
        sub = _Walker(text_only=True)
        sub.walk(inner, depth + 1)
        text = "\n\n".join(t.strip() for t in sub.plain if t.strip())
        if not text and sub.html:
            text = html_to_text("\n".join(sub.html))
        if text.strip():
            self.forwarded.append(f"-------- Пересланное сообщение --------\n"
                                  f"От: {decode_header(inner.get('From'))}\n"
                                  f"Дата: {decode_header(inner.get('Date'))}\nТема: {subject}\n\n"
                                  f"{text.strip()}")

    def _unpack_tnef(self, data: bytes) -> bool:
        """Outlook's winmail.dat: keep what it carries (files, and its text if the mail has
        none) instead of the container. False when it cannot be read: kept as it is."""
        try:
            tnef = tnefparse.TNEF(data)
        except Exception as exc:
            self.defects.append(f"winmail.dat not readable ({type(exc).__name__}); kept as is")
            return False
        for item in tnef.attachments:
            name = item.long_filename() or item.name or "attachment"
            if isinstance(name, bytes):
                name = charset.decode(name)
            payload = item.data if isinstance(item.data, bytes) else bytes(item.data or b"")
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self.attachments.append(Attachment(filename=_safe_name(decode_header(name.strip("\x00"))),
                                               content_type=mime, data=payload))
        body = getattr(tnef, "body", None)
        if body:
            self.plain.append(body if isinstance(body, str) else charset.decode(body))
        elif getattr(tnef, "htmlbody", None):
            html = tnef.htmlbody
            self.html.append(html if isinstance(html, str) else charset.decode(html))
        return True

    def _attach(self, part: Message, data: bytes, ctype: str, filename: str = "",
                default_name: str = "") -> None:
        cid = _printable(str(part.get("Content-ID", "") or "")).strip().strip("<>")
        if not filename:
            filename = default_name or _default_name(len(self.attachments) + 1, ctype)
        self.attachments.append(Attachment(
            filename=_safe_name(filename), content_type=_printable(ctype), data=data, content_id=cid,
            inline=(part.get_content_disposition() or "").lower() == "inline" or bool(cid)))


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676: join soft-broken lines (those ending in a space) of format=flowed text."""
    out: list[str] = []
    for line in text.splitlines():
        if line != "-- " and line.startswith(" "):
            line = line[1:]   # space-stuffing
        if out and out[-1].endswith(" ") and out[-1] != "-- " and not line.startswith(">"):
            out[-1] = (out[-1][:-1] if delsp else out[-1]) + line
        else:
            out.append(line)
    return "\n".join(out)


def _payload(part: Message) -> bytes:
    data: object = None     # get_payload may give a str or a Message too (kept apart below)
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        # binascii straight from the stored text: get_payload(decode=True) holds several
        # copies of a big attachment at once.
        encoded = part.get_payload()
        if isinstance(encoded, str) and encoded.isascii():
            try:
                data = binascii.a2b_base64(encoded)
            except (binascii.Error, ValueError):
                data = None
    try:
        if data is None:
            data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _serialise(part: Message) -> bytes:
    try:
        return part.as_bytes(policy=email.policy.compat32)
    except Exception:
        return part.as_string().encode("utf-8", "surrogateescape")


def _filename(part: Message) -> str:
    raw_headers = [(h, part.get(h)) for h in ("Content-Disposition", "Content-Type")]
    if any(isinstance(v, email.header.Header) for _, v in raw_headers):
        # Raw 8-bit parameters: the stdlib would turn every byte into U+FFFD; decode first.
        part = Message()
        for header, value in raw_headers:
            if value is not None:
                part[header] = decode_header(value)
    try:
        name: object = part.get_filename() or part.get_param("name") or ""
    except Exception:
        return ""
    if isinstance(name, tuple):   # undecodable RFC 2231 value: (charset, lang, text)
        name = email.utils.collapse_rfc2231_value(name)
    return decode_header(str(name))


_EXT = {"text/plain": "txt", "text/html": "html", "image/png": "png", "image/jpeg": "jpg",
        "image/gif": "gif", "application/pdf": "pdf", "text/calendar": "ics",
        "message/delivery-status": "txt", "text/rfc822-headers": "txt"}


def _default_name(n: int, ctype: str) -> str:
    return f"part-{n}.{_EXT.get(ctype, 'bin')}"


def _safe_name(name: str) -> str:
    """A display name only (files are stored by hash), but never a path or control chars."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip().lstrip(".")
    return name[:255] or "attachment"


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
    )
