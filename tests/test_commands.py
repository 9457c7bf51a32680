"""Staff steer tickets by mail: commands over SMTP, receipts, all-or-nothing, confinement
to the department, and forged staff mail that changes nothing."""
from __future__ import annotations

import email
import email.policy

import pytest

from maild.acting import store
from maild.deciding import commands
from maild.reading import quotes

from conftest import TRUSTED_DKIM, mail

PETROV = "Пётр Петров <p.petrov@torex.ru>"          # OSA
SIDOROVA = "a.sidorova@torex.ru"                     # OSA
KUZNETSOV = "Сергей Кузнецов <s.kuznetsov@torex.ru>"   # DAB
REQUEST = "Добрый день! Принтер на 3 этаже не печатает."


def dab_staff() -> list[str]:
    from maild.deciding.organisation import load

    from conftest import PROJECT
    return [m.email for m in load(PROJECT / "rules").department("DAB").staff]


def opened(h, cc: str | None = None):
    """OSA-000001, opened by ivan@torex.ru; the outgoing mail so far forgotten."""
    headers = {"Cc": cc} if cc else None
    h.send(mail(message_id="orig@torex.ru", body=REQUEST, headers=headers))
    h.drain()
    h.sink.messages.clear()


def command(h, body: str, sender: str = PETROV, subject: str = "Re: [#OSA-000001] Не печатает принтер",
            headers: dict | None = TRUSTED_DKIM, rcpt: str = "osticket@torex.ru"):
    address = email.utils.parseaddr(sender)[1]
    h.send(mail(subject=subject, sender=sender, body=body, headers=headers), rcpt=rcpt, sender=address)
    return h.drain().outcomes[-1]


def ticket(h, number: str = "OSA-000001"):
    with h.session() as s:
        t = store.ticket_with_entries(s, number)
        _ = t.participants, t.links  # load while the session is open
        return t


def state(h, number: str = "OSA-000001") -> tuple:
    """Everything a command could change on a ticket."""
    t = ticket(h, number)
    return (t.department, t.status, t.assignee, t.priority, t.category, t.resolution,
            sorted(p.person.email for p in t.participants),
            [(e.type, e.body) for e in t.entries if not e.unauthenticated])


def receipt(h, to: str = "p.petrov@torex.ru"):
    [got] = [m for m in h.sent_to(to) if "Команды" in m.subject]
    return got


def to_requester(h) -> list:
    return h.sent_to("ivan@torex.ru")


def test_every_refusal_has_russian_words_in_the_receipt():
    import re

    from conftest import PROJECT
    codes = {code for path in (PROJECT / "maild" / "deciding" / "commands").glob("*.py")
             for code in re.findall(r'Refusal\("([a-z-]+)"', path.read_text())}
    template = (PROJECT / "templates" / "receipt.txt.j2").read_text()
    assert len(codes) > 20
    assert sorted(c for c in codes if f'"{c}":' not in template) == []


# -- reading ---------------------------------------------------------------------------------
def test_read_takes_only_the_lines_at_the_top():
    block = commands.read("\n#take\n\n#PRIORITY high\n#заметка\nТекст #close в строке\n#close")
    assert [(c.keyword, c.args) for c in block.commands] == [("take", ""), ("priority", "high"), ("note", "")]
    assert block.text == "Текст #close в строке\n#close"
    assert commands.read("Здравствуйте!\n#close") is None
    # A "#" first line that is no keyword is kept as an unknown command: a staff mail that
    # starts so is refused with a receipt, never sent on (confidentiality fails closed).
    assert [(c.keyword, c.line) for c in commands.read("#1 в очереди").commands] == [("", "#1 в очереди")]
    assert commands.read("\\#взять").commands[0].keyword == "take"   # html2text's escaped form


def test_commands_in_quoted_text_or_signatures_are_never_read():
    reply = ("Спасибо, посмотрю.\n\n-- \nП. Петров\n#close\n\n"
             "> #close\n> #transfer DAB\n")
    assert commands.read(quotes.reply_text(reply)) is None
    outlook = ("\n\n-----Original Message-----\nFrom: Пётр Петров\nSent: Monday\n\n#close\n")
    assert commands.read(quotes.reply_text(outlook)) is None


