"""Mail we send: Jinja2 templates in, complete RFC 5322 messages out.

Templates live in ``templates/`` (``templates/<DEPT>/`` overrides per department). A template
is a ``Subject:`` line, a blank line and the body; the ticket token ``[#OSA-000001]`` is put
in front of the subject here, so no template can forget it. Templates come only from those
files: user text (subjects, bodies, names) is passed in as data and never rendered as a
template. Undefined variables are errors (StrictUndefined), found by the tests.

Headers are built with the stdlib's RFC 2047 encoder rather than ``EmailMessage`` (100x
slower); every header value is stripped of CR/LF first, so a subject or a name can never
inject a header. Every mail carries ``Auto-Submitted`` and our loop header.

Times in templates go through the filters ``when`` (``02.12.2026 01:36 UTC+4``), ``day``
(``02.12.2026``), ``by`` (a deadline: ``14:00 вторника, 08.12.2026``) and ``day_before`` (the
last day of a period that ends at a midnight): the
company's zone (``values.LocalTime``), never a bare UTC ``strftime``.
"""
from __future__ import annotations

import base64
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.parse import quote

import jinja2

from maild.reading.quotes import REPLY_MARKER
from maild.values import LocalTime

LOOP_HEADER = "X-Maild-Loop"
CANNED_DIR = "canned"
BODY_ONLY_DIRS = (CANNED_DIR, "parts")     # templates without a Subject line: canned answers, includes


def time_filters(local: LocalTime) -> dict[str, Callable[..., str]]:
    """The template filters for times (``rules check`` compiles the templates with them too)."""
    return {"when": local.when, "day": local.day, "day_before": local.day_before, "by": local.by}


class TemplateMissing(Exception):
    pass


@dataclass(frozen=True)
class File:
    """A file to attach to mail we send (reports)."""
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@dataclass(frozen=True)
class Outgoing:
    """A complete outgoing mail: what the outbox row stores."""
    sender: str
    recipient: str
    subject: str
    message_id: str       # without angle brackets
    raw: str


def _clean(value: str) -> str:
    return " ".join(str(value).replace("\r", " ").replace("\n", " ").split())


def _words(text: str) -> str:
    """RFC 2047 base64 encoded-words, folded; each word under 76 characters and never
    splitting a character. (email.header does the same, ten times slower per mail.)"""
    words, chunk = [], b""
    for ch in text:
        encoded = ch.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    if chunk:
        words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _encode(value: str) -> str:
    value = _clean(value)
    return value if value.isascii() else _words(value)


def _subject(token: str, subject: str) -> str:
    subject = _clean(subject)
    if not token:
        return _encode(subject)
    if subject.isascii():
        return f"{token} {subject}".strip()
    return f"{token} {_words(subject)}"     # the token stays readable ASCII


@functools.lru_cache(maxsize=4096)
def _address(name: str, email: str) -> str:
    """An encoded address header (cached: the same departments and staff recur)."""
    name, email = _clean(name), _clean(email)
    if not name:
        return email
    if name.isascii():
        return formataddr((name, email))
    return f"{_words(name)} <{email}>"


