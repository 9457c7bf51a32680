"""Each kind of mail maild sends goes exactly when it should, and not at all when the
config switches it off (for every department, or for one)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from maild import config as config_mod
from maild.acting.models import now
from maild.reports import digest

from conftest import PROJECT, TRUSTED_DKIM, mail

PETROV = "Пётр Петров <p.petrov@torex.ru>"
DAB_STAFF = {"s.kuznetsov@torex.ru", "o.smirnova@torex.ru"}
REQUESTERS = {"ivan@torex.ru", "o.belova@torex.ru", "m.orlova@torex.ru"}


def staff_says(h, subject: str, body: str):
    h.send(mail(subject=subject, sender=PETROV, body=body, headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    h.drain()


def scenario(h) -> None:
    """One OSA day that makes every kind of mail once at least."""
    h.send(mail(subject="Не печатает принтер", body="Принтер не печатает."))          # ack, new_ticket
    h.drain()
    h.send(mail(subject="Re: [#OSA-000001] Не печатает принтер", body="Совсем не печатает."))
    h.drain()                                                                          # reply
    staff_says(h, "Re: [#OSA-000001] x", "#назначить sidorova")                         # assignment
    staff_says(h, "Re: [#OSA-000001] x", "#заметка\nзвонил, не берёт трубку")          # note
    staff_says(h, "Re: [#OSA-000001] x", "Замените картридж.")                          # response
    staff_says(h, "Re: [#OSA-000001] x", "#закрыть готово")                             # status
    h.send(mail(subject="Вопрос", body="Добрый день, подскажите пожалуйста.",
                sender="Ольга Белова <o.belova@torex.ru>"), sender="o.belova@torex.ru")
    h.drain()                                                                          # closed_unprocessed
    h.send(mail(subject="Отчёт", body="Не открывается сетевая папка отдела.",
                sender="Мария Орлова <m.orlova@torex.ru>"), sender="m.orlova@torex.ru")
    h.drain()
    staff_says(h, "Re: [#OSA-000003] x", "#передать ДАБ это их")                       # transfer, status
    h.send(mail(subject="Не работает мышь", body="Мышь не работает.", message_id="m@torex.ru"))
    h.drain()
    with h.app.engine_begin() as conn:                                                 # digest
        digest.send(h.app.actions(conn), h.app.organisation(), now())
    h.drain()


def kinds(h) -> dict[str, set[str]]:
    """kind -> recipients, from every mail that left."""
    out: dict[str, set[str]] = {}
    for m in h.sink.messages:
        s, body, to = m.subject, m.body, set(m.rcpt_tos)
        if "зарегистрировано под номером" in body:
            kind = "ack"
        elif "Новая заявка:" in s:
            kind = "new_ticket"
        elif "Ответ заявителя:" in s:
            kind = "reply"
        elif "назначена на вас" in s:
            kind = "assignment"
        elif "Заметка к заявке" in s:
            kind = "note"
        elif "Замените картридж." in body:
            kind = "response"
        elif ("Заявка закрыта:" in s or "Заявка передана в" in s) and to <= REQUESTERS:
            kind = "status"
        elif "Заявка передана в" in s:
            kind = "transfer"
        elif "закрыто без обработки" in body:
            kind = "closed_unprocessed"
        elif "Сводка" in s:
            kind = "digest"
        elif "Команды" in s:
            kind = "receipt"
        else:
            kind = "other: " + s
        out.setdefault(kind, set()).update(to)
    return out


SWITCHES = ("ack", "response", "status", "closed_unprocessed", "new_ticket", "reply", "assignment",
            "transfer", "note", "digest")


def switched(settings):
    return lambda cfg: replace(cfg, notifications=config_mod.NotificationsConfig(settings=tuple(settings)))


def test_every_kind_goes_to_whom_it_should(harness_factory):
    h = harness_factory()
    scenario(h)
    got = kinds(h)
    assert set(got) == set(SWITCHES) | {"receipt"}
    assert got["ack"] == {"ivan@torex.ru", "m.orlova@torex.ru"}   # Olga's was closed at once
    assert got["response"] == {"ivan@torex.ru"} and got["status"] == {"ivan@torex.ru", "m.orlova@torex.ru"}
    assert got["closed_unprocessed"] == {"o.belova@torex.ru"}
    assert got["reply"] == {"p.petrov@torex.ru", "a.sidorova@torex.ru"}      # unassigned then
    assert got["assignment"] == got["note"] == {"a.sidorova@torex.ru"}
    assert got["transfer"] == DAB_STAFF
    assert got["digest"] == {"p.petrov@torex.ru", "a.sidorova@torex.ru"} | DAB_STAFF
    assert not (got["new_ticket"] | got["reply"] | got["note"] | got["assignment"]) & DAB_STAFF


@pytest.mark.parametrize("switch", SWITCHES)
def test_a_kind_switched_off_is_not_sent(harness_factory, switch):
    h = harness_factory(configure=switched([("*", switch, False)]))
    scenario(h)
    got = kinds(h)
    assert switch not in got
    assert set(got) == (set(SWITCHES) - {switch}) | {"receipt"}    # everything else still goes


def test_switched_off_for_one_department_only(harness_factory):
    # OSA: no acknowledgements; DAB: no digest; the transfer alert is DAB's, it stays.
    h = harness_factory(configure=switched([("OSA", "ack", False), ("DAB", "digest", False),
                                            ("OSA", "transfer", False)]))
    scenario(h)
    got = kinds(h)
    assert "ack" not in got
    assert got["digest"] == {"p.petrov@torex.ru", "a.sidorova@torex.ru"}
    assert got["transfer"] == DAB_STAFF
    h.sink.messages.clear()
    h.send(mail(subject="Ошибка 1С", body="1С выдаёт ошибку при проведении"), rcpt="osticket-1c@torex.ru")
    h.drain()
    assert "ack" in kinds(h)                                   # DAB acknowledges as before


def test_a_department_may_switch_on_what_all_switched_off(harness_factory):
    h = harness_factory(configure=switched([("*", "digest", False), ("DAB", "digest", True)]))
    scenario(h)
    assert kinds(h)["digest"] == DAB_STAFF


@pytest.fixture
def assigning_rules(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    with (rules / "rules.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[rule]]\nname = "Принтеры — Петрову"\ndepartment = "OSA"\n'
                 '  [[rule.if]]\n  field = "category"\n  contains = ["Принтер"]\n'
                 '  [rule.then]\n  assign = "petrov"\n')
    return rules


@pytest.mark.parametrize("to,expected", [("assignee", {"p.petrov@torex.ru"}),
                                         ("all", {"p.petrov@torex.ru", "a.sidorova@torex.ru"})])
def test_new_ticket_alert_to_all_or_the_assignee(harness_factory, assigning_rules, to, expected):
    h = harness_factory(rules=assigning_rules, configure=switched([("*", "new_ticket_to", to)]))
    h.send(mail(subject="Не печатает принтер", body="Принтер не печатает."))
    h.drain()
    assert kinds(h)["new_ticket"] == expected


def test_the_config_file_switches(tmp_path):
    path = tmp_path / "maild.toml"
    path.write_text('[notifications]\ndigest = false\nnew_ticket_to = "all"\n'
                    '[notifications.DAB]\ndigest = true\nack = false\n', encoding="utf-8")
    n = config_mod.load(path).notifications
    assert (n.allows("OSA", "digest"), n.allows("DAB", "digest"), n.allows("DAB", "ack"),
            n.allows("OSA", "ack"), n.allows("OSA", "receipt")) == (False, True, False, True, True)
    assert n.new_tickets_to_all("DAB")
    for text, why in [("[notifications.osa]\nack = true\n", "capitals"),
                      ("[notifications.OSA]\nakc = true\n", "notifications.OSA.akc"),
                      ("[notifications]\nack = 1\n", "must be a bool"),
                      ('[notifications]\nnew_ticket_to = "boss"\n', '"all" or "assignee"')]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(config_mod.ConfigError, match=why):
            config_mod.load(path)


def test_with_status_mail_off_the_text_of_a_close_still_reaches_the_requester(harness_factory):
    h = harness_factory(configure=switched([("OSA", "status", False)]))
    h.send(mail())
    h.drain()
    staff_says(h, "Re: [#OSA-000001] x", "#закрыть\nКартридж заменён.")
    [answer] = [m for m in h.sent_to("ivan@torex.ru") if "Картридж заменён." in m.body]
    assert "Заявка закрыта" not in answer.subject


# -- the loop guard's budgets ------------------------------------------------------------------
def budget(per_recipient=3, per_ticket=30):
    return lambda cfg: replace(cfg, loop_guard=config_mod.LoopGuardConfig(per_recipient, per_ticket))


def test_a_robot_writing_new_mail_again_and_again_is_answered_only_so_often(harness_factory):
    """A robot that carries no automatic headers and answers every acknowledgement with a
    new mail: after the budget, acknowledgements are held and the department told once."""
    h = harness_factory(configure=budget(per_recipient=3))
    for n in range(6):
        h.send(mail(subject=f"Re: ваше письмо {n}", body=f"Ваше письмо получено {n}"))
        h.drain()
    assert len(h.sent_to("ivan@torex.ru")) == 3
    with h.session() as s:
        from maild.acting import store
        held = [r for r in store.outbox_rows(s, "held") if r.recipient == "ivan@torex.ru"]
    assert len(held) == 3 and "loop guard" in held[0].last_error
    notices = [m for m in h.sent_to("p.petrov@torex.ru") if "задержаны" in m.subject]
    assert len(notices) == 1 and "ivan@torex.ru" in notices[0].body


def test_per_ticket_budget(harness_factory):
    """A robot answering "closed without processing" on its ticket, which answers again."""
    h = harness_factory(configure=budget(per_recipient=100, per_ticket=2))
    h.send(mail(subject="Вопрос", body="Добрый день, подскажите пожалуйста."))
    h.drain()                                        # closed at once, the notice: 1
    for n in range(3):
        h.send(mail(subject="Re: [#OSA-000001] Вопрос", body=f"Получено {n}"))
        h.drain()
    notices = [m for m in h.sent_to("ivan@torex.ru") if "закрыто без обработки" in m.body]
    assert len(notices) == 2                         # the rest held
    assert any("задержаны" in m.subject for m in h.sent_to("a.sidorova@torex.ru"))


def test_staff_answers_are_never_held(harness_factory):
    h = harness_factory(configure=budget(per_recipient=2, per_ticket=2))
    h.send(mail())
    h.drain()
    for n in range(4):
        staff_says(h, "Re: [#OSA-000001] x", f"Ответ номер {n}.")
    assert len([m for m in h.sent_to("ivan@torex.ru") if "Ответ номер" in m.body]) == 4


def test_held_mail_is_released_by_the_admin(harness_factory):
    from click.testing import CliRunner

    from maild.admin.cli import main
    h = harness_factory(configure=budget(per_recipient=1))
    for n in range(2):
        h.send(mail(subject=f"Заявка {n}"))
        h.drain()
    assert len(h.sent_to("ivan@torex.ru")) == 1
    result = CliRunner().invoke(main, ["outbox", "release", "--all", "--data-dir", str(h.app.config.data_dir),
                                       "--db", h.app.config.db_url], catch_exceptions=False)
    assert result.exit_code == 0 and "released 1" in result.output
    h.drain()
    assert len(h.sent_to("ivan@torex.ru")) == 2


def test_staff_mail_is_not_counted(harness_factory):
    h = harness_factory(configure=budget(per_recipient=1))
    for n in range(3):
        h.send(mail(subject=f"Заявка {n}", sender=f"Сотрудник {n} <user{n}@torex.ru>"), sender=f"user{n}@torex.ru")
    h.drain()
    assert len([m for m in h.sent_to("p.petrov@torex.ru") if "Новая заявка" in m.subject]) == 3


def test_rules_check_names_notification_tables_of_departments_the_rules_lack(tmp_path):
    from click.testing import CliRunner

    from maild.admin.cli import main
    config = tmp_path / "maild.toml"
    config.write_text("[notifications.HR]\nack = false\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["rules", "check", "--config", str(config)])
    assert result.exit_code == 1 and "[notifications.HR]: the rules have no department HR" in result.output
    config.write_text("[notifications.DAB]\nack = false\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["rules", "check", "--config", str(config)]).exit_code == 0