# -- every command, in both languages ----------------------------------------------------------
@pytest.mark.parametrize("word", ["#take", "#взять"])
def test_take(maild, word):
    opened(maild)
    outcome = command(maild, word)
    assert outcome.disposition == "command-applied"
    assert ticket(maild).assignee == "petrov"
    assert f"{word} — выполнено" in receipt(maild).body
    assert to_requester(maild) == []          # only commands: the requester hears nothing


@pytest.mark.parametrize("line", ["#assign sidorova", "#назначить a.sidorova@torex.ru",
                                  "#assign Анна Сидорова <a.sidorova@torex.ru>"])
def test_assign_notifies_the_colleague(maild, line):
    opened(maild)
    command(maild, line)
    assert ticket(maild).assignee == "sidorova"
    [notice] = [m for m in maild.sent_to(SIDOROVA) if "назначена на вас" in m.subject]
    assert "Пётр Петров" in notice.body and REQUEST in notice.body
    assert notice.msg["Reply-To"].addresses[0].addr_spec.startswith("osticket+OSA-000001.")
    assert to_requester(maild) == []


@pytest.mark.parametrize("line", ["#transfer DAB это 1С", "#передать ДАБ это 1С"])
def test_transfer_moves_the_ticket_and_the_sender_loses_it(maild, line):
    opened(maild)
    command(maild, line)
    t = ticket(maild)
    assert (t.department, t.assignee) == ("DAB", None)
    for address in dab_staff():
        [alert] = [m for m in maild.sent_to(address) if "передана в ДАБ" in m.subject]
        assert "это 1С" in alert.body and REQUEST in alert.body
    [told] = to_requester(maild)
    assert "передана" in told.body and "это 1С" in told.body and "[#OSA-000001]" in told.subject
    # Petrov (OSA) may no longer steer it, and hears nothing more of it.
    maild.sink.messages.clear()
    outcome = command(maild, "#close")
    assert outcome.disposition == "command-refused"
    assert "другому отделу" in receipt(maild).body and ticket(maild).status == "open"


@pytest.mark.parametrize("word", ["#note", "#заметка"])
def test_note_reaches_colleagues_only(maild, word):
    opened(maild, cc="Ольга Белова <o.belova@torex.ru>")
    command(maild, f"{word}\nЗвонил, у него сгорел блок питания — СЕКРЕТ-42")
    t = ticket(maild)
    assert t.entries[-1].type == "note" and "СЕКРЕТ-42" in t.entries[-1].body
    assert t.status == "open"                   # a note answers nobody
    [alert] = [m for m in maild.sent_to(SIDOROVA) if "Заметка" in m.subject]
    assert "СЕКРЕТ-42" in alert.body
    assert_note_never_left(maild, "СЕКРЕТ-42", allowed={SIDOROVA})


def assert_note_never_left(h, secret: str, allowed: set[str]):
    """Check every mail that left, and every row still waiting: only colleagues got it."""
    for m in h.sink.messages:
        if secret in m.body:
            assert set(m.rcpt_tos) <= allowed, m.rcpt_tos
    with h.session() as s:
        for row in store.outbox_rows(s):
            body = email.message_from_string(row.raw, policy=email.policy.default).get_content()
            if secret in body:
                assert row.recipient in allowed, row.recipient


@pytest.mark.parametrize("line", ["#canned restart", "#шаблон restart"])
def test_canned_answer_goes_to_the_requester(maild, line):
    opened(maild)
    command(maild, line)
    [answer] = to_requester(maild)
    assert "перезагрузите компьютер" in answer.body and "Иван Иванов" in answer.body
    t = ticket(maild)
    assert t.status == "answered" and "перезагрузите" in t.entries[-1].body


@pytest.mark.parametrize("word", ["#canned", "#шаблон"])
def test_canned_alone_lists_them(maild, word):
    opened(maild)
    command(maild, word)
    body = receipt(maild).body
    assert "restart — перезагрузить компьютер" in body and "password" in body
    assert to_requester(maild) == []


