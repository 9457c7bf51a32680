"""Routing that reads (issue 11): each safety rule through the real pipeline (SMTP in,
tickets and mail out), the entity masks on their variants, and the admin's tools (train,
eval, diff, a dry run that creates nothing). The accuracy on unseen mail is a benchmark:
``bench/routing.py``."""
from __future__ import annotations

import email.utils
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from maild.acting import store
from maild.acting.models import Inbound, TicketChange
from maild.admin.cli import main
from maild.routing import entities, learned
from maild.routing.entities import EntityKind
from maild.routing.text import normalise

from conftest import DB_KINDS, PROJECT, TRUSTED_DKIM, mail

PETROV = "Пётр Петров <p.petrov@torex.ru>"


def ticket(h, number="OSA-000001"):
    with h.session() as s:
        return store.ticket_with_entries(s, number)


def only_ticket(h):
    with h.session() as s:
        [t] = store.tickets(s)
        return store.ticket_with_entries(s, t.number)


# -- numbers read in context -------------------------------------------------------------
@pytest.mark.parametrize("text,kind", [
    ("Инвентарный номер принтера 0104-2211", EntityKind.INVENTORY),
    ("инв. № 1043", EntityKind.INVENTORY),
    ("инв.1043", EntityKind.INVENTORY),
    ("Табельный номер: 2178", EntityKind.PERSONNEL),
    ("таб. № 2178", EntityKind.PERSONNEL),
    ("каб. 1205", EntityKind.ROOM),
    ("кабинет 2104", EntityKind.ROOM),
    ("цех 2", EntityKind.ROOM),
    ("счёт № 1043", EntityKind.DOCUMENT),
    ("заказ 2150", EntityKind.DOCUMENT),
    ("10.0.12.7:3389", EntityKind.IP),
    ("порт 1433", EntityKind.PORT),
    ("12.03.2026", EntityKind.DATE),
    ("в 2026 году", EntityKind.DATE),
    ("на 1500 руб.", EntityKind.AMOUNT),
    ("мой вн. 2250", EntityKind.OWN_PHONE),
    ("перезвоните мне на 1180", EntityKind.OWN_PHONE),
    ("доб. 1180", EntityKind.OWN_PHONE),
    ("не работает внутренний номер 1245", EntityKind.PBX),
    ("телефон 2031 не звонит", EntityKind.PBX),
    ("АТС не соединяет с 1102", EntityKind.PBX),
    ("1245 не звонит", EntityKind.PBX),
    ("не работает телефон 3456", EntityKind.OFFICE_PHONE),
    ("+7 927 123-45-67", EntityKind.MOBILE),
])
def test_a_number_is_what_its_context_says(text, kind):
    masked, found = entities.mask(normalise(text))
    assert [e.kind for e in found] == [kind], (text, found)
    assert f"__{kind.value}__" in masked


@pytest.mark.parametrize("text", ["Инвентарный номер 2211", "табельный 2178", "каб. 1205", "в 2026 году",
                                  "счет 1043 на 2150 руб", "IP 10.0.21.45", "вн. 2250 — мой"])
def test_a_number_shape_alone_is_never_a_pbx_number(text):
    _, found = entities.mask(normalise(text))
    assert EntityKind.PBX not in {e.kind for e in found}, found


def test_in_a_signature_every_number_is_the_writers_own():
    _, found = entities.mask(normalise("Петров И.\nмастер цеха\nтел. 1180, вн. 2250"), own_contact=True)
    assert {e.kind for e in found} == {EntityKind.OWN_PHONE}


@pytest.mark.parametrize("raw,want", [
    ("1C", "1с"), ("1С", "1с"), ("1c:Предприятие", "1с:предприятие"), ("Ёлка", "елка"),
    ("\ufeffпринтер\u200b", "принтер"), ("печать\u00a0не идёт", "печать не идет"),
])
def test_normalised_as_everything_after_expects(raw, want):
    assert normalise(raw) == want


