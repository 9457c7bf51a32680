"""Identity and confidentiality (issue 12), through the real daemon over SMTP: each test is a
property, tried on its variants; every mail that leaves is inspected for the secret text."""
from __future__ import annotations

import email.utils

import pytest

from maild.acting import store

from conftest import TRUSTED_DKIM, mail

PETROV = "Пётр Петров <p.petrov@torex.ru>"
SECRET = "Временный пароль Qx7-секрет-42"


def opened(h, cc: str | None = None, headers: dict | None = None):
    """OSA-000001, opened by ivan@torex.ru; the outgoing mail so far forgotten."""
    h.send(mail(message_id="orig@torex.ru", body="Добрый день! Принтер на 3 этаже не печатает.",
                headers={**({"Cc": cc} if cc else {}), **(headers or {})}))
    h.drain()
    h.sink.messages.clear()


def staff_mail(h, body: str, html: str | None = None, headers: dict | None = TRUSTED_DKIM):
    raw = mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=PETROV, body=body, headers=headers)
    if html is not None:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        msg.set_content(html, subtype="html")
        raw = msg.as_bytes()
    h.send(raw, sender="p.petrov@torex.ru")
    return h.drain().outcomes[-1]


def leaked(h, secret: str = SECRET) -> list[str]:
    """Everyone outside OSA's staff who got a mail holding the secret."""
    staff = {"p.petrov@torex.ru", "a.sidorova@torex.ru"}
    return sorted({rcpt for m in h.sink.messages if secret in m.body or secret in m.subject
                   for rcpt in m.rcpt_tos if rcpt not in staff})


def public_entries(h, number: str = "OSA-000001") -> list[str]:
    with h.session() as s:
        t = store.ticket_with_entries(s, number)
        return [e.body for e in t.entries if e.type in ("message", "response")]


# -- internal notes never leak through invisible characters ------------------------------------
INVISIBLE_BEFORE = ["\ufeff", "\u200b", "\u200c", "\u200d", "\u2060", "\u200e", "\u200f", "\u00ad", "\u180e",
                    "\u202a", "\u2066"]
SPACES_AFTER = ["\u00a0", "\u2002", "\u2003", "\u2009", "\u202f", "\u3000", "\t"]
FORMS = ["#заметка:", "# заметка", "#Заметка", "#ЗАМЕТКА", "#note", "＃заметка", "\\#заметка"]


@pytest.mark.parametrize("variant", [c + "#заметка " for c in INVISIBLE_BEFORE]
                         + ["#заметка" + s for s in SPACES_AFTER] + [f + " " for f in FORMS],
                         ids=lambda v: v.encode("unicode_escape").decode())
def test_a_note_is_a_note_however_its_command_line_is_typed(maild, variant):
    opened(maild)
    outcome = staff_mail(maild, f"{variant}{SECRET}")
    assert leaked(maild) == [], outcome.reason
    assert all(SECRET not in body for body in public_entries(maild))
    assert outcome.disposition == "command-applied", outcome.reason


@pytest.mark.parametrize("first", ["#заметка:" + SECRET, "#заметк " + SECRET, "# " + SECRET,
                                   "#" + SECRET, "\u200b#заметкa " + SECRET])   # the last with a Latin "a"
def test_a_command_like_first_line_not_understood_sends_nothing_to_the_requester(maild, first):
    opened(maild)
    outcome = staff_mail(maild, first + "\n\nещё текст")
    assert leaked(maild) == [], outcome.reason
    assert outcome.disposition == "command-refused", outcome.reason
    receipts = [m for m in maild.sent_to("p.petrov@torex.ru") if "Команды" in m.subject]
    assert receipts, "the staff member is told why nothing happened"
    assert all(SECRET not in body for body in public_entries(maild))


def test_a_note_in_html_after_a_nbsp_stays_internal(maild):
    opened(maild)
    outcome = staff_mail(maild, "#заметка " + SECRET, html=f"<p>&nbsp;#заметка&nbsp;{SECRET}</p>")
    assert leaked(maild) == [], outcome.reason
    assert all(SECRET not in body for body in public_entries(maild))


