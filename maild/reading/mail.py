"""The parsed mail as every later stage sees it: a frozen ``Mail`` with decoded headers,
``Address`` values and ``Attachment`` records, and how header text is decoded (RFC 2047 in
any charset, raw 8-bit guessed) and made printable. parse.py makes these values."""
from __future__ import annotations

import email
import email.header
import email.utils
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime

from maild.reading import charset

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
    forwarded_from: Address | None = None   # From of the first attached message (reading/forwards.py)
    forwarded_text: str = ""                # ... and its text, with its header lines

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


def _printable(text: str) -> str:
    """No NUL or other control characters (PostgreSQL refuses NUL in text)."""
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f") if not text.isprintable() else text


_ADDRESS_IN_NAME = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+\.[^\s<>\"'(),;:@]+")


def _deceptive(name: str, address: str) -> bool:
    """A display name that shows another address (also written with a full-width ＠, or beside
    the real one: "p.petrov@torex.ru via evil@torex.ru")."""
    shown = unicodedata.normalize("NFKC", name).lower()
    return any(found != address.lower() for found in _ADDRESS_IN_NAME.findall(shown))