# -- the safety rules, through the pipeline -----------------------------------------------
LOOKALIKES = [
    ("Не печатает", "Инвентарный номер принтера 0104-2211. Перестал печатать, мигает красная лампочка."),
    ("Новый сотрудник", "Табельный номер: 2178. С понедельника выходит новый бухгалтер Смирнова, "
                        "создайте учётную запись и почту."),
    ("нет интернета", "В каб. 1205 нет интернета с самого утра.\n\nС уважением,\nИванов И.И.\nвн. 2250"),
    ("RDP", "Не подключается удалённый рабочий стол к 10.0.12.7:3389, вчера работал."),
    ("монитор", "инв. 1043 — монитор мигает и гаснет\n\n--\nмастер цеха 2, тел. 1180"),
    ("почта на телефоне", "Не приходит рабочая почта на телефон, на компьютере в Outlook всё приходит."),
    ("раздаю интернет", "Раздаю интернет с мобильного на ноутбук, а VPN не подключается, пишет ошибку 809."),
]


@pytest.mark.parametrize("subject,body", LOOKALIKES, ids=[s for s, _ in LOOKALIKES])
def test_a_look_alike_number_or_a_phone_word_never_closes_a_request(maild, subject, body):
    maild.send(mail(subject=subject, body=body))
    [outcome] = maild.drain().outcomes
    t = only_ticket(maild)
    assert t.status == "open" and t.department == "OSA", outcome.reason
    assert not outcome.disposition.startswith("closed"), outcome.reason
    [ack] = maild.sent_to("ivan@torex.ru")
    assert "принято и зарегистрировано" in ack.body


def test_a_pbx_number_in_a_phone_context_is_answered_and_closed(maild):
    maild.send(mail(subject="АТС", body="Не работает внутренний номер 1245 в цехе 3, нет гудка на заводской АТС."))
    [outcome] = maild.drain().outcomes
    t = only_ticket(maild)
    assert (t.status, outcome.disposition) == ("closed", "closed-not-handled"), outcome.reason
    [answer] = maild.sent_to("ivan@torex.ru")
    assert "не занимается мобильной связью" in answer.body
    assert maild.sent_to("p.petrov@torex.ru") == []


@pytest.fixture
def unsure(harness_factory, tmp_path):
    """A daemon whose reading is never sure of a category (the threshold at 1.0): every new
    request shows what triage does, whatever the model makes of its words."""
    rules = tmp_path / "rules-unsure"
    shutil.copytree(PROJECT / "rules", rules)
    text = (rules / "routing.toml").read_text(encoding="utf-8")
    (rules / "routing.toml").write_text(text.replace("category = 0.30", "category = 1.0"), encoding="utf-8")
    return harness_factory(rules=rules)


def test_unsure_stays_open_in_triage_and_staff_see_the_likeliest_categories(unsure):
    maild = unsure
    maild.send(mail(subject="помогите", body="Срочно подойдите, ничего не получается, очень надо."))
    [outcome] = maild.drain().outcomes
    t = only_ticket(maild)
    assert (t.status, t.department, t.category) == ("open", "OSA", None)
    assert "reading: triage" in outcome.reason
    alerts = maild.sent_to("p.petrov@torex.ru")
    assert alerts and "ждёт разбора" in alerts[0].body
    lines = [line for line in alerts[0].body.splitlines() if "«#категория " in line]
    assert 1 <= len(lines) <= 3
    with maild.session() as s:
        [row] = s.scalars(select(Inbound)).all()
    assert "likeliest:" in row.reason                 # `maild log` shows the scores


def test_a_confident_category_says_why_in_the_alert(maild):
    maild.send(mail(subject="Принтер не печатает", body="Принтер HP в бухгалтерии перестал печатать, замялась бумага."))
    maild.drain()
    assert only_ticket(maild).category == "Принтер"
    [alert] = maild.sent_to("p.petrov@torex.ru")
    why = next(line for line in alert.body.splitlines() if line.startswith("Почему:"))
    assert "Принтер" in why and "принтер" in why.lower()
    # In Russian, as the rest of the mail (issue 14); the log keeps the English.
    assert "по тексту заявки" in why and "read from the text" not in why


