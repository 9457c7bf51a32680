"""What the web pages put into the spool, as the worker reads it.

``maild web`` never writes the database: it hands everything to the worker through the
spool, as real messages with the envelope peer ``web``. SMTP cannot make that peer (there it
is the client's address) and neither can ``maild inject`` (``inject``), so the header below
is believed only on a spool file the web process wrote; on any other mail it is ignored.

    X-Maild-Web: confirm    mail the address the link that files its request (the job)
    X-Maild-Web: sign-in    mail the address the link into "мои заявки" (the job)
    X-Maild-Web: request    the request itself, once confirmed: a new ticket, source web
    X-Maild-Web: reply      a reply typed on "мои заявки": on the ticket, like a mail

A job carries its link's path in ``X-Maild-Web-Link``; the worker puts the configured
``web.url`` before it, so even a job could only ever point at our own pages.
"""
from __future__ import annotations

import enum

from maild.reading.mail import Mail
from maild.values import Envelope

PEER = "web"
HEADER = "X-Maild-Web"
LINK_HEADER = "X-Maild-Web-Link"
CATEGORY_HEADER = "X-Maild-Web-Category"


class WebKind(enum.StrEnum):
    CONFIRM = "confirm"
    SIGN_IN = "sign-in"
    REQUEST = "request"
    REPLY = "reply"

    @property
    def is_job(self) -> bool:
        return self in (WebKind.CONFIRM, WebKind.SIGN_IN)


def kind_of(envelope: Envelope, mail: Mail) -> WebKind | None:
    """What the web pages meant by this spool file (None: it is not theirs)."""
    if envelope.peer != PEER:
        return None
    value = (mail.header(HEADER.lower()) or "").strip().lower()
    return next((k for k in WebKind if k.value == value), None)


def link_path(mail: Mail) -> str:
    """The job's link path ("/confirm/…"): only a path on our pages, never an address."""
    path = (mail.header(LINK_HEADER.lower()) or "").strip()
    return path if path.startswith("/") and not path.startswith("//") and path.isascii() and " " not in path else ""