# -- a forged requester reply cannot widen who receives the ticket's mail -----------------------
@pytest.mark.parametrize("how", ["Cc", "To", "many"])
def test_an_unproven_mail_adds_its_text_but_recruits_nobody(maild, how):
    opened(maild)
    copies = {"Cc": {"Cc": "o.belova@torex.ru"}, "To": {},
              "many": {"Cc": ", ".join(f"u{i}@torex.ru" for i in range(300)) + ", o.belova@torex.ru"}}[how]
    to = "osticket@torex.ru, o.belova@torex.ru" if how == "To" else "osticket@torex.ru"
    forged = mail(subject="Re: [#OSA-000001] Не печатает принтер", body="Добавьте коллегу.", headers=copies, to=to)
    maild.send(forged)                     # From: ivan@torex.ru, proved by nothing
    maild.drain()
    with maild.session() as s:
        t = store.ticket_with_entries(s, "OSA-000001")
        assert t.participants == []
        assert any(e.type == "message" and "Добавьте коллегу" in e.body for e in t.entries)
        assert any(e.type == "event" and e.body.startswith("В копию не добавлены") for e in t.entries)
    maild.sink.messages.clear()
    staff_mail(maild, SECRET)               # the department's answer ...
    assert leaked(maild) == ["ivan@torex.ru"]   # ... goes to the requester alone


