"""What the person wrote in this message: quoted history, our reply marker, signatures and
"sent from my phone" lines taken away; answers written between quoted blocks kept.

Two kinds of history, handled differently:
- history *below a header* — our marker line, Outlook's ``From:/Sent:`` or
  ``От:/Отправлено:`` block, ``-----Original Message-----``, Lotus Notes' date and
  ``Кому:`` block: everything from there down is the old conversation, so it is cut;
- history *quoted line by line* with ``>`` (Gmail, Thunderbird, The Bat!, Apple, Yandex):
  only the quoted lines and the attribution line that introduces them go; what stands
  between two quoted blocks is the person's inline answer and stays.

A trailing signature after ``-- `` is cut. When nothing would be left (a reply with only
quoted text), the whole text is kept: losing words is worse than showing too many. The
full original is stored beside the stripped text in any case.
HTML-only mail is stripped before it is turned into text (``strip_html``): the quote
containers of Gmail, Outlook on the web, Thunderbird, Yahoo and Apple Mail are dropped.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

from maild.reading.mime import html_to_text

# Put in every mail we send, above the text we send (templates get it as ``reply_marker``).
REPLY_MARKER = "### Ответьте выше этой строки ###"
_MARKER_RE = re.compile(r"ответьте выше этой строки|reply above this line", re.I)

_SEPARATOR_RE = re.compile(
    r"^\s*-{2,}\s*(original message|исходное сообщение|ursprüngliche nachricht|message d'origine"
    r"|пересланное сообщение|forwarded message)\s*-{2,}\s*$", re.I)
_RULE_RE = re.compile(r"^\s*_{10,}\s*$")     # Outlook's line above its header block
# One line of an Outlook/Notes header block: "From: ...", "*От:* ...", "Тема:\tx".
_FIELD_RE = re.compile(
    r"^\s*\**\s*(from|sent|to|cc|subject|date|от|отправлено|кому|копия|тема|дата|von|gesendet|an"
    r"|betreff|de|envoyé|à|objet)\s*\**\s*:", re.I)
_FROM_FIELD_RE = re.compile(r"^\s*\**\s*(from|от|von|de)\s*\**\s*:", re.I)
_DATE_LINE_RE = re.compile(r"^\s*\d{1,2}[./]\d{1,2}[./]\d{2,4}\s+\d{1,2}:\d{2}")
_QUOTED_RE = re.compile(r"^\s*[A-Za-zА-Яа-яЁё]{0,3}>")
_ATTRIBUTION_RE = re.compile(
    r"(wrote|написал\(а\)|написала?|пишет|писал\(а\)|писали|schrieb|a écrit|escribió|skrev)\s*:?\s*$"
    r"|^\s*вы писали\b"
    r"|(\d{1,2}:\d{2}|@).*:\s*$", re.I)
# Attributions certain enough to mark history even when the history is not '>'-quoted
# (Outlook converting a reply, Yahoo's "--- On ... wrote:").
_STRONG_ATTRIBUTION_RE = re.compile(
    r"^\s*-*\s*(on|am|le)\b.*\b(wrote|schrieb|a écrit)\s*:\s*$"
    r"|(написал\(а\)|написала?|пишет)\s*:\s*$|^\s*вы писали\b.*:\s*$", re.I)
_DATED_RE = re.compile(r"\d{1,2}:\d{2}|@|\b\d{4}\b|\d{1,2}[./]\d{1,2}")
_SENT_FROM_RE = re.compile(
    r"^\s*(sent from (my )?\S+|sent from mail for windows|get outlook for \S+|отправлено (с|со|из) .{0,40}"
    r"|скачайте outlook для .*|с уважением, отправлено с .*)\s*$", re.I)


def reply_text(text: str, html: str = "", fallback: bool = True) -> str:
    """The new text of a reply; HTML-only mail is stripped as HTML first. Without
    ``fallback``, a mail with nothing of its own gives "" (staff: their answer must never
    be the quoted alert, which may hold internal notes)."""
    if html:
        return strip(html_to_text(strip_html(html)), fallback)
    return strip(text, fallback)


def strip(text: str, fallback: bool = True) -> str:
    """The new text of a reply (see the module docstring); when nothing is left, the whole
    text (people do write below quotes), unless ``fallback`` is off."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[:_history_start(lines)]
    lines = _drop_quoted(lines)
    lines = _drop_signature(lines)
    lines = [line for line in lines if not _SENT_FROM_RE.match(line)]
    result = _tidy(lines)
    return result if result or not fallback else text.strip()


