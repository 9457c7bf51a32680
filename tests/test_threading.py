"""Conversations by mail, over SMTP: who may add to a ticket, what a reply becomes, what
the entry shows, who hears about it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from maild.acting import store
from maild.acting.models import Ticket, now

from conftest import TRUSTED_DKIM, mail

OUTLOOK_RU_QUOTE = ("\n\n________________________________\nОт: ОСА <osticket@torex.ru>\n"
                    "Отправлено: 27 ноября 2026 г. 13:02\nКому: Иван Иванов\n"
                    "Тема: [#OSA-000001] Не печатает принтер\n\n### Ответьте выше этой строки ###\n"
                    "Здравствуйте, Иван Иванов!\nВаше обращение принято.")


def ticket(h, number="OSA-000001"):
    with h.session() as s:
        t = store.ticket_with_entries(s, number)
        _ = t.participants, t.links  # load while the session is open
        return t


def opened(h, **kwargs):
    h.send(mail(message_id="orig@torex.ru", **kwargs))
    h.drain()
    h.sink.messages.clear()


def test_requester_reply_is_stripped_kept_whole_and_alerts_the_department(maild):
    opened(maild)
    maild.send(mail(subject="RE: [#OSA-000001] Не печатает принтер",
                    body="Всё ещё не печатает, пробовал перезагрузить." + OUTLOOK_RU_QUOTE))
    maild.drain()
    entry = ticket(maild).entries[-1]
    assert entry.type == "message" and entry.body == "Всё ещё не печатает, пробовал перезагрузить."
    assert "Отправлено: 27 ноября" in entry.full_body          # the original stays viewable
    alerts = maild.sent_to("p.petrov@torex.ru")
    assert len(alerts) == 1 and "Всё ещё не печатает" in alerts[0].body
    assert "Отправлено:" not in alerts[0].body
    assert maild.sent_to("ivan@torex.ru") == []               # no second acknowledgement


def test_staff_reply_answers_the_requester(maild):
    opened(maild)
    [alert_mid] = [r.message_id for r in store_rows(maild) if r.recipient == "p.petrov@torex.ru"]
    maild.send(mail(subject="RE: Новая заявка", sender="Пётр Петров <p.petrov@torex.ru>",
                    body="Замените картридж, он в шкафу 3.\n\n-- \nПётр\n\n> старый текст",
                    headers={"In-Reply-To": f"<{alert_mid}>", "References": f"<{alert_mid}>", **TRUSTED_DKIM}),
               sender="p.petrov@torex.ru")
    summary = maild.drain()
    assert summary.replies == 1
    t = ticket(maild)
    assert t.status == "answered"
    assert (t.entries[-1].type, t.entries[-1].body) == ("response", "Замените картридж, он в шкафу 3.")
    [answer] = maild.sent_to("ivan@torex.ru")
    assert answer.subject == "[#OSA-000001] Не печатает принтер"
    assert "Замените картридж, он в шкафу 3." in answer.body and "Пётр Петров" in answer.body
    assert answer.body.lstrip().startswith("### Ответьте выше этой строки ###")
    assert answer.msg["In-Reply-To"] == "<orig@torex.ru>" and "<orig@torex.ru>" in answer.msg["References"]
    assert maild.sent_to("p.petrov@torex.ru") == []           # not echoed to the author


def store_rows(h):
    with h.session() as s:
        return store.outbox_rows(s)


def test_stranger_quoting_a_number_gets_a_new_linked_ticket(maild):
    opened(maild)
    maild.send(mail(subject="Re: [#OSA-000001] у меня то же самое", sender="Анна <a.kozlova@torex.ru>",
                    body="И у меня не печатает."), sender="a.kozlova@torex.ru")
    maild.drain()
    old, new = ticket(maild), ticket(maild, "OSA-000002")
    assert [e.body for e in old.entries if e.type == "message"] == [old.entries[0].body]  # nothing added
    assert new.requester.email == "a.kozlova@torex.ru" and new.entries[0].body == "И у меня не печатает."
    assert [link.linked.number for link in old.links] == ["OSA-000002"]
    assert [link.linked.number for link in new.links] == ["OSA-000001"]
    assert any(e.type == "event" and "OSA-000002" in e.body for e in old.entries)
    assert maild.sent_to("ivan@torex.ru") == []               # the old requester hears nothing
    [ack] = maild.sent_to("a.kozlova@torex.ru")
    assert ack.subject.startswith("[#OSA-000002]") and "OSA-000001" in ack.body


def test_staff_of_the_other_department_is_a_stranger(maild):
    opened(maild)
    maild.send(mail(subject="Re: [#OSA-000001] x", sender="s.kuznetsov@torex.ru", body="Ответ"),
               sender="s.kuznetsov@torex.ru")
    maild.drain()
    assert ticket(maild).status == "open" and ticket(maild, "OSA-000002") is not None


def test_token_wins_over_the_address(maild):
    opened(maild)
    reply = mail(subject="RE: [#OSA-000001] Не печатает принтер", body="Дополнение.",
                 to="osticket-1c@torex.ru", message_id="both@torex.ru")
    maild.send(reply, rcpt="osticket-1c@torex.ru")
    maild.send(reply, rcpt=["osticket@torex.ru", "osticket-1c@torex.ru"])
    maild.drain()
    with maild.session() as s:
        assert [t.number for t in store.tickets(s)] == ["OSA-000001"]
    assert [e.body for e in ticket(maild).entries][-1] == "Дополнение."
    assert len(ticket(maild).entries) == 2


def test_forward_without_token_is_a_new_request_keeping_the_forwarded_text(maild):
    body = ("Коллеги, посмотрите, пожалуйста.\n\n-----Исходное сообщение-----\nОт: Бухгалтерия\n"
            "Отправлено: 26 ноября 2026 г. 10:00\nКому: Иван\nТема: сетевая папка\n\n"
            "Не открывается папка \\\\fs\\buh.")
    maild.send(mail(subject="FW: сетевая папка", body=body))
    maild.drain()
    assert "Не открывается папка" in ticket(maild).entries[0].body


def close(h, days_ago: float):
    with h.session() as s:
        s.execute(update(Ticket).values(status="closed", closed_at=now() - timedelta(days=days_ago)))
        s.commit()


def test_reply_to_recently_closed_ticket_reopens_it(maild):
    opened(maild)
    close(maild, days_ago=3)
    maild.send(mail(subject="Re: [#OSA-000001] Не печатает принтер", body="Опять не печатает."))
    maild.drain()
    t = ticket(maild)
    assert t.status == "open" and t.closed_at is None
    assert any(e.type == "event" and "снова открыта" in e.body for e in t.entries)
    assert len(maild.sent_to("p.petrov@torex.ru")) == 1


def test_reply_to_long_closed_ticket_opens_a_new_linked_one(maild):
    opened(maild)
    close(maild, days_ago=30)
    maild.send(mail(subject="Re: [#OSA-000001] Не печатает принтер", body="Опять не печатает."))
    maild.drain()
    assert ticket(maild).status == "closed"
    new = ticket(maild, "OSA-000002")
    assert [link.linked.number for link in new.links] == ["OSA-000001"]
    [ack] = maild.sent_to("ivan@torex.ru")
    assert ack.subject.startswith("[#OSA-000002]") and "OSA-000001" in ack.body


def test_corporate_cc_become_participants_and_get_responses(maild):
    # The requester's mail proves its sender (the company server's DKIM pass): only then do
    # its copies join (tests/test_security.py: a forged Cc recruits nobody).
    opened(maild, headers={"Cc": "Ольга <o.belova@torex.ru>, friend@example.com, osticket-1c@torex.ru",
                           **TRUSTED_DKIM})
    t = ticket(maild)
    assert [p.person.email for p in t.participants] == ["o.belova@torex.ru"]
    # The participant may add to the ticket ...
    maild.send(mail(subject="Re: [#OSA-000001]", sender="o.belova@torex.ru", body="Подтверждаю."),
               sender="o.belova@torex.ru")
    # ... and gets the department's answer, like the requester; the other address never does.
    maild.send(mail(subject="Re: [#OSA-000001]", sender="p.petrov@torex.ru", body="Исправлено.",
                    headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    maild.drain()
    entries = ticket(maild).entries
    assert [e.type for e in entries if e.type != "event"] == ["message", "message", "response"]
    assert [e.body for e in entries if e.type == "event"] == ["В копию добавлены: o.belova@torex.ru"]
    for who in ("ivan@torex.ru", "o.belova@torex.ru"):
        assert [m.body.count("Исправлено.") for m in maild.sent_to(who)] == [1]
    assert maild.sent_to("friend@example.com") == [] and maild.sent_to("osticket-1c@torex.ru") == []


@pytest.mark.parametrize("prefix", ["Автоматический ответ:", "Автоответ:", "Out of Office:",
                                    "Automatic reply:", "Abwesend:"])
def test_automatic_reply_on_a_ticket_is_an_event_that_reopens_nothing(maild, prefix):
    opened(maild)
    close(maild, days_ago=1)
    maild.send(mail(subject=f"{prefix} [#OSA-000001] Не печатает принтер",
                    body="Я в отпуске до понедельника."))
    maild.drain()
    t = ticket(maild)
    assert t.status == "closed" and t.entries[-1].type == "event"
    assert maild.sink.messages == []


def test_attachment_over_the_limit_is_listed_not_stored(harness_factory):
    import email.message
    from dataclasses import replace
    h = harness_factory()
    h.app.config = replace(h.app.config, attachments=replace(h.app.config.attachments, max_size=1000))
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ivan@torex.ru", "osticket@torex.ru", "Лог"
    msg.set_content("Лог во вложении")
    msg.add_attachment(b"x" * 5000, maintype="text", subtype="plain", filename="big.log")
    msg.add_attachment(b"small", maintype="text", subtype="plain", filename="small.txt")
    h.send(msg.as_bytes())
    h.drain()
    files = {a.filename: a for a in ticket(h).entries[0].attachments}
    assert (files["big.log"].stored, files["small.txt"].stored) == (False, True)
    assert not list(h.app.config.attachments_dir.rglob(files["big.log"].sha256))


def test_tickets_show_prints_the_conversation_and_full_originals(maild):
    from click.testing import CliRunner

    from maild.admin.cli import main
    opened(maild)
    maild.send(mail(subject="RE: [#OSA-000001]", body="Не помогло." + OUTLOOK_RU_QUOTE))
    maild.send(mail(subject="RE: [#OSA-000001]", sender="p.petrov@torex.ru", body="Приду в 15:00.",
                    headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    maild.drain()
    args = ["tickets", "show", "osa-1", "--data-dir", str(maild.app.config.data_dir),
            "--db", maild.app.config.db_url]
    text = CliRunner().invoke(main, args).output
    assert "Не помогло." in text and "Отправлено: 27 ноября" not in text
    assert "p.petrov@torex.ru  [ANSWER]" in text and "Приду в 15:00." in text
    assert "status answered" in text
    full = CliRunner().invoke(main, args + ["--full"]).output
    assert "Отправлено: 27 ноября" in full


def test_reply_alerts_only_the_assignee_once_there_is_one(maild):
    opened(maild)
    with maild.session() as s:
        s.execute(update(Ticket).values(assignee="sidorova"))
        s.commit()
    maild.send(mail(subject="Re: [#OSA-000001]", body="Жду."))
    maild.drain()
    assert len(maild.sent_to("a.sidorova@torex.ru")) == 1 and maild.sent_to("p.petrov@torex.ru") == []


def test_inline_images_and_attached_messages_are_kept_on_their_entry(maild):
    import email.message
    inner = email.message.EmailMessage()
    inner["From"], inner["Subject"] = "buh@torex.ru", "Акт сверки за ноябрь"
    inner.set_content("Текст пересланного письма")
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ivan@torex.ru", "osticket@torex.ru", "Скриншот ошибки"
    msg.set_content("См. скриншот")
    msg.add_alternative('<p>См. скриншот <img src="cid:shot1@torex.ru"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<shot1@torex.ru>")
    msg.add_attachment(inner)
    maild.send(msg.as_bytes())
    maild.drain()
    rows = {a.filename: a for a in ticket(maild).entries[0].attachments}
    image = next(a for a in rows.values() if a.content_type == "image/png")
    assert image.content_id == "shot1@torex.ru" and image.inline
    assert "Акт сверки за ноябрь.eml" in rows and rows["Акт сверки за ноябрь.eml"].content_type == "message/rfc822"