@pytest.mark.parametrize("line", ["#category Сетевая папка", "#категория сетевая папка", "#category folder"])
def test_category(maild, line):
    opened(maild)
    command(maild, line)
    assert (ticket(maild).category, ticket(maild).kind) == ("Сетевая папка", "problem")


@pytest.mark.parametrize("line,value", [("#priority urgent", "urgent"), ("#приоритет высокий", "high"),
                                        ("#приоритет Низкий", "low")])
def test_priority(maild, line, value):
    opened(maild)
    command(maild, line)
    assert ticket(maild).priority == value


@pytest.mark.parametrize("close,reopen", [("#close", "#reopen"), ("#закрыть", "#открыть")])
def test_close_and_reopen_tell_the_requester(maild, close, reopen):
    opened(maild)
    command(maild, f"{close} картридж заменён")
    t = ticket(maild)
    assert (t.status, t.resolution) == ("closed", "resolved") and t.closed_at is not None
    [told] = to_requester(maild)
    assert "закрыта: картридж заменён" in told.body
    maild.sink.messages.clear()
    command(maild, reopen)
    assert ticket(maild).status == "open" and ticket(maild).closed_at is None
    [told] = to_requester(maild)
    assert "снова открыта" in told.body


def test_close_with_text_sends_one_mail_with_both(maild):
    opened(maild)
    command(maild, "#close\nКартридж заменён, печать проверена.")
    [told] = to_requester(maild)
    assert "Картридж заменён, печать проверена." in told.body and "закрыта" in told.body
    assert [e.type for e in ticket(maild).entries if "Картридж заменён" in e.body] == ["response"]


@pytest.mark.parametrize("add,remove", [("#cc add o.belova@torex.ru", "#cc remove o.belova@torex.ru"),
                                        ("#копия добавить Ольга <o.belova@torex.ru>",
                                         "#копия убрать o.belova@torex.ru")])
def test_cc_add_and_remove(maild, add, remove):
    opened(maild)
    command(maild, add)
    assert [p.person.email for p in ticket(maild).participants] == ["o.belova@torex.ru"]
    command(maild, "Замените картридж, пожалуйста.")      # a plain response reaches them
    assert any("Замените картридж" in m.body for m in maild.sent_to("o.belova@torex.ru"))
    command(maild, remove)
    assert ticket(maild).participants == []


@pytest.mark.parametrize("word", ["#new", "#новая"])
def test_new_files_a_phone_ticket_for_the_employee(maild, word):
    outcome = command(maild, f"{word} Ольга Белова <o.belova@torex.ru>\n#take\n\nНе работает мышь на ПК",
                      subject="Звонок: мышь")
    assert outcome.disposition == "command-applied" and outcome.ticket == "OSA-000001"
    t = ticket(maild)
    assert (t.source, t.filed_by, t.assignee, t.requester.email, t.subject) == (
        "phone", "petrov", "petrov", "o.belova@torex.ru", "Звонок: мышь")
    assert t.entries[0].body == "Не работает мышь на ПК" and t.entries[0].author.email == "o.belova@torex.ru"
    [ack] = maild.sent_to("o.belova@torex.ru")
    assert "OSA-000001" in ack.body and "Пётр Петров" in ack.body
    assert any("Новая заявка" in m.subject for m in maild.sent_to(SIDOROVA))
    assert not any("Новая заявка" in m.subject for m in maild.sent_to("p.petrov@torex.ru"))
    assert "OSA-000001" in receipt(maild).subject
    # The employee's reply lands on it as theirs.
    maild.send(mail(subject=f"Re: {ack.subject}", sender="Ольга Белова <o.belova@torex.ru>",
                    body="Ещё и клавиатура."), sender="o.belova@torex.ru")
    maild.drain()
    assert ticket(maild).entries[-1].body == "Ещё и клавиатура."


@pytest.mark.parametrize("line,expect", [("#list", ["OSA-000001", "OSA-000002"]),
                                         ("#список мои", ["OSA-000002"]),
                                         ("#list all", ["OSA-000001", "OSA-000002", "OSA-000003"])])
