"""Forwarded on behalf (issue 17): a staff member's ``#новая`` without an address above an
employee's forwarded mail, or an employee's ``#от имени``, files the ticket for the
forwarded mail's author, who is acknowledged. The forwarded From is only a claim: it counts
for proven mail, and otherwise the mail is the forwarder's own request, saying why. Through
the real daemon on both databases."""
from __future__ import annotations

import email.message

from sqlalchemy import text

from conftest import TRUSTED_DKIM, mail

PETROV = "Пётр Петров <p.petrov@torex.ru>"
ORLOVA = "Мария Орлова <m.orlova@torex.ru>"          # an employee, not staff

GMAIL_FORWARD = """{command}

---------- Forwarded message ---------
От: Ольга Белова <o.belova@torex.ru>
Date: Wed, 2 Dec 2026 at 09:14
Subject: Не печатает принтер
To: Пётр Петров <p.petrov@torex.ru>

Добрый день! Принтер в 305 кабинете не печатает, горит оранжевая лампа.
"""


def send(h, sender, subject, body, headers=None, raw=None):
    address = sender.split("<")[-1].rstrip(">")
    h.send(raw or mail(subject=subject, sender=sender, body=body, headers=headers), sender=address)
    return h.drain().outcomes[-1]


def attached_forward(command: str, author: str) -> bytes:
    inner = email.message.EmailMessage()
    inner["From"], inner["To"], inner["Subject"] = author, "p.petrov@torex.ru", "Сетевая папка"
    inner.set_content("Не открывается папка отдела S:\\\\buh, пишет нет доступа.")
    outer = email.message.EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = PETROV, "osticket@torex.ru", "Fwd: Сетевая папка"
    for key, value in TRUSTED_DKIM.items():
        outer[key] = value
    outer.set_content(command)
    outer.add_attachment(inner)
    return outer.as_bytes()


def ticket(h, number="OSA-000001"):
    with h.session() as s:
        return s.execute(text("SELECT t.subject, t.source, t.filed_by, p.email FROM tickets t "
                              "JOIN people p ON p.id = t.requester_id WHERE t.number = :n"), {"n": number}).one()


def participants(h, number="OSA-000001") -> set[str]:
    with h.session() as s:
        return {r[0] for r in s.execute(text(
            "SELECT p.email FROM participants x JOIN people p ON p.id = x.person_id JOIN tickets t "
            "ON t.id = x.ticket_id WHERE t.number = :n"), {"n": number})}


def test_staff_new_without_an_address_files_the_forwarded_mail_for_its_author(maild):
    outcome = send(maild, PETROV, "Fwd: Не печатает принтер", GMAIL_FORWARD.format(command="#новая"),
                   headers=TRUSTED_DKIM)
    assert outcome.disposition == "command-applied" and outcome.ticket == "OSA-000001"
    assert tuple(ticket(maild)) == ("Не печатает принтер", "email", "petrov", "o.belova@torex.ru")
    [ack] = maild.sent_to("o.belova@torex.ru")
    assert "Пётр Петров переслал(а) ваше письмо в отдел" in ack.body and "OSA-000001" in ack.body
    alerts = maild.sent_to("a.sidorova@torex.ru")
    assert alerts and "письмо сотрудника переслал(а) Пётр Петров" in alerts[0].body
    assert "горит оранжевая лампа" in alerts[0].body


def test_staff_new_above_an_attached_message_takes_its_from(maild):
    outcome = send(maild, PETROV, "", "", raw=attached_forward("#новая", "Ольга Белова <o.belova@torex.ru>"))
    assert outcome.disposition == "command-applied"
    assert ticket(maild).email == "o.belova@torex.ru"
    assert maild.sent_to("o.belova@torex.ru")


def test_staff_new_without_an_address_or_a_forward_is_refused(maild):
    outcome = send(maild, PETROV, "Принтер", "#новая\n\nПринтер в 305 не печатает.", headers=TRUSTED_DKIM)
    assert outcome.disposition == "command-refused"
    assert "нет пересланного письма" in maild.sent_to("p.petrov@torex.ru")[0].body
    with maild.session() as s:
        assert s.execute(text("SELECT count(*) FROM tickets")).scalar() == 0