def test_misaddressed_1c_is_transferred_once(maild):
    maild.send(mail(subject="не проводится реализация",
                    body="В 1С Бухгалтерия не проводится документ реализации, пишет ошибку."))
    maild.drain()
    t = ticket(maild, "DAB-000001")
    assert t.department == "DAB" and t.transferred_from == "OSA"
    assert sum(e.type == "event" and e.body.startswith("Передана") for e in t.entries) == 1


def test_a_request_moves_at_most_once_whatever_the_rules_say(harness_factory, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    (rules / "rules.toml").write_text('''
[[rule]]
name = "1С в ОСА"
department = "OSA"
  [[rule.if]]
  field = "text"
  words = ["1С"]
  [rule.then]
  transfer = "DAB"

[[rule]]
name = "Принтер в ДАБ"
department = "DAB"
  [[rule.if]]
  field = "text"
  words = ["принтер"]
  [rule.then]
  transfer = "OSA"
''', encoding="utf-8")
    h = harness_factory(rules=rules)
    h.send(mail(subject="1С и принтер", body="Из 1С не печатается на принтер."))
    [outcome] = h.drain().outcomes
    t = only_ticket(h)
    assert t.department == "DAB", outcome.reason
    assert "already moved once" in outcome.reason
    assert sum(e.type == "event" and e.body.startswith("Передана") for e in t.entries) == 1
    [ack] = h.sent_to("ivan@torex.ru")
    assert ack.body.count("передана из") == 1


def test_an_explicit_category_wins_over_a_reading_that_would_close(maild):
    maild.send(mail(subject="[Телефония] внутренний 1245", body="Не работает внутренний номер 1245."))
    [outcome] = maild.drain().outcomes
    t = only_ticket(maild)
    assert (t.status, t.category) == ("open", "Телефония"), outcome.reason


def test_without_a_model_every_request_stays_open_in_triage(harness_factory, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    (rules / "routing-model.json.gz").unlink()
    h = harness_factory(rules=rules)
    h.send(mail(subject="Сим-карта", body="Не работает корпоративная сим-карта."))
    [outcome] = h.drain().outcomes
    t = only_ticket(h)
    assert (t.status, t.category) == ("open", None) and "no routing model" in outcome.reason
    result = CliRunner().invoke(main, ["rules", "check", "--rules", str(rules)])
    assert result.exit_code == 0 and "run 'maild rules train'" in result.output


# -- learning from staff ---------------------------------------------------------------------
def test_a_staff_correction_becomes_a_labelled_example(maild):
    maild.send(mail(subject="не приходят", body="Не приходят письма от поставщика уже второй день."))
    maild.drain()
    before = only_ticket(maild)
    target = "Сеть и VPN" if before.category != "Сеть и VPN" else "Почта"
    maild.send(mail(subject=f"Re: [#{before.number}] не приходят", sender=PETROV, body=f"#категория {target}",
                    headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    maild.drain()
    assert only_ticket(maild).category == target
    with maild.app.engine.connect() as conn:
        changes = conn.execute(select(TicketChange.field, TicketChange.new)).all()
        assert ("category", target) in [tuple(c) for c in changes]
        [example] = learned.corrections(conn, 3, {f"OSA|{target}"})
    assert example.label == f"OSA|{target}" and "поставщика" in example.body
    assert example.origin == f"ticket {before.number}"
    with maild.app.engine.connect() as conn:       # outside the first days it teaches nothing
        assert learned.corrections(conn, 0, {f"OSA|{target}"}) == []


# Once, on the last database this machine has (PostgreSQL in CI): the training, not the
# query that reads the corrections, takes its 20 seconds.
@pytest.mark.parametrize("db_url", [DB_KINDS[-1]], indirect=True)
def test_staff_corrections_are_counted_by_rules_train(maild, tmp_path):
    pytest.importorskip("sklearn")
    maild.send(mail(subject="не приходят", body="Не приходят письма от поставщика уже второй день."))
    maild.drain()
    number = only_ticket(maild).number
    maild.send(mail(subject=f"Re: [#{number}] x", sender=PETROV, body="#категория Доступ к сайту",
                    headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    maild.drain()
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    cfg = maild.app.config
    result = CliRunner().invoke(main, ["--data-dir", str(cfg.data_dir), "--db", cfg.db_url, "rules", "train",
                                       "--dry-run", "--rules", str(rules)])
    assert result.exit_code == 0, result.output
    assert "(1 from staff corrections)" in result.output and "not written" in result.output


# -- the admin's tools -------------------------------------------------------------------------
def test_rules_test_creates_nothing_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.eml").write_bytes(mail())
    result = CliRunner().invoke(main, ["rules", "test", "m.eml", "--rules", str(PROJECT / "rules"), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.eml"]
    import json
    shown = json.loads(result.output)
    for key in ("disposition", "department", "category", "kind", "transferred_from", "rules"):
        assert key in shown                      # the fields scripts read stay
    assert shown["reading"]["candidates"] and shown["category"] == "Принтер"


def test_rules_eval_reports_accuracy_confusion_and_errors(tmp_path):
    (tmp_path / "p.eml").write_bytes(mail())
    (tmp_path / "x.eml").write_bytes(mail(subject="Не уходят письма", body="Outlook не отправляет письма."))
    (tmp_path / "labels.tsv").write_text(
        "file\tto\tdepartment\tcategory\tkind\toutcome\n"
        "p.eml\tosticket@torex.ru\tOSA\tПринтер\tproblem\tnew-ticket\n"
        "x.eml\tosticket@torex.ru\tOSA\tПринтер\tproblem\tnew-ticket\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["rules", "eval", str(tmp_path / "labels.tsv"),
                                       "--rules", str(PROJECT / "rules")])
    assert result.exit_code == 0, result.output
    assert "2 mails: outcome 100.0%" in result.output and "category 50.0%" in result.output
    assert "OSA|Принтер -> OSA|Почта: 1" in result.output
    assert "x.eml: category Почта (want Принтер)" in result.output


def test_rules_diff_lists_what_a_change_would_decide_differently(maild, tmp_path):
    maild.send(mail())
    maild.send(mail(subject="Не уходят письма", body="Outlook не отправляет письма, висят в исходящих."))
    maild.drain()
    cfg = maild.app.config
    args = ["--data-dir", str(cfg.data_dir), "--db", cfg.db_url, "rules", "diff", "--since", "1d"]
    same = CliRunner().invoke(main, args + ["--rules", str(PROJECT / "rules")])
    assert same.exit_code == 0 and "0 request(s)" in same.output, same.output
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    text = (rules / "routing.toml").read_text(encoding="utf-8")
    (rules / "routing.toml").write_text(text.replace("category = 0.30", "category = 1.0"), encoding="utf-8")
    changed = CliRunner().invoke(main, args + ["--rules", str(rules)])
    assert changed.exit_code == 0, changed.output
    assert "2 request(s)" in changed.output
    assert "OSA|Принтер -> OSA|— (triage)" in changed.output
    with maild.session() as s:
        assert len(s.scalars(select(Inbound)).all()) == 2          # a dry run: nothing written


def test_rules_train_writes_a_model_the_daemon_reads(tmp_path):
    pytest.importorskip("sklearn")
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    (rules / "routing-model.json.gz").unlink()
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "d"), "rules", "train", "--no-db",
                                       "--rules", str(rules)])
    assert result.exit_code == 0, result.output
    assert "cross-validated accuracy" in result.output and (rules / "routing-model.json.gz").is_file()
    check = CliRunner().invoke(main, ["rules", "check", "--rules", str(rules)])
    assert check.exit_code == 0 and "warning" not in check.output, check.output


def test_author_of_the_alert_reply_sets_the_category_with_the_suggested_line(unsure):
    maild = unsure
    maild.send(mail(subject="помогите", body="Срочно подойдите, ничего не получается, очень надо."))
    maild.drain()
    [alert] = maild.sent_to("p.petrov@torex.ru")
    line = next(line for line in alert.body.splitlines() if "«#категория " in line)
    command = line.split("«", 1)[1].rstrip("»")
    maild.send(mail(subject=f"Re: {alert.subject}", sender=PETROV, body=command, headers=TRUSTED_DKIM),
               sender=email.utils.parseaddr(PETROV)[1])
    maild.drain()
    assert only_ticket(maild).category == command.removeprefix("#категория ")
