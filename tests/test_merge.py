"""Merging (issue 17): ``#объединить`` moves a repeated ticket's letters, files and people
into the named one; the merged ticket's requester is told once; a later reply to the merged
ticket lands on the surviving one; refused across departments, into a closed ticket, and
without ``да`` when the requesters differ. Through the real daemon on both databases."""
from __future__ import annotations

import email.message

from sqlalchemy import text

from conftest import TRUSTED_DKIM, mail

IVAN = "Иван Иванов <ivan@torex.ru>"
OLGA = "Ольга Белова <o.belova@torex.ru>"
PETROV = "Пётр Петров <p.petrov@torex.ru>"


def write(h, sender, subject, body, rcpt="osticket@torex.ru", headers=None, raw=None):
    address = sender.split("<")[-1].rstrip(">")
    h.send(raw or mail(subject=subject, sender=sender, body=body, headers=headers), rcpt=rcpt, sender=address)
    return h.drain().outcomes[-1]


def with_file(subject: str, body: str) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = IVAN, "osticket@torex.ru", subject
    msg["Message-ID"] = "<second@torex.ru>"
    msg.set_content(body)
    msg.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="screen.png")
    return msg.as_bytes()


def tickets(h) -> dict[str, tuple]:
    with h.session() as s:
        rows = s.execute(text("SELECT t.number, t.status, t.resolution, m.number FROM tickets t "
                              "LEFT JOIN tickets m ON m.id = t.merged_into ORDER BY t.id")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def entries_of(h, number: str) -> list[tuple[str, str]]:
    with h.session() as s:
        return [tuple(r) for r in s.execute(text(
            "SELECT e.type, e.body FROM entries e JOIN tickets t ON t.id = e.ticket_id "
            "WHERE t.number = :n ORDER BY e.id"), {"n": number})]


def merge(h, number: str, into: str, extra: str = ""):
    return write(h, PETROV, f"Re: [#{number}] x", f"#объединить {into}{extra}", headers=TRUSTED_DKIM)


def test_a_repeat_is_merged_its_requester_told_once_and_a_later_reply_lands_on_the_survivor(maild):
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(maild, IVAN, "Принтер опять", "", raw=with_file("Принтер опять", "Всё ещё не печатает, снимок во вложении."))
    maild.sink.messages.clear()
    outcome = merge(maild, "OSA-000002", "OSA-1")            # any spelling of the number
    assert outcome.disposition == "command-applied"
    assert tickets(maild) == {"OSA-000001": ("open", None, None), "OSA-000002": ("closed", "merged", "OSA-000001")}
    kept = entries_of(maild, "OSA-000001")
    assert ("message", "Всё ещё не печатает, снимок во вложении.") in kept
    assert any(kind == "event" and "OSA-000002" in body for kind, body in kept)
    with maild.session() as s:
        where = s.execute(text("SELECT t.number FROM attachments a JOIN entries e ON e.id = a.entry_id "
                               "JOIN tickets t ON t.id = e.ticket_id WHERE a.filename = 'screen.png'")).scalar()
    assert where == "OSA-000001"                              # the file went with its letter
    told = maild.sent_to("ivan@torex.ru")
    assert len(told) == 1 and "объединена с заявкой OSA-000001" in told[0].body
    # Ivan answers the mail about OSA-000002 (its token, its Message-ID): it lands on OSA-000001.
    maild.sink.messages.clear()
    reply = write(maild, IVAN, "Re: [#OSA-000002] Принтер опять", "Теперь горит красная лампа.",
                  headers={"In-Reply-To": told[0].msg["Message-ID"]})
    assert (reply.disposition, reply.ticket) == ("reply-added", "OSA-000001")
    reply = write(maild, IVAN, "Re: [#OSA-000002] Принтер опять", "И бумага замялась.")
    assert (reply.disposition, reply.ticket) == ("reply-added", "OSA-000001")
    assert ("message", "И бумага замялась.") in entries_of(maild, "OSA-000001")
    assert tickets(maild)["OSA-000002"] == ("closed", "merged", "OSA-000001")      # not reopened


def test_different_requesters_need_a_yes_and_then_both_hear_the_answers(maild):
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(maild, OLGA, "Принтер на 3 этаже", "У нас тоже не печатает принтер на третьем.")
    maild.sink.messages.clear()
    refused = merge(maild, "OSA-000002", "OSA-000001")
    assert refused.disposition == "command-refused"
    [receipt] = maild.sent_to("p.petrov@torex.ru")
    assert "разные заявители" in receipt.body and "#объединить OSA-000001 да" in receipt.body
    assert tickets(maild)["OSA-000002"] == ("open", None, None)
    assert not maild.sent_to("o.belova@torex.ru")                                   # nothing to her
    maild.sink.messages.clear()
    assert merge(maild, "OSA-000002", "OSA-000001", " да").disposition == "command-applied"
    assert len(maild.sent_to("o.belova@torex.ru")) == 1
    maild.sink.messages.clear()
    write(maild, PETROV, "Re: [#OSA-000001] Не печатает принтер", "Заменили фьюзер, проверьте.",
          headers=TRUSTED_DKIM)
    assert maild.sent_to("ivan@torex.ru") and maild.sent_to("o.belova@torex.ru")


def test_refused_across_departments_into_a_closed_ticket_and_into_itself(maild):
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(maild, IVAN, "Принтер опять", "Всё ещё не печатает.")
    write(maild, IVAN, "Отчёт в 1С", "Не формируется отчёт по складу.", rcpt="osticket-1c@torex.ru")
    write(maild, PETROV, "Re: [#OSA-000001] x", "#закрыть", headers=TRUSTED_DKIM)
    for into, reason in (("DAB-000001", "в другом отделе"), ("OSA-000001", "закрыта"),
                         ("OSA-000002", "это та же заявка"), ("OSA-000099", "нет такой заявки")):
        maild.sink.messages.clear()
        assert merge(maild, "OSA-000002", into).disposition == "command-refused", into
        assert reason in maild.sent_to("p.petrov@torex.ru")[0].body, into
    assert tickets(maild)["OSA-000002"] == ("open", None, None)
    assert not [m for m in maild.sink.messages if "ivan@torex.ru" in m.rcpt_tos]


def test_a_forged_merge_changes_nothing(maild):
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(maild, OLGA, "Принтер", "И у нас.")
    write(maild, PETROV, "Re: [#OSA-000002] x", "#объединить OSA-000001 да")       # no proof of Petrov
    assert tickets(maild)["OSA-000002"] == ("open", None, None)


def test_a_second_mail_about_the_same_problem_is_offered_as_a_repeat_never_merged(maild):
    write(maild, IVAN, "Не печатает принтер в 305", "Принтер в кабинете 305 не печатает, горит ошибка.")
    write(maild, OLGA, "Не печатает принтер в 305", "Принтер в кабинете 305 не печатает.")    # another person
    write(maild, IVAN, "Сломалась мышь", "Мышь не двигается курсор.")                           # another problem
    maild.sink.messages.clear()
    outcome = write(maild, IVAN, "Принтер 305 так и не печатает", "Принтер в 305 всё ещё не печатает.")
    assert outcome.disposition == "ticket-created" and outcome.ticket == "OSA-000004"
    alert = maild.sent_to("p.petrov@torex.ru")[0].body
    assert "Похоже на повтор заявки OSA-000001" in alert and "#объединить OSA-000001" in alert
    assert tickets(maild)["OSA-000004"] == ("open", None, None)                 # offered, not merged
    maild.sink.messages.clear()
    write(maild, IVAN, "Монитор мерцает", "Монитор мерцает и гаснет.")
    assert "Похоже на повтор" not in maild.sent_to("p.petrov@torex.ru")[0].body
    # The alert's line does what it says: answered with it, the repeat is merged.
    maild.sink.messages.clear()
    assert merge(maild, "OSA-000004", "OSA-000001").disposition == "command-applied"
    assert tickets(maild)["OSA-000004"] == ("closed", "merged", "OSA-000001")


def test_a_staff_reply_to_the_merged_tickets_signed_address_still_proves_them(maild):
    from maild.deciding import auth
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(maild, IVAN, "Принтер опять", "Всё ещё не печатает.")
    merge(maild, "OSA-000002", "OSA-000001")
    maild.sink.messages.clear()
    signed = auth.signed_address(maild.worker().secret, "osticket@torex.ru", "OSA-000002", "p.petrov@torex.ru")
    maild.send(mail(subject="Re: [#OSA-000002] Принтер опять", sender=PETROV, body="Заменили картридж."),
               rcpt=signed, sender="p.petrov@torex.ru")
    outcome = maild.drain().outcomes[-1]
    assert (outcome.disposition, outcome.ticket) == ("response-added", "OSA-000001")
    assert maild.sent_to("ivan@torex.ru")
    # An address signed for a ticket that was not merged into this one proves nothing.
    write(maild, IVAN, "Мышь", "Мышь не работает.")
    maild.sink.messages.clear()
    other = auth.signed_address(maild.worker().secret, "osticket@torex.ru", "OSA-000003", "p.petrov@torex.ru")
    maild.send(mail(subject="Re: [#OSA-000001] Принтер", sender=PETROV, body="Ответ."), rcpt=other,
               sender="p.petrov@torex.ru")
    assert maild.drain().outcomes[-1].disposition != "response-added"


def test_after_a_merge_the_mail_acts_on_nothing_else_and_its_words_go_to_the_survivor(maild):
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(maild, IVAN, "Принтер опять", "Всё ещё не печатает.")
    write(maild, IVAN, "Монитор", "Монитор мерцает.")
    refused = write(maild, PETROV, "Re: [#OSA-000002] x", "#объединить OSA-000001\n#объединить OSA-000003",
                    headers=TRUSTED_DKIM)
    assert refused.disposition == "command-refused"
    assert "уже объединена выше" in maild.sent_to("p.petrov@torex.ru")[-1].body
    for second in ("#открыть", "#передать ДАБ"):
        assert write(maild, PETROV, "Re: [#OSA-000002] x", f"#объединить OSA-000001\n{second}",
                     headers=TRUSTED_DKIM).disposition == "command-refused"
    assert tickets(maild)["OSA-000002"] == ("open", None, None)
    maild.sink.messages.clear()
    write(maild, PETROV, "Re: [#OSA-000002] x", "#объединить OSA-000001\nЭто та же проблема, ждите мастера.",
          headers=TRUSTED_DKIM)
    assert ("response", "Это та же проблема, ждите мастера.") in entries_of(maild, "OSA-000001")
    [told] = maild.sent_to("ivan@torex.ru")
    assert "ждите мастера" in told.body and "объединена с заявкой OSA-000001" in told.body


def test_a_ticket_with_participants_needs_a_yes_too(maild):
    """Its participants would join the other ticket and read it: a forwarder of #от имени too."""
    write(maild, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    maild.send(mail(subject="Принтер опять", sender=IVAN, body="Всё ещё не печатает.",
                    headers={"Cc": OLGA, **TRUSTED_DKIM}), sender="ivan@torex.ru")
    maild.drain()
    refused = merge(maild, "OSA-000002", "OSA-000001")
    assert refused.disposition == "command-refused"
    assert merge(maild, "OSA-000002", "OSA-000001", " да").disposition == "command-applied"
