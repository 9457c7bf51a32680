"""Employees without registration: history and profile by mail, over SMTP."""
from __future__ import annotations

import pytest

from maild.acting import store
from maild.deciding import selfservice

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
    outcome = write(maild, OLGA, "профиль", "#профиль\nТелефон: 12-34\nКабинет: 305\nКомпания: ТОРЭКС-Сервис",
                    headers=TRUSTED_DKIM)
    assert outcome.disposition == "profile-updated"
    got = only_mail_to(maild, "o.belova@torex.ru")
    assert "Профиль обновлён" in got.body and "12-34" in got.body
    maild.sink.messages.clear()
    write(maild, OLGA, "Не работает мышь", "Мышь не работает.")
    [alert] = [m for m in maild.sent_to("p.petrov@torex.ru") if "Новая заявка" in m.subject]
    assert "тел. 12-34, каб. 305, ТОРЭКС-Сервис" in alert.body
    # A later #profile changes one field, keeps the others.
    write(maild, OLGA, "x", "#profile\nOffice: 410", headers=TRUSTED_DKIM)
    with maild.session() as s:
        person = store.person_ref(s.connection(), "o.belova@torex.ru")
    assert (person.phone, person.office, person.company) == ("12-34", "410", "ТОРЭКС-Сервис")


def test_profile_alone_shows_it_and_bad_lines_are_named(maild):
    outcome = write(maild, OLGA, "x", "#профиль\nлюбимый цвет: синий", headers=TRUSTED_DKIM)
    assert outcome.disposition == "profile-sent"
    got = only_mail_to(maild, "o.belova@torex.ru")
    assert "не поняты" in got.body and "любимый цвет: синий" in got.body


def test_staff_ask_for_their_own_history_too(maild):
    seeded(maild)
    outcome = write(maild, "Пётр Петров <p.petrov@torex.ru>", "x", "#история", headers=TRUSTED_DKIM)
    assert outcome.disposition == "history-sent"
    got = only_mail_to(maild, "p.petrov@torex.ru")
    assert "пока нет" in got.body and "OSA-000001" not in got.body



def profile_of(h, address):
    with h.session() as s:
        return store.person_ref(s.connection(), address)


def test_an_unproven_profile_change_waits_for_the_owner_to_confirm(maild):
    # Anyone can put Olga's address in From; the change waits, and Olga — at her own
    # address — is asked. The forger gets nothing and sees nothing.
    write(maild, OLGA, "x", "#профиль\nТелефон: 12-34")
    maild.send(mail(subject="x", sender=OLGA, body="#профиль\nТелефон: +7 999 ЗЛОДЕЙ\nВаш пароль истёк, "
                    "войдите на http://evil.example/login"), sender="attacker@torex.ru")
    assert maild.drain().outcomes[-1].disposition == "profile-pending"
    assert profile_of(maild, "o.belova@torex.ru").phone == ""
    asks = maild.sent_to("o.belova@torex.ru")
    assert len(asks) == 2 and all("подтвердить" in m.body for m in asks)
    assert "evil.example" not in asks[-1].body and "не удалось понять: 1" in asks[-1].body
    assert maild.sent_to("attacker@torex.ru") == []
    # Olga confirms the first one by replying to it: a reply to the *last* request applies
    # what is pending now (the last change asked for).
    signed = asks[-1].msg["Reply-To"].addresses[0].addr_spec
    maild.sink.messages.clear()
    maild.send(mail(subject="Re: Ваш профиль", sender=OLGA, body="нет, это не я"), rcpt=signed,
               sender="attacker@torex.ru")
    assert maild.drain().outcomes[-1].disposition == "profile-sent"     # the envelope gives it away
    assert profile_of(maild, "o.belova@torex.ru").phone == ""
    maild.send(mail(subject="Re: Ваш профиль", sender=OLGA, body="да"), rcpt=signed, sender="o.belova@torex.ru")
    assert maild.drain().outcomes[-1].disposition == "profile-updated"
    person = profile_of(maild, "o.belova@torex.ru")
    assert person.phone == "+7 999 ЗЛОДЕЙ" and person.pending_profile == ""


def test_profile_lines_end_at_the_first_blank_line_and_the_first_wins(maild):
    body = "#профиль:\nТелефон: 1234\nТелефон: 5678\nКомпания: \x1b[2J\x07ТОРЭКС\n\nС уважением,\nОльга\nтел: 8-800"
    write(maild, OLGA, "x", body, headers=TRUSTED_DKIM)
    person = profile_of(maild, "o.belova@torex.ru")
    assert (person.phone, person.company) == ("1234", "[2JТОРЭКС")


def test_answers_are_limited_per_hour(maild):
    outcomes = [write(maild, IVAN, "история").disposition for _ in range(7)]
    assert outcomes == ["history-sent"] * 5 + ["not-answered"] * 2
    assert len(maild.sent_to("ivan@torex.ru")) == 5


def test_a_reply_titled_history_is_a_reply(maild):
    write(maild, IVAN, "история", "Добрый день!")          # a new mail: a history request
    maild.send(mail(subject="История болезни принтера", body="Принтер не печатает."))
    maild.drain()
    outcome = write(maild, IVAN, "Re: [#OSA-000001] история", "и ещё: теперь не сканирует")
    assert outcome.disposition == "reply-added"


def test_text_besides_a_history_request_is_said_to_be_unregistered(maild):
    write(maild, IVAN, "вопрос", "#история\nи ещё: не работает сканер")
    got = only_mail_to(maild, "ivan@torex.ru")
    assert "заявкой не стал" in got.body


def test_an_address_we_cannot_answer_is_recorded_as_such(maild):
    raw = ("From: Тест <тест@torex.ru>\r\nTo: osticket@torex.ru\r\nSubject: история\r\n"
           "Message-ID: <utf8@torex.ru>\r\n\r\nДобрый день!\r\n")
    maild.send(raw.encode("utf-8"), sender="ivan@torex.ru")
    outcome = maild.drain().outcomes[-1]
    assert outcome.disposition == "not-answered" and maild.sink.messages == []
