"""Walking a message's MIME tree: which parts are the text, which are attachments (with
decoded names, types, sizes and hashes), TNEF ``winmail.dat`` opened, HTML turned into
text, forwarded messages read for their text. parse.py owns the rest (headers, the
``Mail`` value) and is the only caller.
"""
from __future__ import annotations

import binascii
import email
import email.header
import email.policy
import email.utils
import mimetypes
import re
from email.message import Message

import html2text
import tnefparse

from maild.reading import charset
from maild.reading.mail import MAX_DEPTH, Attachment, _printable, decode_header


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
        self.first_forwarded: Message | None = None    # the first attached message (its From)
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
                if self.first_forwarded is None:
                    self.first_forwarded = inner
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
