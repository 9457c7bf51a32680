"""Hostile input: user text is data — never a header, a path or a template."""
from __future__ import annotations

import email.message

from conftest import mail


def test_a_subject_with_line_breaks_never_becomes_a_header(maild):
    maild.send(mail(subject="=?utf-8?q?Hi=0D=0ABcc:_victim@example.com=0D=0AX-Evil:_1?="))
    maild.drain()
    [ack] = maild.sent_to("ivan@torex.ru")
    assert ack.msg["Bcc"] is None and ack.msg["X-Evil"] is None
    assert ack.rcpt_tos == ["ivan@torex.ru"]


def test_a_display_name_with_line_breaks_never_becomes_a_header(maild):
    raw = (b"From: =?utf-8?q?Ivan=0D=0ABcc:_victim@example.com?= <ivan@torex.ru>\r\n"
           b"To: osticket@torex.ru\r\nSubject: =?utf-8?b?0J3QtSDQv9C10YfQsNGC0LDQtdGCINC/0YDQuNC90YLQtdGA?=\r\n"
           b"Message-ID: <crlf-name@torex.ru>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           + "Принтер не печатает.".encode() + b"\r\n")
    maild.send(raw, source="127.0.0.2")          # straight to maild, not through the company relay
    [outcome] = maild.drain().outcomes
    for m in maild.sink.messages:
        assert m.msg["Bcc"] is None and not any("victim" in r for r in m.rcpt_tos)
    # The header reads as a group and an outside address: refused, and not answered, since
    # the envelope came from someone else.
    assert outcome.disposition == "refused-domain" and "not answered" in outcome.reason


def test_user_text_is_never_rendered_as_a_template(maild):
    maild.send(mail(subject="Принтер {{ 7*7 }} {% raw %}", body="Не печатает принтер {{ config }} {{ 6*7 }} {# x #}"))
    maild.drain()
    [alert] = maild.sent_to("p.petrov@torex.ru")
    # The literal text is there, so nothing was rendered ("42" itself may stand in the alert:
    # the reading's percentages are there).
    assert "Не печатает принтер {{ config }} {{ 6*7 }} {# x #}" in alert.body
    [ack] = maild.sent_to("ivan@torex.ru")
    assert "{{ 7*7 }}" in ack.subject and "49" not in ack.subject


def test_attachment_names_never_reach_the_file_system(maild, tmp_path):
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ivan@torex.ru", "osticket@torex.ru", "Файлы"
    msg.set_content("Во вложении.")
    for name in ("../../../../tmp/evil.txt", "/etc/passwd", "..\\..\\win.ini", "a/../../b"):
        msg.add_attachment(name.encode(), maintype="text", subtype="plain", filename=name)
    maild.send(msg.as_bytes())
    maild.drain()
    data = maild.app.config.data_dir
    stored = [p for p in maild.app.config.attachments_dir.rglob("*") if p.is_file()]
    assert len(stored) == 4
    assert all(len(p.name) == 64 and all(c in "0123456789abcdef" for c in p.name) for p in stored)
    assert not (tmp_path / "evil.txt").exists() and not any(data.rglob("evil.txt"))
    from maild.acting import store
    with maild.session() as s:
        names = [a.filename for e in store.ticket_with_entries(s, "OSA-000001").entries for a in e.attachments]
    assert all("/" not in n and "\\" not in n for n in names) and len(names) == 4
