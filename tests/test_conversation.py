"""SMTP conversations with the real intake, processed by the real worker, mail read back
from a real SMTP sink acting as the relay."""
from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import func, select

from maild.acting import store
from maild.acting.models import Entry, Inbound, Outbox, Ticket

from conftest import mail


def count(h, model, *where):
    with h.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_new_ticket_gets_number_ack_and_staff_alert(maild):
    assert maild.send(mail(message_id="first@torex.ru")) == {}
    summary = maild.drain()
    assert (summary.created, summary.sent) == (1, 3)

    with maild.session() as s:
        ticket = store.ticket_with_entries(s, "OSA-000001")
        assert ticket.subject == "Не печатает принтер"
        assert ticket.status == "open" and ticket.source == "email" and ticket.department == "OSA"
        assert (ticket.requester.email, ticket.requester.name) == ("ivan@torex.ru", "Иван Иванов")
        assert [e.type for e in ticket.entries] == ["message"]
        assert "Принтер на 3 этаже" in ticket.entries[0].body
        recorded = {r.recipient: r.message_id for r in store.outbox_rows(s)}

    [ack] = maild.sent_to("ivan@torex.ru")
    msg = ack.msg
    assert ack.subject == "[#OSA-000001] Не печатает принтер"
    assert msg["In-Reply-To"] == "<first@torex.ru>"
    assert "<first@torex.ru>" in msg["References"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"] == f"<{recorded['ivan@torex.ru']}>"
    assert "OSA-000001" in ack.body and "Здравствуйте, Иван Иванов" in ack.body
    assert ack.mail_from.startswith("osticket+bounce.") and ack.mail_from.endswith("@torex.ru")   # VERP

    for staff in ("p.petrov@torex.ru", "a.sidorova@torex.ru"):
        [alert] = maild.sent_to(staff)
        assert alert.msg["Auto-Submitted"] == "auto-generated"
        assert "Принтер на 3 этаже" in alert.body
    # The other department's staff hear nothing of it.
    assert maild.sent_to("s.kuznetsov@torex.ru") == [] and maild.sent_to("o.smirnova@torex.ru") == []


def test_numbers_are_per_department(maild):
    maild.send(mail(subject="Ошибка 1С", body="1С выдаёт ошибку при проведении документа.", to="osticket-1c@torex.ru"),
               rcpt="osticket-1c@torex.ru")
    maild.send(mail(subject="Принтер"))
    maild.send(mail(subject="Отчёт", body="Нужен новый отчёт по продажам в 1С.", to="osticket-1c@torex.ru"),
               rcpt="osticket-1c@torex.ru")
    maild.drain()
    with maild.session() as s:
        numbers = {t.subject: t.number for t in store.tickets(s)}
    assert numbers == {"Ошибка 1С": "DAB-000001", "Принтер": "OSA-000001", "Отчёт": "DAB-000002"}
    assert [m.subject for m in maild.sent_to("s.kuznetsov@torex.ru")] == [
        "[#DAB-000001] Новая заявка: Ошибка 1С", "[#DAB-000002] Новая заявка: Отчёт"]


@pytest.mark.parametrize("subject", [
    "RE: [#OSA-000001] Не печатает принтер",
    "Re: Fwd: AW: [osa-1] Не печатает принтер",
    "Ответ: [#OSA-01] ещё вопрос",
    "Re[2]: [# OSA-000001 ] уточнение",
])
def test_reply_threaded_by_subject_token(maild, subject):
    maild.send(mail())
    maild.drain()
    maild.send(mail(subject=subject, body="Всё ещё не печатает."))
    summary = maild.drain()
    assert (summary.created, summary.replies) == (0, 1)
    with maild.session() as s:
        ticket = store.ticket_with_entries(s, "OSA-000001")
        assert [e.body for e in ticket.entries][-1] == "Всё ещё не печатает."
    assert count(maild, Ticket) == 1
    assert len(maild.sent_to("ivan@torex.ru")) == 1   # the reply is not acknowledged again


def test_reply_threaded_by_references_without_token(maild):
    maild.send(mail())
    maild.drain()
    [ack] = maild.sent_to("ivan@torex.ru")
    reply = mail(subject="Re: ваше письмо", body="Спасибо, жду.",
                 headers={"In-Reply-To": ack.msg["Message-ID"], "References": ack.msg["Message-ID"]})
    maild.send(reply)
    assert maild.drain().replies == 1
    assert count(maild, Entry) == 2 and count(maild, Ticket) == 1


def test_staff_reply_to_alert_threads_by_references(maild):
    maild.send(mail())
    maild.drain()
    [alert] = maild.sent_to("p.petrov@torex.ru")
    maild.send(mail(subject="Re: alert", sender="p.petrov@torex.ru", body="Посмотрю.",
                    headers={"References": alert.msg["Message-ID"]}), sender="p.petrov@torex.ru")
    assert maild.drain().replies == 1


def test_token_of_unknown_ticket_opens_a_new_one(maild):
    maild.send(mail(subject="Re: [#OSA-000777] старая заявка"))
    assert maild.drain().created == 1


def test_duplicate_delivery_gives_one_entry(maild):
    raw = mail(message_id="same@torex.ru")
    maild.send(raw)
    maild.send(raw)                       # the client retried after a lost 250
    maild.drain()
    maild.send(raw)                       # and once more, after processing
    summary = maild.drain()
    assert summary.duplicates == 1
    assert count(maild, Ticket) == 1 and count(maild, Entry) == 1
    assert count(maild, Outbox, Outbox.kind == "ack") == 1


def test_one_message_to_both_addresses_is_one_ticket(maild):
    maild.send(mail(to="osticket@torex.ru, osticket-1c@torex.ru"),
               rcpt=["osticket@torex.ru", "osticket-1c@torex.ru"])
    maild.drain()
    assert count(maild, Ticket) == 1
    assert len(maild.sent_to("ivan@torex.ru")) == 1


@pytest.mark.parametrize("rcpt", ["OSTICKET@Torex.RU", "osticket+printer@torex.ru"])
def test_department_address_case_and_plus_tag(maild, rcpt):
    assert maild.send(mail(), rcpt=rcpt) == {}
    maild.drain()
    with maild.session() as s:
        assert [t.number for t in store.tickets(s)] == ["OSA-000001"]


def test_unknown_recipient_refused_550(maild):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        maild.send(mail(), rcpt="someone@torex.ru")
    code, reply = err.value.recipients["someone@torex.ru"]
    assert code == 550 and reply.startswith(b"5.1.1")
    assert maild.app.spool.pending() == 0


def test_oversize_refused_552(harness_factory):
    h = harness_factory(max_message_size=20_000)
    with pytest.raises(smtplib.SMTPException) as err:
        h.send(mail(body="х" * 30_000))
    assert err.value.smtp_code == 552 and b"5.3.4" in err.value.smtp_error
    assert h.app.spool.pending() == 0
    assert h.send(mail(body="коротко")) == {}        # the session and server go on


def test_spool_failure_answers_451_and_client_keeps_the_mail(maild, caplog):
    tmp = maild.app.spool.tmp
    tmp.rmdir()
    tmp.write_text("not a directory")             # root ignores permissions; this it cannot
    raw = mail(message_id="keep@torex.ru")
    # On PostgreSQL the shared spool is the database: it fails, and then the fallback directory.
    with maild.database_down(), caplog.at_level("INFO", logger="maild"), \
            pytest.raises(smtplib.SMTPDataError) as err:
        maild.send(raw)
    assert err.value.smtp_code == 451 and err.value.smtp_error.startswith(b"4.3.0")
    assert b"Traceback" not in err.value.smtp_error
    # The log says it in one line, with the cause; the traceback only at debug level.
    [line] = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "maild.receive"]
    assert "spool cannot be written" in line.getMessage() and "Not a directory" in line.getMessage()
    assert line.exc_info is None
    tmp.unlink()
    tmp.mkdir()
    assert maild.send(raw) == {}                  # the retry is accepted and becomes the ticket
    assert maild.drain().created == 1