def test_a_proven_copy_joins_the_requester_is_told_and_a_ticket_has_a_cap(harness_factory):
    from dataclasses import replace
    h = harness_factory(configure=lambda c: replace(c, tickets=replace(c.tickets, max_participants=2)))
    opened(h)
    h.send(mail(subject="Re: [#OSA-000001] x", sender="Ольга Белова <o.belova@torex.ru>", body="Я тоже жду.",
                headers=TRUSTED_DKIM), sender="o.belova@torex.ru")       # not yet a participant: a stranger
    h.drain()
    h.send(mail(subject="Re: [#OSA-000001] x", body="Коллеги в копии.",
                headers={**TRUSTED_DKIM, "Cc": "a@torex.ru, b@torex.ru, c@torex.ru"}))
    h.drain()
    with h.session() as s:
        t = store.ticket_with_entries(s, "OSA-000001")
        assert sorted(p.person.email for p in t.participants) == ["a@torex.ru", "b@torex.ru"]
        assert any(e.type == "event" and "не больше 2" in e.body and "c@torex.ru" in e.body for e in t.entries)
    # The requester added them: no notice; a staff member's #копия tells the requester.
    assert not [m for m in h.sent_to("ivan@torex.ru") if "добавлены участники" in m.subject]
    h.send(mail(subject="Re: [#OSA-000001] x", sender=PETROV, body="#копия убрать b@torex.ru\n"
                "#копия добавить d@torex.ru", headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    h.drain()
    [notice] = [m for m in h.sent_to("ivan@torex.ru") if "добавлены участники" in m.subject]
    assert "d@torex.ru" in notice.body and "Пётр Петров" in notice.body


# -- a signed reply address alone is no staff authority -----------------------------------------
def signed(h, ticket="OSA-000001", who="p.petrov@torex.ru", day=None):
    from maild.deciding import auth
    return auth.signed_address(h.worker().secret, "osticket@torex.ru", ticket, who, day)


def test_a_signed_address_through_the_relay_answers_the_requester(maild):
    opened(maild)
    maild.send(mail(subject="Re: [#OSA-000001] x", sender=PETROV, body=SECRET), rcpt=signed(maild),
               sender="p.petrov@torex.ru")
    [outcome] = maild.drain().outcomes
    assert outcome.disposition == "response-added", outcome.reason
    assert leaked(maild) == ["ivan@torex.ru"]


@pytest.mark.parametrize("case", ["from elsewhere", "expired", "tomorrow", "other ticket", "other person",
                                  "envelope"])
def test_a_known_signed_address_gives_no_authority(maild, case):
    from maild.deciding import auth
    opened(maild)
    rcpt, source, envelope = signed(maild), "127.0.0.2", "p.petrov@torex.ru"
    if case == "expired":
        rcpt, source = signed(maild, day=auth.today() - 61), None
    elif case == "tomorrow":
        rcpt, source = signed(maild, day=auth.today() + 1), None
    elif case == "other ticket":
        rcpt, source = signed(maild, ticket="OSA-000002"), None
    elif case == "other person":
        rcpt, source = signed(maild, who="a.sidorova@torex.ru"), None
    elif case == "envelope":
        source, envelope = None, "ivan@torex.ru"
    maild.send(mail(subject="Re: [#OSA-000001] x", sender=PETROV, body=SECRET), rcpt=rcpt, sender=envelope,
               source=source)
    outcome = maild.drain().outcomes[-1]
    assert leaked(maild) == [], outcome.reason
    assert outcome.disposition not in ("response-added", "command-applied"), outcome.reason
    with maild.session() as s:
        t = store.ticket_with_entries(s, "OSA-000001")
        flagged = [e for e in t.entries if SECRET in e.body]
        assert all(e.unauthenticated or e.type == "message" for e in flagged), [(e.type, e.body) for e in flagged]


# -- a pass for a domain is not proof of the person ------------------------------------------------
@pytest.mark.parametrize("header,envelope", [
    ("mx.torex.ru; spf=pass smtp.mailfrom=ivan@torex.ru", "ivan@torex.ru"),          # someone else's envelope
    ("mx.torex.ru; spf=pass smtp.mailfrom=p.petrov@torex.ru", "ivan@torex.ru"),      # header disagrees with it
    ("mx.torex.ru; spf=pass smtp.helo=torex.ru", "p.petrov@torex.ru"),               # HELO names no person
    ("mx.torex.ru; dkim=pass header.d=ru", "p.petrov@torex.ru"),                     # a bare TLD
    ("mx.torex.ru; dkim=pass header.d=com.ru", "p.petrov@torex.ru"),                 # a public suffix
    ("mx.torex.ru; dkim=pass header.d=torex.ru.evil.example", "p.petrov@torex.ru"),
    ("mx.torex.ru; dkim=pass header.d=evil-torex.ru", "p.petrov@torex.ru"),
    ("mx.torex.ru; dkim=fail header.d=torex.ru", "p.petrov@torex.ru"),
])
def test_a_domain_level_pass_is_not_proof_of_the_person(maild, header, envelope):
    opened(maild)
    outcome = staff_mail_with(maild, header, envelope)
    assert leaked(maild) == [], outcome.reason
    assert outcome.disposition != "response-added", outcome.reason


def test_an_authentication_results_header_counts_only_from_the_relay(maild):
    opened(maild)
    outcome = staff_mail_with(maild, TRUSTED_DKIM["Authentication-Results"], "p.petrov@torex.ru",
                              source="127.0.0.2")
    assert leaked(maild) == [] and outcome.disposition != "response-added", outcome.reason
    assert "company relay" in outcome.reason
    ok = staff_mail_with(maild, TRUSTED_DKIM["Authentication-Results"], "p.petrov@torex.ru")
    assert ok.disposition == "response-added", ok.reason                  # the same mail via the relay


@pytest.mark.parametrize("header", ["mx.torex.ru; spf=pass smtp.mailfrom=p.petrov@torex.ru",
                                    "mx.torex.ru; dkim=pass header.d=mail.torex.ru"])
def test_an_aligned_pass_for_the_person_proves_them(maild, header):
    opened(maild)
    outcome = staff_mail_with(maild, header, "p.petrov@torex.ru")
    assert outcome.disposition == "response-added", outcome.reason


def staff_mail_with(h, header: str, envelope: str, source: str | None = None):
    h.send(mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=PETROV, body=SECRET,
                headers={"Authentication-Results": header}), sender=envelope, source=source)
    return h.drain().outcomes[-1]


# -- what people read from the command line is what happened, and is safe ----------------------
def cli(h, *args):
    from click.testing import CliRunner

    from maild.admin.cli import main
    cfg = h.app.config
    return CliRunner().invoke(main, ["--data-dir", str(cfg.data_dir), "--db", cfg.db_url, *args])


def test_forged_staff_mail_is_marked_wherever_it_is_shown(maild):
    import json
    opened(maild)
    maild.send(mail(subject="Re: [#OSA-000001] x", sender=PETROV, body="Всё исправлено, закрываю."),
               sender="p.petrov@torex.ru", source="127.0.0.2")
    maild.drain()
    text = cli(maild, "tickets", "show", "OSA-000001").output
    assert "UNAUTHENTICATED" in text
    shown = json.loads(cli(maild, "tickets", "show", "OSA-000001", "--json").output)
    forged = [e for e in shown["entries"] if "Всё исправлено" in e["body"]]
    assert forged and all(e["unauthenticated"] for e in forged)
    assert not any(e["unauthenticated"] for e in shown["entries"] if e not in forged)


@pytest.mark.parametrize("evil", ["\x1b]0;pwned\x07", "\x1b[2J", "\x9b31m", "\u202etxt.exe", "\x00", "\x08\x08"])
def test_terminal_output_never_carries_control_sequences_from_mail(maild, evil):
    import json
    maild.send(mail(subject=f"Принтер {evil} не печатает", body=f"Текст {evil} конец",
                    sender=f"Иван{evil} <ivan@torex.ru>"))
    maild.drain()
    for args in (("tickets", "show", "OSA-000001"), ("tickets", "list"), ("log",), ("log", "--json"),
                 ("tickets", "show", "OSA-000001", "--json")):
        out = cli(maild, *args).output
        unsafe = [c for c in out if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f
                  or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
        assert unsafe == [], (args, repr(out[:300]))
    shown = json.loads(cli(maild, "tickets", "show", "OSA-000001", "--json").output)
    assert shown["subject"].startswith("Принтер")       # JSON still decodes to the text as received


# -- From as mail clients show it ---------------------------------------------------------------
@pytest.mark.parametrize("shown", ["ivan@torex.ru <evil@torex.ru>", '"ivan@torex.ru" <evil@torex.ru>',
                                   "ivan@torex.ru (comment) <evil@torex.ru>", "ivan\uff20torex.ru <evil@torex.ru>",
                                   '"p.petrov@torex.ru via evil@torex.ru" <evil@torex.ru>',
                                   "p.petrov@torex.ru <evil@torex.ru>"])
def test_an_address_as_display_name_is_the_real_address_with_a_warning(maild, shown):
    maild.send(mail(sender=shown, headers={**TRUSTED_DKIM, "Cc": "o.belova@torex.ru"}), sender="evil@torex.ru")
    [outcome] = maild.drain().outcomes
    with maild.session() as s:
        [t] = store.tickets(s)
        t = store.ticket_with_entries(s, t.number)
        assert t.requester.email == "evil@torex.ru", outcome.reason       # filed as who really wrote
        assert t.participants == []
    [alert] = maild.sent_to("p.petrov@torex.ru")
    assert "ВНИМАНИЕ" in alert.body and "evil@torex.ru" in alert.body
    assert maild.sent_to("ivan@torex.ru") == []


# -- a reused Message-ID drops nobody's request -------------------------------------------------
def test_the_same_message_id_from_someone_else_is_processed_not_dropped(maild, caplog):
    maild.send(mail(message_id="guessable@torex.ru", subject="Не печатает", sender="o.belova@torex.ru"),
               sender="o.belova@torex.ru")
    maild.send(mail(message_id="guessable@torex.ru", subject="Нет интернета", body="Нет интернета в 305."))
    with caplog.at_level("WARNING", logger="maild.security"):
        outcomes = maild.drain().outcomes
    assert [o.disposition for o in outcomes] == ["ticket-created", "ticket-created"]
    assert any("reused" in r.message for r in caplog.records)
    with maild.session() as s:
        assert sorted(t.requester.email for t in store.tickets(s)) == ["ivan@torex.ru", "o.belova@torex.ru"]
    # The same sender again (an SMTP retry) is the duplicate it always was.
    maild.send(mail(message_id="guessable@torex.ru", subject="Нет интернета", body="Нет интернета в 305."))
    assert [o.disposition for o in maild.drain().outcomes] == ["duplicate"]


# -- addresses maild could never store or answer are refused in the dialogue --------------------
@pytest.mark.parametrize("address", [b"iv\xffan@torex.ru", b"ivan\x01@torex.ru", b"ivan\x7f@torex.ru",
                                     b"iv\xc2\x9ban@torex.ru", b"ivan\x00@torex.ru"])
def test_a_raw_or_control_byte_in_mail_from_is_refused(maild, address):
    import socket
    s = socket.create_connection(("127.0.0.1", maild.port), timeout=10)
    s.recv(1024)
    s.sendall(b"EHLO x\r\n")
    while b"250 " not in s.recv(4096):
        pass
    s.sendall(b"MAIL FROM:<" + address + b">\r\n")
    reply = s.recv(1024)
    s.close()
    assert reply[:1] == b"5", reply
    assert maild.drain().processed == 0
    assert cli(maild, "log", "--json").exit_code == 0


# -- maild never mails an address it could be tricked into relaying, nor itself -----------------
@pytest.mark.parametrize("sender", ["victim%evil.example@torex.ru", '"victim@evil.example"@torex.ru',
                                    "user!evil.example!victim@torex.ru"])
def test_no_acknowledgement_to_a_relay_trick_address(maild, sender):
    maild.send(mail(sender=sender), sender="relay@torex.ru")
    maild.drain()
    assert all(not any("evil" in r for r in m.rcpt_tos) for m in maild.sink.messages)
    assert all("%" not in r and "!" not in r and '"' not in r for m in maild.sink.messages for r in m.rcpt_tos)


@pytest.mark.parametrize("sender", ["osticket@torex.ru", "osticket-1c@torex.ru", "OSTICKET+printer@torex.ru"])
def test_a_helpdesk_address_is_never_a_requester(maild, sender):
    maild.send(mail(sender=sender), sender=sender)
    [outcome] = maild.drain().outcomes
    assert outcome.disposition == "refused-own-address"
    with maild.session() as s:
        assert store.tickets(s) == []
    assert maild.sink.messages == []


def test_a_database_outage_is_logged_when_it_starts_and_ends_not_every_poll(maild, caplog):
    worker = maild.worker()
    maild.send(mail())
    with caplog.at_level("WARNING", logger="maild.worker"):
        with maild.database_down():
            for _ in range(5):
                worker.drain()
        summary = worker.drain()
    lines = [r.message for r in caplog.records if r.name == "maild.worker"]
    assert sum("unavailable" in line for line in lines) == 1, lines
    assert sum("reachable again" in line for line in lines) == 1, lines
    assert summary.created == 1


def test_a_flood_from_one_sender_makes_a_few_tickets_and_one_alert(harness_factory):
    from dataclasses import replace
    h = harness_factory(configure=lambda c: replace(c, loop_guard=replace(c.loop_guard, new_tickets_per_sender_hour=3)))
    for i in range(8):
        h.send(mail(subject=f"Не печатает {i}"))
    outcomes = h.drain().outcomes
    assert [o.disposition for o in outcomes].count("ticket-created") == 3
    assert [o.disposition for o in outcomes].count("held-over-budget") == 5
    with h.session() as s:
        assert len(store.tickets(s)) == 3
    alerts = h.sent_to("p.petrov@torex.ru")
    assert len([m for m in alerts if "Слишком много" in m.subject]) == 1
    assert len([m for m in alerts if "Новая заявка" in m.subject]) == 3
    assert len(h.sent_to("ivan@torex.ru")) == 3                       # acknowledgements of the three
    held = cli(h, "log", "--json")
    assert held.exit_code == 0 and held.output.count("held-over-budget") == 5


# -- the hostile tester's note-leak forms (review of this change): decided on what the reader sees
QP_PAD = "=20" * 300


@pytest.mark.parametrize("body", [
    "> старое письмо\n\n#заметка " + SECRET,
    "Отправлено с iPhone\n#заметка " + SECRET,
    " " * 600 + "\n#заметка " + SECRET,
    "\u200b" * 600 + "#заметка " + SECRET,
    "\ufe0f#заметка " + SECRET, "\u034f#заметка " + SECRET, "\u180b#заметка " + SECRET,
    "\u17b4#заметка " + SECRET, "\U000e0020#заметка " + SECRET, "\U0001d173#заметка " + SECRET,
    "\u3164\n#заметка " + SECRET, "\u2800\n#заметка " + SECRET,
    "#\u0301заметка " + SECRET, "#\u0301 " + SECRET, "#1 " + SECRET,
    "* #заметка " + SECRET,
])
def test_a_note_hidden_behind_quotes_padding_or_marks_never_reaches_the_requester(maild, body):
    opened(maild)
    outcome = staff_mail(maild, body)
    assert leaked(maild) == [], (outcome.disposition, outcome.reason)
    assert all(SECRET not in b for b in public_entries(maild))


@pytest.mark.parametrize("html", [
    f'<div class="gmail_quote">старое</div><p>#заметка {SECRET}</p>',
    f'<blockquote type="cite">старое</blockquote><p>#заметка {SECRET}</p>',
    f'<ul><li>#заметка {SECRET}</li></ul>',
    f'<p><a href="mailto:x@torex.ru">#заметка</a> {SECRET}</p>',
    f'<p><span style="display: none">невидимо</span>#заметка {SECRET}</p>',
    f'<p><span hidden>невидимо</span>#заметка {SECRET}</p>',
])
def test_an_html_note_behind_a_quote_or_in_a_list_never_reaches_the_requester(maild, html):
    opened(maild)
    outcome = staff_mail(maild, "#заметка " + SECRET, html=html)
    assert leaked(maild) == [], (outcome.disposition, outcome.reason)


def test_the_self_service_limit_holds_within_one_batch(maild):
    for i in range(12):
        maild.send(mail(subject="история", body=f"Пришлите историю {i}"))
    outcomes = maild.drain().outcomes
    assert len(outcomes) == 12
    answers = [m for m in maild.sent_to("ivan@torex.ru")]
    assert len(answers) == 5, [m.subject for m in answers]
    assert sum(o.disposition == "not-answered" for o in outcomes) == 7


def test_history_names_the_department_that_answered_before_a_transfer(maild):
    opened(maild)
    staff_mail(maild, "Посмотрим после обеда.")                         # OSA answers
    staff_mail(maild, "#передать ДАБ это 1С")                           # then moves it
    maild.sink.messages.clear()
    maild.send(mail(subject="история", body="#история OSA-000001"))
    maild.drain()
    [answer] = maild.sent_to("ivan@torex.ru")
    assert "ответ ОСА" in answer.body and "ответ DAB" not in answer.body, answer.body


def test_a_bare_cr_inside_a_header_never_makes_a_new_header(maild):
    raw = (b"From: Ivan <ivan@torex.ru>\r\nTo: osticket@torex.ru\r\nSubject: Printer\rBcc: victim@evil.example\r\n"
           b"X-Note: a\rCc: o.belova@torex.ru\r\nMessage-ID: <cr@torex.ru>\r\n"
           + b"Authentication-Results: " + TRUSTED_DKIM["Authentication-Results"].encode() + b"\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nPrinter does not print.\r\n")
    from maild.reading.parse import parse
    parsed = parse(raw)
    assert parsed.header("bcc") is None and parsed.cc == ()
    assert parsed.subject == "Printer Bcc: victim@evil.example"
    maild.send(raw)
    maild.drain()
    with maild.session() as s:
        [t] = store.tickets(s)
        assert store.ticket_with_entries(s, t.number).participants == []
    assert all("victim" not in r for m in maild.sink.messages for r in m.rcpt_tos)
