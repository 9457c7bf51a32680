"""Table-driven: every reply, Russian-encoded, HTML-only and attachment file of the corpus
through the real pipeline; the stored text is checked, not just the absence of a crash."""
from __future__ import annotations

import email
import email.header
import email.policy
import re

import pytest
from sqlalchemy import select

from maild.acting.models import AttachmentRow, Entry, Inbound
from maild.reading import charset, quotes
from maild.reading.parse import parse
from maild.values import Envelope

from conftest import CORPUS, require_corpus

FOLDERS = ("replies", "encodings-ru", "html-only", "attachments")
FILES = sorted(p for folder in FOLDERS for p in (CORPUS / folder).glob("*.eml")) if CORPUS.is_dir() else []
QUOTE_HEADER = re.compile(
    r"^\s*>|^\s*-*\s*(on|am)\b.*\b(wrote|schrieb)\s*:\s*$|(написал\(а\)|пишет)\s*:\s*$"
    r"|-----\s*(original message|исходное сообщение)\s*-----", re.I)


def decodes_cleanly(raw: bytes) -> bool:
    """Every text part decodes with the charset it declares, and the headers are clean."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        codec = charset.lookup(part.get_content_charset()) or ("ascii" if not part.get_content_charset() else None)
        try:
            data.decode(codec or "invalid")
        except (UnicodeDecodeError, LookupError):
            return False
    return all(isinstance(value, str) for value in msg.values())   # no raw 8-bit headers


def test_corpus_files_are_found():
    require_corpus()
    assert len(FILES) > 140


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_text(harness_factory, corpus_rules, path):
    maild = harness_factory(rules=corpus_rules)
    raw = path.read_bytes()
    maild.app.spool.put(Envelope(mail_from="sender@torex.ru", rcpt_to=("osticket@torex.ru",)), raw)
    summary = maild.worker().drain(relay=False)
    assert summary.retried == 0 and summary.quarantined == 0
    mail = parse(raw)
    with maild.session() as s:
        inbound = s.scalars(select(Inbound)).one()
        subject = inbound.subject
        if inbound.disposition in ("auto-reply-ignored", "bounce-recorded"):
            # List mail and robots make no ticket (loop guard); what they say is read all the same.
            assert inbound.ticket_id is None and inbound.reason
            body = mail.text if mail.text.strip() else "(no text: nothing to show)"
            names = [a.filename for a in mail.attachments]
        else:
            [entry] = s.scalars(select(Entry).where(Entry.type != "event")).all()
            body, names = entry.body, [a.filename for a in s.scalars(select(AttachmentRow))]
    assert body.strip()                                          # never an empty entry
    if decodes_cleanly(raw):
        assert "\ufffd" not in body and "\ufffd" not in subject, "mojibake from a clean source"
    for name in names:
        assert name and "=?" not in name and "/" not in name      # decoded, and only a name
    if path.parent.name == "replies":
        # Delivered as a reply to a ticket, what would the entry show?
        text = quotes.reply_text(mail.text, mail.html if mail.text_from_html else "")
        assert text.strip() or not mail.text.strip()
        leftover = [line for line in text.splitlines() if QUOTE_HEADER.search(line)]
        only_quoted = all(QUOTE_HEADER.search(line) or not line.strip() for line in mail.text.splitlines())
        assert not leftover or only_quoted, leftover[:3]
