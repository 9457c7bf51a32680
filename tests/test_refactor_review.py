"""Review of the decide/plan/apply refactor (222c819..): behaviour the old worker had that
the plan no longer reproduces. Each test passes on 222c819 (the old worker wrote as it
went, so its later reads saw its own earlier writes) and shows what changed.

Only the harness and SQL are used, so the same file runs against the old layout too."""
from __future__ import annotations

import email.utils

from sqlalchemy import text

from conftest import TRUSTED_DKIM, mail

PETROV = "Пётр Петров <p.petrov@torex.ru>"          # OSA
SIDOROVA = "a.sidorova@torex.ru"                     # OSA
BELOVA = "Ольга Белова <o.belova@torex.ru>"
REQUEST = "Добрый день! Принтер на 3 этаже не печатает."


def command(h, body: str, sender: str = PETROV, subject: str = "Re: [#OSA-000001] Не печатает принтер",
            headers: dict | None = TRUSTED_DKIM, rcpt: str = "osticket@torex.ru"):
    address = email.utils.parseaddr(sender)[1]
    h.send(mail(subject=subject, sender=sender, body=body, headers=headers), rcpt=rcpt, sender=address)
    return h.drain().outcomes[-1]


def receipt(h, to: str = "p.petrov@torex.ru"):
    [got] = [m for m in h.sent_to(to) if "Команды" in m.subject]
    return got


def rows(h, sql: str, **params) -> list:
    with h.app.engine.connect() as conn:
        return list(conn.execute(text(sql), params))


# -- a ticket a command mail opens (#новая), then named by a later line -------------------------
def test_canned_answer_after_new_names_the_real_ticket_number(maild):
    """Old: the canned answer was rendered after the ticket was written, so
    ``{{ ticket.number }}`` was OSA-000001. New: it is rendered while planning, on the
    planned ticket, and the employee (and the stored response) get the placeholder."""
    outcome = command(maild, f"#новая {BELOVA}\n#шаблон approval\n\nНужен доступ к 1С",
                      subject="Звонок: доступ к 1С")
    assert outcome.disposition == "command-applied" and outcome.ticket == "OSA-000001"
    answers = [m for m in maild.sent_to("o.belova@torex.ru") if "служебная записка" in m.body]
    assert answers, [m.subject for m in maild.sent_to("o.belova@torex.ru")]
    assert "OSA-000001" in answers[0].body
    assert "NNNNNN" not in answers[0].body
    [(body,)] = rows(maild, "SELECT body FROM entries WHERE type = 'response'")
    assert "OSA-000001" in body and "NNNNNN" not in body


def test_assigned_alert_after_new_carries_the_request(maild):
    """Old: ``#назначить`` below ``#новая`` read the new ticket's first message from the
    database (written a line above) and put it in the colleague's alert. New: a planned
    ticket has no first message (``Applying.first_words`` returns "")."""
    command(maild, f"#новая {BELOVA}\n#назначить sidorova\n\nНе работает мышь на ПК", subject="Звонок: мышь")
    [notice] = [m for m in maild.sent_to(SIDOROVA) if "назначена на вас" in m.subject]
    assert "Не работает мышь на ПК" in notice.body


# -- reads that no longer see the plan's own earlier operations ---------------------------------
def test_list_below_take_sees_the_ticket_just_taken(maild):
    """Old: ``#список мои`` below ``#взять`` listed the queue after the assignment was
    written. New: the queue is read from the database, without the plan's SetFields."""
    maild.send(mail(message_id="orig@torex.ru", body=REQUEST))
    maild.drain()
    maild.sink.messages.clear()
    outcome = command(maild, "#взять\n#список мои")
    assert outcome.disposition == "command-applied"
    assert "OSA-000001" in receipt(maild).body.split("мои", 1)[-1]