def test_list_mails_back_the_queue(maild, line, expect):
    for n in range(3):
        maild.send(mail(subject=f"Заявка {n}", message_id=f"q{n}@torex.ru"))
    maild.drain()
    command(maild, "#take", subject="Re: [#OSA-000002] Заявка 1")
    command(maild, "#close", subject="Re: [#OSA-000003] Заявка 2")
    maild.sink.messages.clear()
    command(maild, line, subject="очередь")
    body = receipt(maild).body
    assert [n for n in ("OSA-000001", "OSA-000002", "OSA-000003") if n in body] == expect
    assert "ivan@torex.ru" in body


@pytest.mark.parametrize("word", ["#help", "#помощь"])
def test_help(maild, word):
    command(maild, word, subject="помощь")
    body = receipt(maild).body
    for keyword in ("#взять", "#assign", "#передать", "#note", "#шаблон", "#priority", "#новая", "#list"):
        assert keyword in body
    with maild.session() as s:
        assert store.tickets(s) == []          # help opens no ticket


def test_response_text_with_commands(maild):
    opened(maild)
    command(maild, "#take\n#priority high\n\nСейчас подойду.")
    [answer] = to_requester(maild)
    assert "Сейчас подойду." in answer.body and "#take" not in answer.body
    t = ticket(maild)
    assert (t.assignee, t.priority, t.status) == ("petrov", "high", "answered")


def test_the_signed_reply_address_alone_authenticates_commands(maild):
    opened(maild)
    with maild.session() as s:
        [alert] = [r for r in store.outbox_rows(s) if r.recipient == "p.petrov@torex.ru"]
    signed = email.message_from_string(alert.raw, policy=email.policy.default)["Reply-To"].addresses[0].addr_spec
    outcome = command(maild, "#взять", headers=None, rcpt=signed)
    assert outcome.disposition == "command-applied" and ticket(maild).assignee == "petrov"


# -- refusals and all-or-nothing ---------------------------------------------------------------
REFUSALS = [
    ("#frob", "неизвестная команда"),
    ("#assign nobody", "нет такого сотрудника"),
    ("#assign s.kuznetsov@torex.ru", "сотрудник другого отдела"),
    ("#transfer HR", "нет такого отдела"),
    ("#transfer OSA", "заявка уже в этом отделе"),
    ("#canned nosuch", "нет такого шаблона"),
    ("#category Бухгалтерия", "нет такой категории"),
    ("#priority asap", "приоритет бывает"),
    ("#reopen", "заявка не закрыта"),
    ("#cc", "пишется так"),
    ("#cc add a.sidorova@torex.ru", "сотрудники отделов"),
    ("#cc add someone@gmail.com", "не адрес сотрудника"),
    ("#cc remove o.belova@torex.ru", "этого адреса нет в копии"),
    ("#new o.belova@torex.ru", "в новом письме"),
    ("#list everything", "#список понимает"),
    ("#transfer DAB\n#close", "заявка уже передана"),
    ("#close\n#close", "заявка уже закрыта"),
    ("#assign", "не хватает параметра"),
    ("#transfer", "не хватает параметра"),
    ("#new o.belova@torex.ru, ivan@torex.ru", "в новом письме"),
]


@pytest.mark.parametrize("bad,why", REFUSALS)
def test_one_refused_line_applies_nothing_and_the_receipt_says_why(maild, bad, why):
    opened(maild)
    before = state(maild)
    outcome = command(maild, f"#take\n#priority urgent\n{bad}\n\nОтвет заявителю.")
    assert outcome.disposition == "command-refused"
    assert state(maild) == before
    body = receipt(maild).body
    assert why in body and "Ни одна команда не выполнена" in body
    assert "#take — не выполнено" in body
    assert to_requester(maild) == []
    assert [m.rcpt_tos for m in maild.sink.messages] == [["p.petrov@torex.ru"]]


def test_a_note_without_text_is_refused(maild):
    opened(maild)
    before = state(maild)
    assert command(maild, "#take\n#note").disposition == "command-refused"
    assert state(maild) == before and "у заметки нет текста" in receipt(maild).body