def test_database_down_mail_waits_in_spool_then_processed_once(maild):
    maild.send(mail(message_id="before@torex.ru"))
    maild.drain()
    with maild.database_down():
        assert maild.send(mail(subject="Во время аварии", message_id="during@torex.ru")) == {}
        summary = maild.drain()
        assert summary.deferred_db == 1 and summary.processed == 0
        assert maild.app.spool.pending() == 1
    summary = maild.drain()
    assert summary.created == 1
    assert maild.drain().processed == 0          # nothing twice
    with maild.session() as s:
        assert [t.subject for t in store.tickets(s)] == ["Не печатает принтер", "Во время аварии"]


@pytest.mark.parametrize("headers,sender", [
    ({"Auto-Submitted": "auto-replied"}, "ivan@torex.ru"),
    ({"Precedence": "bulk"}, "ivan@torex.ru"),
    ({"Precedence": "auto_reply"}, "ivan@torex.ru"),
    ({"X-Autoreply": "yes"}, "ivan@torex.ru"),
    ({}, ""),                                       # null sender: a bounce
])
def test_automatic_mail_gets_no_acknowledgement(maild, headers, sender):
    maild.send(mail(subject="Out of office", headers=headers), sender=sender)
    summary = maild.drain()
    [outcome] = summary.outcomes
    assert outcome.disposition == ("bounce-recorded" if not sender else "auto-reply-ignored")
    assert outcome.ticket is None and summary.created == 0 and summary.sent == 0   # no ticket either
    assert maild.sink.messages == []


def test_auto_submitted_no_is_a_person(maild):
    maild.send(mail(headers={"Auto-Submitted": "no"}))
    maild.drain()
    assert len(maild.sent_to("ivan@torex.ru")) == 1


