"""The messages the web pages put into the spool (deciding/web_jobs.py says what each is).
They are real RFC 5322 messages made by the standard library, so the worker reads a request
typed on the form exactly as it reads mail: the same parser, rules, threading and archive.

Security: every header value is one line (the form's text cannot add a header), the From is
the address the link proved, and the envelope peer is ``web``, which only this process writes.
"""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP

from maild.deciding import web_jobs
from maild.deciding.web_jobs import WebKind
from maild.values import Envelope

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str, limit: int = 300) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


def _message(kind: WebKind, sender: str, to: str, subject: str, hostname: str) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    # "=?" begins a MIME encoded word: typed on the form it must stay text, not be decoded.
    msg["Subject"] = one_line(subject).replace("=?", "= ?")
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid("web", domain=hostname)
    msg[web_jobs.HEADER] = kind.value
    return msg


def _attach(msg: EmailMessage, uploads: tuple[Upload, ...]) -> None:
    for upload in uploads:
        main, _, sub = (upload.content_type or "application/octet-stream").partition("/")
        if not (main.isascii() and main.isalpha() and sub.isascii() and sub) or " " in sub:
            main, sub = "application", "octet-stream"
        msg.add_attachment(upload.data, maintype=main, subtype=sub, filename=one_line(upload.filename, 200) or "file")


def envelope(sender: str, to: str) -> Envelope:
    return Envelope(mail_from=sender, rcpt_to=(to,), peer=web_jobs.PEER)


def request(sender: str, to: str, subject: str, text: str, uploads: tuple[Upload, ...], hostname: str,
            category: str = "") -> bytes:
    """A request from the form: to the category's +tag address (the choice explicit, as by
    mail), the description as the text, the files as attachments."""
    msg = _message(WebKind.REQUEST, sender, to, subject, hostname)
    if category:
        msg[web_jobs.CATEGORY_HEADER] = one_line(category)
    msg.set_content(text.replace("\r\n", "\n"))
    _attach(msg, uploads)
    return msg.as_bytes()


def reply(sender: str, to: str, number: str, subject: str, text: str, hostname: str,
          uploads: tuple[Upload, ...] = ()) -> bytes:
    """A reply typed on "мои заявки": the ticket's token in the subject, as a reply by mail has."""
    msg = _message(WebKind.REPLY, sender, to, f"Re: [{number}] {subject}", hostname)
    msg.set_content(text.replace("\r\n", "\n"))
    _attach(msg, uploads)
    return msg.as_bytes()


def job(kind: WebKind, address: str, to: str, path: str, hostname: str, category: str = "") -> bytes:
    """Ask the worker to mail ``address`` a link to ``path`` on our pages."""
    assert kind.is_job
    msg = _message(kind, address, to, f"web {kind.value}", hostname)
    msg[web_jobs.LINK_HEADER] = path
    if category:
        msg[web_jobs.CATEGORY_HEADER] = one_line(category)
    msg.set_content("A job of maild web: mail the address its link.\n")
    return msg.as_bytes()


@dataclass(frozen=True)
class Summary:
    """What the confirmation page shows of a waiting request."""
    address: str
    subject: str
    category: str
    text: str
    files: tuple[str, ...]


def summary(raw: bytes) -> Summary:
    from maild.reading.parse import parse  # the worker's own reading of it
    mail = parse(raw)
    return Summary(mail.sender.email if mail.sender else "", mail.subject,
                   mail.header(web_jobs.CATEGORY_HEADER) or "", mail.text,
                   tuple(a.filename or "file" for a in mail.attachments))