@pytest.mark.parametrize("body,why", [
    ("#take", "ответьте на письмо по заявке"),
    ("#new", "нет пересланного письма с автором"),          # #новая alone needs a forward (issue 17)
    ("#new x", "нужен адрес сотрудника"),
    ("#new someone@gmail.com", "не адрес сотрудника"),
    ("#new osticket@torex.ru", "не адрес сотрудника"),
    ("#new o.belova@torex.ru\n#note\nтекст", "#заметка к нему не нужна"),
])
def test_refusals_without_a_ticket(maild, body, why):
    outcome = command(maild, body, subject="без номера")
    assert outcome.disposition == "command-refused" and why in receipt(maild).body
    with maild.session() as s:
        assert store.tickets(s) == []


def test_new_only_in_ones_own_department(maild):
    outcome = command(maild, "#new o.belova@torex.ru\nНе работает 1С", subject="звонок", rcpt=dab_address())
    assert outcome.disposition == "command-refused"
    assert "только в своём отделе" in receipt(maild).body
    with maild.session() as s:
        assert store.tickets(s) == []


def dab_address() -> str:
    from maild.deciding.organisation import load

    from conftest import PROJECT
    return load(PROJECT / "rules").department("DAB").address


# -- confinement to the department -------------------------------------------------------------
@pytest.mark.parametrize("body", ["#close", "#take", "#note\nчужая заметка", "#assign s.kuznetsov@torex.ru"])
def test_staff_of_the_other_department_cannot_command(maild, body):
    opened(maild)
    before = state(maild)
    outcome = command(maild, body, sender=KUZNETSOV)
    assert outcome.disposition == "command-refused"
    assert state(maild) == before
    [got] = maild.sink.messages
    assert got.rcpt_tos == ["s.kuznetsov@torex.ru"] and "другому отделу" in got.body


def test_the_other_department_hears_nothing_of_a_ticket(maild):
    """A whole OSA conversation — new, Cc'd DAB staff, reply, note, response, close — and
    not one mail about it reaches DAB's staff."""
    dab = set(dab_staff())
    opened(maild, cc=KUZNETSOV)
    assert ticket(maild).participants == []          # staff are never made participants
    maild.send(mail(subject="Re: [#OSA-000001] Не печатает принтер", body="Всё ещё не печатает.",
                    headers={"Cc": KUZNETSOV}))
    maild.drain()
    command(maild, "#note\nвнутреннее")
    command(maild, "Замените картридж.")
    command(maild, "#close")
    assert ticket(maild).status == "closed"
    assert [m for m in maild.sink.messages if set(m.rcpt_tos) & dab] == []


# -- forged staff mail -------------------------------------------------------------------------
FORGED = [
    (None, "no Authentication-Results"),
    ({"Authentication-Results": "evil.example; dkim=pass header.d=torex.ru"}, "not a trusted host"),
    ({"Authentication-Results": "mx.torex.ru; dkim=pass header.d=evil.example"}, "aligned"),
    ({"Authentication-Results": "mx.torex.ru; spf=fail smtp.mailfrom=torex.ru"}, "aligned"),
]


@pytest.mark.parametrize("headers,why", FORGED)
def test_forged_command_mail_changes_nothing(maild, caplog, headers, why):
    opened(maild)
    before = state(maild)
    outcome = command(maild, "#close\n#transfer DAB\n\nЗакрываю.", headers=headers)
    assert outcome.disposition == "command-refused" and why in outcome.reason
    assert state(maild) == before
    last = ticket(maild).entries[-1]
    assert last.unauthenticated and "Закрываю." in last.body      # stored, flagged
    [warning] = maild.sink.messages                                  # only the real Petrov hears
    assert warning.rcpt_tos == ["p.petrov@torex.ru"]
    assert "не принято" in warning.subject and "#close — отклонено" in warning.body
    assert any("refused unauthenticated mail" in r.message for r in caplog.records)


def test_reply_address_signed_for_someone_else_or_another_ticket_proves_nothing(maild):
    from maild.deciding import auth
    opened(maild)
    maild.send(mail(subject="Другая заявка", message_id="other@torex.ru"))
    maild.drain()
    maild.sink.messages.clear()
    secret = maild.worker().secret
    before = state(maild)
    for signed in (auth.signed_address(secret, "osticket@torex.ru", "OSA-000001", SIDOROVA),
                   auth.signed_address(secret, "osticket@torex.ru", "OSA-000002", "p.petrov@torex.ru")):
        outcome = command(maild, "#close", headers=None, rcpt=signed)
        assert outcome.disposition == "command-refused"
    assert state(maild) == before and ticket(maild).status == "open"
    assert to_requester(maild) == []


