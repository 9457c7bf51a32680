"""Replies as the clients this company uses write them (fixtures in tests/fixtures/clients,
each saying which client it imitates): the entry shows exactly the new words."""
from __future__ import annotations

from pathlib import Path

import pytest

from maild.reading import quotes
from maild.reading.parse import parse

from conftest import mail

FIXTURES = Path(__file__).parent / "fixtures" / "clients"
CASES = sorted(FIXTURES.glob("*.eml"))
NEW_REQUESTS = ("forward", "onec", "scanner")     # not replies: the whole text is the request


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_entry_text_per_client(path):
    expected = path.with_suffix(".expected.txt").read_text(encoding="utf-8")
    m = parse(path.read_bytes())
    assert "X-Fixture-Note".lower() in dict(m.headers)
    if any(kind in path.stem for kind in NEW_REQUESTS):
        got = m.text
    else:
        got = quotes.reply_text(m.text, m.html if m.text_from_html else "")
    assert lines(got) == lines(expected)


def test_there_are_fixtures_for_each_client():
    stems = {p.stem for p in CASES}
    for client in ("outlook_ru", "thebat", "lotus_notes", "onec", "gmail", "thunderbird", "iphone",
                   "yandex", "mailru"):
        assert any(client in stem for stem in stems), client


def test_outlook_ru_reply_over_smtp_lands_stripped(maild):
    from maild.acting import store
    maild.send(mail(subject="Не печатает принтер", sender="Иванов Иван <i.ivanov@torex.ru>"),
               sender="i.ivanov@torex.ru")
    maild.drain()
    [ack] = maild.sent_to("i.ivanov@torex.ru")
    ours = ack.msg["Message-ID"].strip("<>").encode()
    # The fixture answers a mail of ours with another Message-ID: make it answer this one.
    raw = (FIXTURES / "outlook_ru_reply.eml").read_bytes().replace(
        b"18ebd2bff2f3cc64.0d668b37fbb7@maild.localdomain", ours)
    maild.send(raw, sender="i.ivanov@torex.ru")
    assert maild.drain().replies == 1
    with maild.session() as s:
        entry = store.ticket_with_entries(s, "OSA-000001").entries[-1]
    expected = (FIXTURES / "outlook_ru_reply.expected.txt").read_text(encoding="utf-8")
    assert entry.type == "message" and lines(entry.body) == lines(expected)
    assert "Ответьте выше этой строки" in entry.full_body