def _history_start(lines: list[str]) -> int:
    """Index of the first line of history below a header, or len(lines)."""
    for i, line in enumerate(lines):
        if _QUOTED_RE.match(line):
            continue
        if _MARKER_RE.search(line) or _SEPARATOR_RE.match(line):
            return i
        if _STRONG_ATTRIBUTION_RE.search(line) and not _next_is_quoted(lines, i):
            # "On <date>, <name>" + "wrote:" may be wrapped over two lines. A date, a time
            # or an address must be there: "1С пишет:" in the person's own text is no header.
            wrapped = i > 0 and line.strip().lower() in ("wrote:", "написал(а):")
            start = i - 1 if wrapped else i
            if _DATED_RE.search(" ".join(lines[start:i + 1])):
                return start
        if _RULE_RE.match(line) and _fields_near(lines, i + 1) >= 2:
            return i
        if _FROM_FIELD_RE.match(line) and _fields_near(lines, i) >= 2:
            return i
        if _DATE_LINE_RE.match(line) and _fields_near(lines, i + 1) >= 2:
            # Lotus Notes: "Name/ORG" or a name line, then the date, then Кому:/Тема:.
            start = i - 1 if i > 0 and lines[i - 1].strip() and not _FIELD_RE.match(lines[i - 1]) else i
            return start
    return len(lines)


def _next_is_quoted(lines: list[str], i: int) -> bool:
    following = next((line for line in lines[i + 1:] if line.strip()), "")
    return bool(_QUOTED_RE.match(following))


def _fields_near(lines: list[str], start: int, window: int = 6) -> int:
    return sum(1 for line in lines[start:start + window] if _FIELD_RE.match(line))


def _drop_quoted(lines: list[str]) -> list[str]:
    """Remove ``>`` lines and the attribution (one or two lines) that introduces a block."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if _QUOTED_RE.match(line):
            if not (out and _QUOTED_RE.match(lines[i - 1])):
                _drop_attribution(out)
            continue
        out.append(line)
    return out


def _drop_attribution(out: list[str]) -> None:
    while out and not out[-1].strip():
        out.pop()
    if out and _ATTRIBUTION_RE.search(out[-1]):
        out.pop()
        # "On Mon, 27 Nov 2026 at 13:02, Name <x@y>" + "wrote:" wrapped over two lines.
        if (out and out[-1].strip() and re.search(r"^\s*(on|am|le)\b|\d{4}|@", out[-1], re.I)
                and not out[-1].rstrip().endswith((".", "!", "?"))):
            out.pop()


def _drop_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if line in ("-- ", "--", "—", "-- \t") and i > 0:
            return lines[:i]
    return lines


def _tidy(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- HTML -------------------------------------------------------------------------------------
_DROP_CLASSES = {"gmail_quote", "moz-cite-prefix", "yahoo_quoted", "gmail_extra",
                 "outlookmessageheader", "moz-forward-container"}
_CUT_IDS = {"divrplyfwdmsg", "appendonsend", "x_divrplyfwdmsg", "mail-editor-reference-message-container"}


class _QuoteStripper(HTMLParser):
    """Re-emits the HTML without quote containers; stops at Outlook's reply header."""

    VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.skip_depth = 0      # >0 while inside a dropped element
        self.stack: list[str] = []
        self.cut = False

    def handle_starttag(self, tag, attrs):
        if self.cut:
            return
        attr = {k: (v or "") for k, v in attrs}
        classes = set(attr.get("class", "").lower().split())
        if attr.get("id", "").lower() in _CUT_IDS:
            self.cut = True
            return
        if tag in self.VOID:
            if not self.skip_depth:
                self.out.append(self.get_starttag_text() or "")
            return
        style = attr.get("style", "").replace(" ", "").lower()
        # Hidden text is no part of what the person wrote (nor of a command line at its top).
        hidden = "hidden" in attr or "display:none" in style or "visibility:hidden" in style
        dropping = self.skip_depth or hidden or classes & _DROP_CLASSES or (
            tag == "blockquote" and (attr.get("type", "").lower() == "cite" or "gmail_quote" in classes))
        if dropping:
            self.skip_depth += 1
        else:
            self.out.append(self.get_starttag_text() or "")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.cut or tag in self.VOID:
            return
        if tag in self.stack:
            while self.stack:
                top = self.stack.pop()
                if self.skip_depth:
                    self.skip_depth -= 1
                else:
                    self.out.append(f"</{top}>")
                if top == tag:
                    break

    def _text(self, data: str) -> None:
        if not self.cut and not self.skip_depth:
            self.out.append(data)

    def handle_data(self, data):
        self._text(data)

    def handle_entityref(self, name):
        self._text(f"&{name};")

    def handle_charref(self, name):
        self._text(f"&#{name};")


def strip_html(html: str) -> str:
    parser = _QuoteStripper()
    try:
        parser.feed(html)
        parser.close()
    except Exception:   # broken markup: keep it whole rather than lose the words
        return html
    return "".join(parser.out)