def test_forged_new_ticket_is_not_filed(maild):
    outcome = command(maild, "#new o.belova@torex.ru\nНе работает мышь", subject="звонок", headers=None)
    assert outcome.disposition == "command-refused"
    with maild.session() as s:
        assert store.tickets(s) == []
        [row] = s.query(__import__("maild.acting.models", fromlist=["Inbound"]).Inbound).all()
        assert row.disposition == "command-refused" and row.archive_path      # recorded, kept
    assert maild.sent_to("o.belova@torex.ru") == []
    [warning] = maild.sent_to("p.petrov@torex.ru")
    assert "#new o.belova@torex.ru — отклонено" in warning.body


def test_automatic_mail_from_staff_is_never_a_command(maild):
    opened(maild)
    before = state(maild)
    outcome = command(maild, "#close", headers={**TRUSTED_DKIM, "Auto-Submitted": "auto-replied"})
    assert outcome.disposition == "auto-reply-recorded"
    assert state(maild)[:6] == before[:6] and maild.sink.messages == []


# -- from the review: ways around the rules ----------------------------------------------------
def test_the_other_departments_staff_cannot_answer_through_reply_only_commands(maild):
    opened(maild)
    before = state(maild)
    outcome = command(maild, "#help\n\nОтвет от чужого отдела", sender=KUZNETSOV,
                      headers={**TRUSTED_DKIM, "Cc": "o.belova@torex.ru"})
    assert outcome.disposition == "command-refused"
    assert state(maild) == before and to_requester(maild) == []
    assert maild.sent_to("o.belova@torex.ru") == []


def test_reply_only_commands_send_their_text_to_nobody(maild):
    opened(maild)
    outcome = command(maild, "#list\n\nэто заметка себе")
    assert outcome.disposition == "command-applied"
    assert to_requester(maild) == [] and "никому не отправлены" in receipt(maild).body
    assert [e.type for e in ticket(maild).entries] == ["message"]


def test_a_staff_reply_with_nothing_of_its_own_never_sends_the_quoted_note(maild):
    opened(maild)
    command(maild, "#note\nСЕКРЕТ-99: у заявителя долги по лицензиям")
    [alert] = [m for m in maild.sent_to(SIDOROVA) if "Заметка" in m.subject]
    maild.sink.messages.clear()
    # Outlook: nothing typed, the alert below its header block, unquoted.
    raw = mail(subject="Re: " + alert.subject, sender=f"Анна Сидорова <{SIDOROVA}>",
               body="\n\n-----Original Message-----\nFrom: ОСА <osticket@torex.ru>\n"
                    "Sent: Friday, November 27, 2026 10:00 AM\nTo: Анна Сидорова\n"
                    f"Subject: {alert.subject}\n\n{alert.body}", headers=TRUSTED_DKIM)
    maild.send(raw, sender=SIDOROVA)
    maild.drain()
    assert to_requester(maild) == []
    assert_note_never_left(maild, "СЕКРЕТ-99", allowed={SIDOROVA})
    assert ticket(maild).status == "open"


def test_cc_added_and_removed_in_one_mail(maild):
    opened(maild)
    outcome = command(maild, "#cc add new.person@torex.ru\n#cc remove new.person@torex.ru")
    assert outcome.disposition == "command-applied" and ticket(maild).participants == []


def test_staff_behind_a_sub_address_are_still_staff(maild):
    opened(maild, cc="s.kuznetsov+x@torex.ru")
    assert ticket(maild).participants == []
    outcome = command(maild, "#cc add S.Kuznetsov+y@torex.ru")
    assert outcome.disposition == "command-refused" and "сотрудники отделов" in receipt(maild).body