def test_an_employee_files_on_behalf_of_a_colleague_and_stays_in_copy(maild):
    outcome = send(maild, ORLOVA, "Fwd: Не печатает принтер", GMAIL_FORWARD.format(command="#от имени"),
                   headers=TRUSTED_DKIM)
    assert outcome.disposition == "ticket-created"
    row = ticket(maild)
    assert (row.subject, row.email) == ("Не печатает принтер", "o.belova@torex.ru")
    assert participants(maild) == {"m.orlova@torex.ru"}
    [ack] = maild.sent_to("o.belova@torex.ru")
    assert "Мария Орлова переслал(а) ваше письмо" in ack.body
    assert not maild.sent_to("m.orlova@torex.ru")                # the forwarder gets no ack of her own
    with maild.session() as s:
        body = s.execute(text("SELECT body FROM entries WHERE type = 'message'")).scalar()
    assert "#от имени" not in body and "горит оранжевая лампа" in body
    # The department's answer reaches both.
    maild.sink.messages.clear()
    send(maild, PETROV, "Re: [#OSA-000001] Не печатает принтер", "Заменили картридж.", headers=TRUSTED_DKIM)
    assert maild.sent_to("o.belova@torex.ru") and maild.sent_to("m.orlova@torex.ru")


def test_an_unproven_or_outside_forward_is_the_forwarders_own_request(maild):
    # No proof of Orlova's mail: anyone could have written "От: Ольга" in a text.
    outcome = send(maild, ORLOVA, "Fwd: Не печатает принтер", GMAIL_FORWARD.format(command="#от имени"))
    assert outcome.disposition == "ticket-created"
    assert ticket(maild).email == "m.orlova@torex.ru"
    assert not maild.sent_to("o.belova@torex.ru")
    with maild.session() as s:
        events = [r[0] for r in s.execute(text("SELECT body FROM entries WHERE type = 'event'"))]
    assert any(e.startswith("«#от имени» не применена: письмо отправителя не подтверждено") for e in events)
    # A forwarded author outside the company is not an employee to file for.
    outside = GMAIL_FORWARD.format(command="#от имени").replace("o.belova@torex.ru", "olga@gmail.com")
    send(maild, ORLOVA, "Fwd: Не печатает принтер", outside, headers=TRUSTED_DKIM)
    assert ticket(maild, "OSA-000002").email == "m.orlova@torex.ru"
    assert not maild.sent_to("olga@gmail.com")


def test_a_crafted_forward_header_is_no_author_and_nothing_fails(maild):
    for junk in ("(" * 1500, "[mailto:" * 12000, " " * 80000 + "x"):
        body = "#от имени\n\n---------- Forwarded message ---------\nFrom: " + junk + "\n\nтекст"
        outcome = send(maild, ORLOVA, "Fwd: x", body, headers=TRUSTED_DKIM)
        assert outcome.disposition == "ticket-created"                     # the forwarder's own
    rows = send(maild, PETROV, "Fwd: x", "#новая\n\n---------- Forwarded message ---------\nFrom: " + "(" * 1500,
                headers=TRUSTED_DKIM)
    assert rows.disposition == "command-refused"
    assert "нет пересланного письма" in maild.sent_to("p.petrov@torex.ru")[-1].body


def test_what_a_forwarder_files_for_others_counts_in_their_hourly_budget(harness_factory):
    from dataclasses import replace
    h = harness_factory(configure=lambda cfg: replace(cfg, loop_guard=replace(cfg.loop_guard,
                                                                               new_tickets_per_sender_hour=2)))
    outcomes = [send(h, ORLOVA, "Fwd: Не печатает принтер",
                     GMAIL_FORWARD.format(command="#от имени").replace("o.belova", f"c{i}"), headers=TRUSTED_DKIM)
                for i in range(4)]
    assert [o.disposition for o in outcomes] == ["ticket-created"] * 2 + ["held-over-budget"] * 2


def test_a_staff_member_is_never_filed_for(maild):
    forged = GMAIL_FORWARD.format(command="#от имени").replace("Ольга Белова <o.belova@torex.ru>", PETROV)
    send(maild, ORLOVA, "Fwd: Не печатает принтер", forged, headers=TRUSTED_DKIM)
    assert ticket(maild).email == "m.orlova@torex.ru"