def test_relay_4xx_retries_later_5xx_fails_with_reason(maild):
    maild.sink.answers = {"a.sidorova@torex.ru": "450 4.2.1 Mailbox busy",
                          "p.petrov@torex.ru": "550 5.1.1 No such user"}
    maild.send(mail())
    summary = maild.drain()
    assert (summary.sent, summary.send_deferred, summary.send_failed) == (1, 1, 1)
    with maild.session() as s:
        rows = {r.recipient: r for r in store.outbox_rows(s)}
    busy, gone = rows["a.sidorova@torex.ru"], rows["p.petrov@torex.ru"]
    assert busy.status == "pending" and busy.attempts == 1 and "450" in busy.last_error
    assert busy.next_attempt_at > busy.created_at
    assert gone.status == "failed" and "550 5.1.1 No such user" in gone.last_error
    maild.sink.answers = {}
    assert maild.drain().sent == 0                  # not due yet: backoff
    assert len(maild.sink.messages) == 1


def test_attachments_stored_once_by_hash(maild):
    import email.message
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ivan@torex.ru", "osticket@torex.ru", "Скан"
    msg.set_content("Во вложении скан.")
    msg.add_attachment(b"%PDF-1.4 scan", maintype="application", subtype="pdf",
                       filename="Скан договора.pdf")
    maild.send(msg.as_bytes())
    # The same file again, in a reply to the ticket.
    maild.send(msg.as_bytes().replace(b"Subject: ", b"Message-ID: <other@x>\nSubject: [#OSA-1] "))
    maild.drain()
    with maild.session() as s:
        ticket = store.ticket_with_entries(s, "OSA-000001")
        names = [(a.filename, a.size) for e in ticket.entries for a in e.attachments]
        sha = ticket.entries[0].attachments[0].sha256
    assert names == [("Скан договора.pdf", 13)] * 2
    files = list(maild.app.config.attachments_dir.rglob(sha))
    assert len(files) == 1 and files[0].read_bytes() == b"%PDF-1.4 scan"


def test_raw_message_is_archived_and_rereadable(maild):
    raw = mail(message_id="archive@torex.ru")
    maild.send(raw)
    maild.drain()
    from maild.acting.models import Inbound
    from maild.intake import spool
    with maild.session() as s:
        row = s.scalars(select(Inbound)).one()
    envelope, stored = spool.read(maild.app.config.data_dir / row.archive_path)
    assert stored.replace(b"\r\n", b"\n").rstrip() == raw.replace(b"\r\n", b"\n").rstrip()
    assert envelope.mail_from == "ivan@torex.ru" and envelope.rcpt_to == ("osticket@torex.ru",)
    assert row.disposition == "ticket-created"


def test_department_can_override_a_template(maild, tmp_path):
    import shutil
    from dataclasses import replace

    from conftest import PROJECT
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT / "templates", templates)
    (templates / "DAB" / "ack.txt.j2").write_text(
        "Subject: ДАБ принял: {{ ticket.subject }}\n\nЗаявка {{ ticket.number }} принята ДАБ.\n",
        encoding="utf-8")
    maild.app.config = replace(maild.app.config, templates_dir=templates)
    maild.send(mail(subject="Ошибка 1С", body="1С выдаёт ошибку при проведении документа.", to="osticket-1c@torex.ru"),
               rcpt="osticket-1c@torex.ru")
    maild.send(mail(subject="Принтер"))
    maild.drain()
    subjects = sorted(m.subject for m in maild.sent_to("ivan@torex.ru"))
    assert subjects == ["[#DAB-000001] ДАБ принял: Ошибка 1С", "[#OSA-000001] Принтер"]
    [dab] = [m for m in maild.sent_to("ivan@torex.ru") if "DAB" in m.subject]
    assert dab.body.strip() == "Заявка DAB-000001 принята ДАБ."


def test_header_injection_through_subject_is_impossible(maild):
    raw = (b"From: ivan@torex.ru\r\nTo: osticket@torex.ru\r\nMessage-ID: <inj@torex.ru>\r\n"
           b"Subject: =?utf-8?q?hello=0D=0ABcc:_victim@example.com?=\r\n\r\nbody\r\n")
    maild.send(raw)
    maild.drain()
    [ack] = maild.sent_to("ivan@torex.ru")
    assert ack.msg["Bcc"] is None and ack.rcpt_tos == ["ivan@torex.ru"]
    assert "victim@example.com" in ack.subject     # kept as text, on the subject line


def test_processing_failure_retried_then_quarantined_queue_keeps_flowing(maild, tmp_path):
    from dataclasses import replace
    empty = tmp_path / "no-templates"
    empty.mkdir()
    maild.app.config = replace(maild.app.config, templates_dir=empty)   # every ack now fails
    maild.send(mail(subject="needs an ack", message_id="fails@torex.ru"))
    maild.send(mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    first = maild.drain()
    assert first.processed == 1 and first.retried == 1      # the robot's mail went through
    second, third = maild.drain(), maild.drain()
    assert (second.retried, third.quarantined) == (1, 1)
    [(item, reason)] = maild.app.spool.quarantined()
    assert "failed 3 times" in reason and "TemplateMissing" in reason and "ack.txt.j2" in reason
    assert b"Message-ID: <fails@torex.ru>" in (maild.app.spool.quarantine / item).read_bytes()  # kept whole
    with maild.session() as s:
        assert store.tickets(s) == []
        assert [r.disposition for r in s.query(Inbound)] == ["auto-reply-ignored"]