def test_a_signed_address_is_no_proof_with_another_envelope_sender(maild):
    opened(maild)
    with maild.session() as s:
        [alert] = [r for r in store.outbox_rows(s) if r.recipient == "p.petrov@torex.ru"]
    signed = email.message_from_string(alert.raw, policy=email.policy.default)["Reply-To"].addresses[0].addr_spec
    before = state(maild)
    maild.send(mail(subject="Re: [#OSA-000001] x", sender=PETROV, body="#close"), rcpt=signed, sender="ivan@torex.ru")
    outcome = maild.drain().outcomes[-1]
    assert outcome.disposition == "command-refused" and "envelope sender" in outcome.reason
    assert state(maild) == before


@pytest.mark.parametrize("headers", [
    {"From": "p.petrov@torex.ru, ivan@torex.ru"},
    {"From": None, "Sender": "Пётр Петров <p.petrov@torex.ru>"},
])
def test_an_ambiguous_author_has_no_staff_authority(maild, headers):
    import email.message
    opened(maild)
    before = state(maild)
    msg = email.message.EmailMessage()
    msg["To"], msg["Subject"] = "osticket@torex.ru", "Re: [#OSA-000001] Не печатает принтер"
    msg["Message-ID"] = email.utils.make_msgid(domain="torex.ru")
    msg["Authentication-Results"] = TRUSTED_DKIM["Authentication-Results"]
    for key, value in headers.items():
        if value is not None:
            msg[key] = value
    msg.set_content("#close")
    maild.send(msg.as_bytes(), sender="ivan@torex.ru")
    outcome = maild.drain().outcomes[-1]
    assert not outcome.disposition.startswith("command-")
    assert state(maild)[:6] == before[:6] and ticket(maild).status == "open"


def test_staff_writing_as_a_requester_are_not_commanding(maild):
    """A DAB staff member's own OSA ticket: "#принтер ..." is their words, not a command."""
    maild.send(mail(sender=KUZNETSOV, body="Не печатает принтер."), sender="s.kuznetsov@torex.ru")
    maild.drain()
    maild.sink.messages.clear()
    outcome = command(maild, "#принтер всё ещё не печатает", sender=KUZNETSOV)
    assert outcome.disposition == "reply-added"
    assert ticket(maild).entries[-1].body == "#принтер всё ещё не печатает"
    assert any("Ответ заявителя" in m.subject for m in maild.sent_to("p.petrov@torex.ru"))


def test_mail_in_a_staff_members_name_never_renames_anyone(maild):
    opened(maild)
    command(maild, "#close", sender="Уволен <p.petrov@torex.ru>", headers=None)
    command(maild, "#new Хакер <ivan@torex.ru>\nтекст", subject="звонок")
    with maild.session() as s:
        conn = s.connection()
        assert store.person_ref(conn, "p.petrov@torex.ru").name != "Уволен"
        assert store.person_ref(conn, "ivan@torex.ru").name == "Иван Иванов"


def test_forged_mail_warns_the_real_staff_member_once_an_hour(maild):
    opened(maild)
    for _ in range(3):
        command(maild, "#close", headers=None)
    assert len([m for m in maild.sent_to("p.petrov@torex.ru") if "не принято" in m.subject]) == 1


def test_html_only_command_mail_with_an_autolinked_address(maild):
    import email.message
    opened(maild)
    msg = email.message.EmailMessage()
    msg["From"], msg["To"] = PETROV, "osticket@torex.ru"
    msg["Subject"] = "Re: [#OSA-000001] Не печатает принтер"
    msg["Message-ID"] = email.utils.make_msgid(domain="torex.ru")
    msg["Authentication-Results"] = TRUSTED_DKIM["Authentication-Results"]
    msg.set_content('<html><body><p>#assign <a href="mailto:a.sidorova@torex.ru">a.sidorova@torex.ru</a></p>'
                    '<p>#priority high</p></body></html>', subtype="html")
    maild.send(msg.as_bytes(), sender="p.petrov@torex.ru")
    outcome = maild.drain().outcomes[-1]
    assert outcome.disposition == "command-applied", outcome.reason
    assert (ticket(maild).assignee, ticket(maild).priority) == ("sidorova", "high")


