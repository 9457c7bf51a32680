"""The words a request is read by: subject and the body down to the signature, normalised
the way every later stage expects (NFKC, format characters gone, ``1C`` is ``1С``, ``ё`` is
``е``, lower case). A forwarded mail keeps the forwarded text: it often is the request."""
from __future__ import annotations

import re

from maild.reading.textnorm import visible

MAX_BODY = 1500        # characters the reading looks at: the request is at the top (and the cost grows with it)

_ONE_C = re.compile(r"(?<![\w])1[cсCС](?![\w])")
_ONE_C_PREFIX = re.compile(r"(?<![\w])1[cсCС](?=[:\s-]|$)")
# Where a signature starts: a closing formula on a line of its own (or starting it), the
# "-- " separator, a phone client's footer. The text below names a position, a company and
# an extension: the writer, not the request.
_CLOSING = re.compile(
    r"^\s*(--\s*|—\s*|_{3,}|с\s+уважением\b.*|с\s+наилучшими\b.*|спасибо\s*[.!]?\s*$|благодарю\s*[.!]?\s*$"
    r"|заранее\s+спасибо\b.*|best\s+regards\b.*|regards\b.*|отправлено\s+(с|из)\b.*|sent\s+from\b.*"
    r"|получено\s+с\b.*)$", re.I)
_TOKEN = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*|__\w+?__", re.UNICODE)


def normalise(text: str) -> str:
    """NFKC (full-width, ligatures, no-break spaces), format characters removed, 1C -> 1С,
    ё -> е, lower case."""
    text = visible(text)
    text = _ONE_C.sub("1с", text)
    text = _ONE_C_PREFIX.sub("1с", text)
    return text.replace("ё", "е").replace("Ё", "Е").lower()


def without_signature(body: str) -> str:
    """The body above the writer's closing formula. A closing on the first line (a mail that
    is only "Спасибо!") cuts nothing."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if i and _CLOSING.match(line) and any(x.strip() for x in lines[:i]):
            return "\n".join(lines[:i])
    return "\n".join(lines)


def tokens(text: str) -> list[str]:
    """Words of a normalised text (hyphenated words stay one: "wi-fi", "сим-карта")."""
    return _TOKEN.findall(text)


def request_text(subject: str, body: str) -> tuple[str, str, str]:
    """(subject, body, signature), each normalised; the body cut to MAX_BODY."""
    body = body[:MAX_BODY * 2].replace("\r\n", "\n").replace("\r", "\n")
    main = without_signature(body)
    return normalise(subject), normalise(main[:MAX_BODY]), normalise(body[len(main):][:500])
