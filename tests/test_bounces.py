"""Bounces find the exact mail they report on (VERP), and failures reach the department."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from maild.acting import store
from maild.acting.models import Inbound, Outbox, now

from conftest import CORPUS, mail, require_corpus

DSN = """From: MAILER-DAEMON@mx.example.net
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"
Message-ID: <dsn-{n}@mx.example.net>

--b1
Content-Type: text/plain

This is the mail system. Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; ivan@torex.ru
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--b1--
"""


def opened(h):
    """OSA-000001 with its ack sent; returns the ack as the relay saw it."""
    h.send(mail())
    h.drain()
    [ack] = h.sent_to("ivan@torex.ru")
    h.sink.messages.clear()
    return ack


def bounce(h, return_path: str, n: int = 1, action: str = "failed", status: str = "5.1.1",
           diagnostic: str = "550 5.1.1 <ivan@torex.ru>: user unknown"):
    raw = DSN.format(to=return_path, n=n, action=action, status=status, diagnostic=diagnostic)
    h.send(raw.replace("\n", "\r\n").encode(), rcpt=return_path, sender="")
    return h.drain()


def ack_row(h):
    with h.session() as s:
        return next(r for r in store.outbox_rows(s) if r.recipient == "ivan@torex.ru")


def test_every_mail_leaves_with_its_own_signed_return_path(maild):
    maild.send(mail())
    maild.drain()
    paths = {m.mail_from for m in maild.sink.messages}
    assert len(paths) == 3 and all(p.startswith("osticket+bounce.") and p.endswith("@torex.ru") for p in paths)


def test_a_bounce_fails_that_mail_notes_the_ticket_and_tells_the_department(maild):
    ack = opened(maild)
    summary = bounce(maild, ack.mail_from)
    [outcome] = summary.outcomes
    assert (outcome.disposition, outcome.ticket) == ("bounce-recorded", "OSA-000001")
    row = ack_row(maild)
    assert row.status == "failed" and "5.1.1" in row.last_error
    with maild.session() as s:
        t = store.ticket_with_entries(s, "OSA-000001")
        assert len(store.tickets(s)) == 1                      # no ticket for the bounce
    assert "не доставлено" in t.entries[-1].body and t.entries[-1].type == "event"
    told = [m for m in maild.sink.messages if "не доставлено" in m.subject.lower()]
    assert {r for m in told for r in m.rcpt_tos} == {"p.petrov@torex.ru", "a.sidorova@torex.ru"}
    assert "5.1.1" in told[0].body
    maild.sink.messages.clear()
    maild.drain()
    maild.worker().sender.report_failures()
    maild.drain()
    assert maild.sink.messages == []                            # told once


def test_a_delay_warning_only_notes_it(maild):
    ack = opened(maild)
    bounce(maild, ack.mail_from, action="delayed", status="4.4.1", diagnostic="451 4.4.1 try again later")
    assert ack_row(maild).status == "sent"
    with maild.session() as s:
        assert "задерживается" in store.ticket_with_entries(s, "OSA-000001").entries[-1].body


def test_a_forged_bounce_fails_nothing(maild):
    ack = opened(maild)
    forged = ack.mail_from.replace(ack.mail_from.split(".")[-2].split("@")[0][-10:], "0" * 10)
    summary = bounce(maild, forged)
    assert summary.outcomes[0].ticket is None and ack_row(maild).status == "sent"


def test_an_out_of_office_to_the_return_path_is_ignored(maild):
    ack = opened(maild)
    maild.send(mail(subject="Automatic reply: Не печатает принтер", sender="ivan@torex.ru",
                    headers={"Auto-Submitted": "auto-replied"}), rcpt=ack.mail_from)
    [outcome] = maild.drain().outcomes
    assert outcome.disposition == "auto-reply-ignored" and ack_row(maild).status == "sent"


def test_a_real_servers_bounce_from_the_corpus(maild):
    require_corpus()
    ack = opened(maild)
    raw = (CORPUS / "bounces" / "sisimai__lhost-exchange2007-01.eml").read_bytes()
    maild.send(raw, rcpt=ack.mail_from, sender="")
    [outcome] = maild.drain().outcomes
    assert outcome.disposition == "bounce-recorded" and "5.1.1" in outcome.reason
    assert ack_row(maild).status == "failed"


def test_a_5xx_from_the_relay_is_reported_to_the_department_once(maild):
    maild.sink.answers = {"ivan@torex.ru": "550 5.1.1 No such user"}
    maild.send(mail())
    maild.drain()
    assert ack_row(maild).status == "failed"
    told = [m for m in maild.sink.messages if "не доставлено" in m.subject.lower()]
    assert len(told) == 2 and "No such user" in told[0].body
    maild.drain()
    assert len([m for m in maild.sink.messages if "не доставлено" in m.subject.lower()]) == 2


def test_mail_that_waited_past_its_lifetime_fails_and_is_reported(maild):
    maild.app.config = replace(maild.app.config, relay=replace(maild.app.config.relay, lifetime=0))
    maild.sink.answers = {"ivan@torex.ru": "450 4.2.1 Mailbox busy"}
    maild.send(mail())
    maild.drain()
    row = ack_row(maild)
    assert row.status == "failed" and "gave up" in row.last_error
    assert any("не доставлено" in m.subject.lower() for m in maild.sent_to("p.petrov@torex.ru"))


def test_a_claim_left_by_a_dead_sender_is_sent_again(maild):
    maild.sink.answers = {"ivan@torex.ru": "450 4.2.1 later"}
    maild.send(mail())
    maild.drain()
    maild.sink.answers = {}
    with maild.app.sessions.begin() as s:          # as if a sender died after claiming it
        s.execute(update(Outbox).where(Outbox.recipient == "ivan@torex.ru")
                  .values(status="sending", next_attempt_at=now() - timedelta(minutes=20)))
    maild.drain()
    assert ack_row(maild).status == "sent" and len(maild.sent_to("ivan@torex.ru")) == 1
    with maild.session() as s:
        assert s.query(Inbound).count() == 1


def test_our_own_mail_coming_back_is_never_a_request(maild):
    """A client that resends what it got (or a forwarding loop) strips our loop header but
    keeps our Message-ID: still no ticket, no answer."""
    ack = opened(maild)
    raw = ack.raw.replace(b"X-Maild-Loop:", b"X-Old-Header:").replace(b"To: ", b"X-Was-To: ", 1)
    raw = raw.replace(b"From: ", b"From: ivan@torex.ru\r\nX-Was-From: ", 1)
    maild.send(raw, sender="ivan@torex.ru")
    [outcome] = maild.drain().outcomes
    assert outcome.disposition in ("auto-reply-ignored", "auto-reply-recorded") and "Message-ID" in outcome.reason
    assert maild.sink.messages == []


MDN = """From: ivan@torex.ru
To: {to}
Subject: Read: Не печатает принтер
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="m1"
Message-ID: <mdn-1@torex.ru>

--m1
Content-Type: text/plain

Your message was read.

--m1
Content-Type: message/disposition-notification

Final-Recipient: rfc822; ivan@torex.ru
Disposition: manual-action/MDN-sent-manually; displayed

--m1--
"""


def test_a_read_receipt_fails_nothing(maild):
    ack = opened(maild)
    maild.send(MDN.format(to=ack.mail_from).replace("\n", "\r\n").encode(), rcpt=ack.mail_from)
    [outcome] = maild.drain().outcomes
    assert outcome.disposition == "auto-reply-ignored" and "read receipt" in outcome.reason
    assert ack_row(maild).status == "sent" and maild.sink.messages == []


def test_a_success_report_fails_nothing(maild):
    ack = opened(maild)
    [outcome] = bounce(maild, ack.mail_from, action="delivered", status="2.0.0", diagnostic="250 ok").outcomes
    assert "delivered" in outcome.reason and ack_row(maild).status == "sent"