class Renderer:
    def __init__(self, templates_dir: Path, hostname: str, local: LocalTime):
        self.templates_dir = Path(templates_dir)
        self.hostname = hostname
        self.local = local
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.templates_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["reply_marker"] = REPLY_MARKER
        self.env.globals["timedelta"] = timedelta      # kept for departments' own templates
        self.env.filters.update(time_filters(local))

    def new_message_id(self) -> str:
        return f"{time.time_ns():x}.{secrets.token_hex(6)}@{self.hostname}"

    # -- canned answers: templates/canned/<name>.txt.j2 (a department's own first), body
    # only; an optional first line ``{# what it says #}`` describes it in ``#canned`` lists.
    def canned(self, dept_code: str) -> dict[str, str]:
        """The canned answers a department may send: name -> description."""
        return {name: description for name, (description, _) in self._canned(dept_code).items()}

    def _canned(self, dept_code: str) -> dict[str, tuple[str, str]]:
        """name (lower case) -> (description, template path)."""
        found: dict[str, tuple[str, str]] = {}
        for folder, prefix in ((self.templates_dir / dept_code / CANNED_DIR, f"{dept_code}/{CANNED_DIR}"),
                               (self.templates_dir / CANNED_DIR, CANNED_DIR)):
            for path in sorted(folder.glob("*.txt.j2")):
                name = path.name.removesuffix(".txt.j2").lower()
                if name not in found:
                    first = path.read_text(encoding="utf-8").split("\n", 1)[0].strip()
                    described = first.startswith("{#") and first.endswith("#}")
                    found[name] = (first[2:-2].strip() if described else "", f"{prefix}/{path.name}")
        return dict(sorted(found.items()))

    def render_canned(self, name: str, dept_code: str, **context: object) -> str:
        found = self._canned(dept_code).get(name.lower())
        if found is None:
            raise TemplateMissing(f"no canned answer {name!r}")
        return self.env.get_template(found[1]).render(**context).strip("\n")

    def render(self, name: str, dept_code: str, **context: object) -> Rendered:
        """Render ``<name>.txt.j2``, the department's own version first."""
        try:
            template = self.env.select_template([f"{dept_code}/{name}.txt.j2", f"{name}.txt.j2"])
        except jinja2.TemplatesNotFound:
            raise TemplateMissing(f"no template {name}.txt.j2 in {self.templates_dir}") from None
        text = template.render(**context)
        head, _, body = text.partition("\n\n")
        if not head.lower().startswith("subject:"):
            raise TemplateMissing(f"template {template.filename} must start with a 'Subject:' line")
        return Rendered(subject=_clean(head.split(":", 1)[1]), body=body.strip("\n") + "\n")

    def build(self, *, sender_name: str, sender: str, recipient_name: str, recipient: str,
              token: str, rendered: Rendered, message_id: str, in_reply_to: str | None = None,
              references: tuple[str, ...] = (), auto_submitted: str = "auto-generated",
              reply_to: str | None = None, files: tuple[File, ...] = ()) -> Outgoing:
        refs = " ".join(f"<{_clean(r)}>" for r in references[-20:])
        headers = [
            ("From", _address(sender_name, sender)),
            ("To", _address(recipient_name, recipient)),
            ("Subject", _subject(token, rendered.subject)),
            # The company's offset: a reader's client converts it anyway, a raw header reads right.
            ("Date", format_datetime(self.local.local(datetime.now(UTC)))),
            ("Message-ID", f"<{message_id}>"),
        ]
        if reply_to:
            headers.append(("Reply-To", _address(sender_name, reply_to)))
        if in_reply_to:
            headers.append(("In-Reply-To", f"<{_clean(in_reply_to)}>"))
        if refs:
            headers.append(("References", refs))
        headers += [
            ("Auto-Submitted", auto_submitted),
            # Exchange and Outlook: send no out-of-office replies to this mail.
            ("X-Auto-Response-Suppress", "All"),
            (LOOP_HEADER, self.hostname),
            ("MIME-Version", "1.0"),
        ]
        text = _base64_lines(rendered.body.replace("\n", "\r\n").encode("utf-8"))
        if not files:
            headers += [("Content-Type", 'text/plain; charset="utf-8"'),
                        ("Content-Transfer-Encoding", "base64")]
            body = text
        else:
            # Reports: the text, then each file, base64.
            boundary = "=_maild_" + secrets.token_hex(12)
            headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
            parts = [f"--{boundary}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
                     f"Content-Transfer-Encoding: base64\r\n\r\n{text}"]
            for file in files:
                name = _clean(file.filename)
                disposition = (f'attachment; filename="{name}"' if name.isascii()
                               else f"attachment; filename*=utf-8''{quote(name, safe='')}")
                parts.append(f"--{boundary}\r\nContent-Type: {_clean(file.content_type)}\r\n"
                             f"Content-Disposition: {disposition}\r\n"
                             f"Content-Transfer-Encoding: base64\r\n\r\n{_base64_lines(file.data)}")
            body = "".join(parts) + f"--{boundary}--\r\n"
        raw = "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n" + body
        subject = f"{token} {rendered.subject}".strip()
        return Outgoing(sender=sender, recipient=recipient, subject=subject,
                        message_id=message_id, raw=raw)


def _base64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "".join(encoded[i:i + 76] + "\r\n" for i in range(0, len(encoded), 76))
