"""Employees without registration: history and profile by mail, over SMTP."""
from __future__ import annotations

import pytest

from maild import selfservice, store

from conftest import TRUSTED_DKIM, mail

IVAN = "Иван Иванов <ivan@torex.ru>"
OLGA = "Ольга Белова <o.belova@torex.ru>"
DAB = "osticket-1c@torex.ru"


def write(h, sender, subject, body="Добрый день!", rcpt="osticket@torex.ru", headers=None):
    address = sender.split("<")[-1].rstrip(">")
    h.send(mail(subject=subject, sender=sender, body=body, headers=headers), rcpt=rcpt, sender=address)
    return h.drain().outcomes[-1]


def seeded(h):
    """Ivan: OSA-000001 (printer) and DAB-000001 (1C, with a staff note and a response);
    Olga: OSA-000002."""
    write(h, IVAN, "Не печатает принтер", "Принтер не печатает.")
    write(h, IVAN, "Не формируется отчёт в 1С", "В 1С не формируется отчёт.", rcpt=DAB)
    write(h, OLGA, "Не работает мышь", "Мышь не работает, тайна Ольги.")
    kuz = "Сергей Кузнецов <s.kuznetsov@torex.ru>"
    write(h, kuz, "Re: [#DAB-000001] отчёт", "#note\nвнутреннее: СЕКРЕТ-9", rcpt=DAB, headers=TRUSTED_DKIM)
    write(h, kuz, "Re: [#DAB-000001] отчёт", "Обновите конфигурацию, пожалуйста.", rcpt=DAB, headers=TRUSTED_DKIM)
    h.sink.messages.clear()


def only_mail_to(h, address):
    assert {r for m in h.sink.messages for r in m.rcpt_tos} == {address}
    [got] = h.sink.messages
    return got


def test_read():
    codes = {"OSA", "DAB"}
    assert selfservice.read("Re: История", "", codes).kind == "history"
    assert selfservice.read("мои заявки!", "", codes) == selfservice.Request("history")
    assert selfservice.read("x", "#история osa-12", codes).number == "OSA-000012"
    assert selfservice.read("история болезни принтера", "", codes) is None
    got = selfservice.read("x", "#профиль\nТелефон: 12-34\nКаб. 305\nлюбимый цвет: синий", codes)
    assert got.fields == (("phone", "12-34"),) and got.unread == ("Каб. 305", "любимый цвет: синий")
    assert selfservice.read("x", "#profile Phone: 5", codes).fields == (("phone", "5"),)


@pytest.mark.parametrize("subject,body", [("история", "Добрый день!"), ("Re: Мои заявки", ""),
                                          ("history", ""), ("вопрос", "#история"), ("вопрос", "#history")])
def test_history_lists_exactly_the_senders_tickets(maild, subject, body):
    seeded(maild)
    outcome = write(maild, IVAN, subject, body)
    assert outcome.disposition == "history-sent" and outcome.ticket is None
    got = only_mail_to(maild, "ivan@torex.ru")
    assert "OSA-000001" in got.body and "DAB-000001" in got.body
    assert "OSA-000002" not in got.body and "мышь" not in got.body.lower()
    assert "Не формируется отчёт в 1С" in got.body and "Не печатает принтер" in got.body
    with maild.session() as s:
        assert len(store.tickets(s)) == 3          # asking opened no ticket


def test_history_of_one_ticket_is_its_public_conversation(maild):
    seeded(maild)
    write(maild, IVAN, "вопрос", "#история DAB-000001", rcpt="osticket@torex.ru")
    got = only_mail_to(maild, "ivan@torex.ru")
    assert "В 1С не формируется отчёт." in got.body and "Обновите конфигурацию" in got.body
    assert "СЕКРЕТ-9" not in got.body                  # never an internal note


@pytest.mark.parametrize("asked", ["OSA-000002", "OSA-000099"])
def test_a_colleagues_ticket_number_shows_nothing(maild, asked):
    seeded(maild)
    write(maild, IVAN, "вопрос", f"#история {asked}")
    got = only_mail_to(maild, "ivan@torex.ru")
    assert "тайна Ольги" not in got.body and "мышь" not in got.body.lower()
    assert f"нет заявки {asked}" in got.body


def test_profile_is_kept_and_shown_to_staff(maild):
    outcome = write(maild, OLGA, "профиль", "#профиль\nТелефон: 12-34\nКабинет: 305\nКомпания: ТОРЭКС-Сервис")
    assert outcome.disposition == "profile-updated"
    got = only_mail_to(maild, "o.belova@torex.ru")
    assert "Профиль обновлён" in got.body and "12-34" in got.body
    maild.sink.messages.clear()
    write(maild, OLGA, "Не работает мышь", "Мышь не работает.")
    [alert] = [m for m in maild.sent_to("p.petrov@torex.ru") if "Новая заявка" in m.subject]
    assert "тел. 12-34, каб. 305, ТОРЭКС-Сервис" in alert.body
    # A later #profile changes one field, keeps the others.
    write(maild, OLGA, "x", "#profile\nOffice: 410")
    with maild.session() as s:
        person = store.person_ref(s.connection(), "o.belova@torex.ru")
    assert (person.phone, person.office, person.company) == ("12-34", "410", "ТОРЭКС-Сервис")


def test_profile_alone_shows_it_and_bad_lines_are_named(maild):
    outcome = write(maild, OLGA, "x", "#профиль\nлюбимый цвет: синий")
    assert outcome.disposition == "profile-sent"
    got = only_mail_to(maild, "o.belova@torex.ru")
    assert "не поняты" in got.body and "любимый цвет: синий" in got.body


def test_staff_ask_for_their_own_history_too(maild):
    seeded(maild)
    outcome = write(maild, "Пётр Петров <p.petrov@torex.ru>", "x", "#история", headers=TRUSTED_DKIM)
    assert outcome.disposition == "history-sent"
    got = only_mail_to(maild, "p.petrov@torex.ru")
    assert "пока нет" in got.body and "OSA-000001" not in got.body