# -- combinations ------------------------------------------------------------------------------
def with_attachment(body: str, subject="Re: [#OSA-000001] Не печатает принтер") -> bytes:
    import email.message
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = PETROV, "osticket@torex.ru", subject
    msg["Message-ID"] = email.utils.make_msgid(domain="torex.ru")
    msg["Authentication-Results"] = TRUSTED_DKIM["Authentication-Results"]
    msg.set_content(body)
    msg.add_attachment(b"PDF-1.4 secret", maintype="application", subtype="pdf", filename="vnutr-otchet.pdf")
    return msg.as_bytes()


def test_note_with_canned_answer_keeps_each_where_it_belongs(maild):
    opened(maild)
    maild.send(with_attachment("#note\n#canned restart\nВнутреннее: СЕКРЕТ-7"), sender="p.petrov@torex.ru")
    maild.drain()
    t = ticket(maild)
    [note] = [e for e in t.entries if e.type == "note"]
    [response] = [e for e in t.entries if e.type == "response"]
    assert "СЕКРЕТ-7" in note.body and [a.filename for a in note.attachments] == ["vnutr-otchet.pdf"]
    assert "перезагрузите" in response.body and response.attachments == []
    [answer] = to_requester(maild)
    assert "перезагрузите" in answer.body and "СЕКРЕТ-7" not in answer.body
    assert "vnutr-otchet" not in answer.body
    assert_note_never_left(maild, "СЕКРЕТ-7", allowed={SIDOROVA})


def test_note_text_may_start_on_the_command_line(maild):
    opened(maild)
    command(maild, "#заметка звонил заявителю\nне берёт трубку")
    assert ticket(maild).entries[-1].body == "звонил заявителю\nне берёт трубку"


def test_text_after_an_argumentless_command_is_refused_not_dropped(maild):
    opened(maild)
    assert command(maild, "#take сегодня").disposition == "command-refused"
    assert "нет параметров" in receipt(maild).body and ticket(maild).assignee is None


def test_a_command_mail_with_a_response_adds_copied_employees(maild):
    opened(maild)
    command(maild, "#take\nПодойду после обеда.", headers={**TRUSTED_DKIM, "Cc": "o.belova@torex.ru"})
    assert [p.person.email for p in ticket(maild).participants] == ["o.belova@torex.ru"]


def test_phone_ticket_is_never_closed_by_the_mail_policy(maild):
    # The rules close mobile-phone mail at once with a "not handled" notice; a call that
    # staff file stays open.
    text = "Не работает мобильный телефон, нужна новая сим-карта"
    maild.send(mail(subject="мобильный", body=text, sender="o.belova@torex.ru"), sender="o.belova@torex.ru")
    maild.drain()
    assert ticket(maild).status == "closed"           # by mail: the policy closes it
    maild.sink.messages.clear()
    command(maild, f"#new o.belova@torex.ru\n{text}", subject="Звонок: мобильный телефон")
    t = ticket(maild, "OSA-000002")
    assert t.status == "open" and t.source == "phone"
    assert ([m.subject for m in maild.sent_to("o.belova@torex.ru")]
            and all("закрыт" not in m.body for m in maild.sent_to("o.belova@torex.ru")))


def test_receipt_subject_carries_the_token_once(maild):
    opened(maild)
    command(maild, "#take")
    assert receipt(maild).subject.count("OSA-000001") == 1


def test_staff_command_their_own_departments_ticket_they_filed_themselves(maild):
    maild.send(mail(sender=PETROV, body="Не печатает принтер в 305."), sender="p.petrov@torex.ru")
    maild.drain()
    outcome = command(maild, "#закрыть сам починил")
    assert outcome.disposition == "command-applied" and ticket(maild).status == "closed"


def test_a_new_ticket_alert_names_the_commands_that_fit_it(maild):
    """Issue 14: the alert is complete on its own: its last lines name what else the reader
    may answer with, from the same classes as #помощь."""
    maild.send(mail(message_id="orig@torex.ru", body=REQUEST))
    maild.drain()
    [alert] = maild.sent_to("p.petrov@torex.ru")
    tail = alert.body.rsplit("\n--", 1)[-1]
    for line in ("#взять", "#заметка", "#передать ДАБ", "#закрыть", "#помощь"):
        assert line in tail, (line, tail)
    assert commands.BY_KEY["take"].help in tail and commands.BY_KEY["help"].help in tail
