"""The departments' policy from the rule files, through the real pipeline (SMTP in, tickets
and mail out), and the admin's tools: rules check, rules test, reloads."""
from __future__ import annotations

import json
import shutil
import smtplib

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from maild.acting import store
from maild.acting.models import Inbound, Ticket
from maild.admin.cli import main
from maild.deciding.policy import OrganisationHolder

from conftest import PROJECT, mail


def ticket(h, number="OSA-000001"):
    with h.session() as s:
        return store.ticket_with_entries(s, number)


def test_mail_from_outside_refused_in_the_smtp_dialogue(maild):
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        maild.send(mail(sender="someone@gmail.com"), sender="someone@gmail.com")
    assert err.value.smtp_code == 550 and err.value.smtp_error.startswith(b"5.7.1")
    text = err.value.smtp_error.decode("utf-8")
    assert "корпоративных адресов" in text and "Only corporate addresses" in text
    assert maild.send(mail(), sender="") == {}       # the null sender (bounces) is accepted


def test_outside_from_behind_a_corporate_relay_gets_one_answer_a_day(harness_factory):
    from dataclasses import replace
    maild = harness_factory(
        configure=lambda cfg: replace(cfg, auth=replace(cfg.auth, trusted_networks=("127.0.0.0/8",))))
    for n in range(2):
        maild.send(mail(sender="Partner <p@partner.example>", subject=f"Счёт {n}"), sender="relay@torex.ru")
    maild.send(mail(sender="robot@partner.example", headers={"Auto-Submitted": "auto-replied"}),
               sender="relay@torex.ru")
    maild.drain()
    with maild.session() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
        rows = s.scalars(select(Inbound).order_by(Inbound.id)).all()
    assert [r.disposition for r in rows] == ["refused-domain"] * 3
    [answer] = maild.sent_to("p@partner.example")
    assert "корпоративных адресов" in answer.body and "[#" not in answer.subject
    assert maild.sent_to("robot@partner.example") == []


def test_an_outside_from_not_from_its_own_envelope_nor_a_trusted_relay_is_not_answered(maild):
    """Anyone can put any From on a mail: answering it would mail a stranger (backscatter)."""
    maild.send(mail(sender="Victim <victim@example.org>", subject="Счёт"), sender="relay@torex.ru",
               source="127.0.0.2")           # straight to maild, not through the company relay
    [outcome] = maild.drain().outcomes
    assert outcome.disposition == "refused-domain" and "trusted relay" in outcome.reason
    assert maild.sink.messages == []


def test_uncategorised_request_to_osa_is_closed_and_a_category_reopens_it(maild):
    maild.send(mail(subject="вопрос", body="Подскажите, когда будет столовая работать?"))
    maild.drain()
    t = ticket(maild)
    assert (t.status, t.category, t.resolution) == ("closed", None, "uncategorised")
    [notice] = maild.sent_to("ivan@torex.ru")
    assert "закрыто без обработки" in notice.body and "Принтер" in notice.body and "Категория:" in notice.body
    assert maild.sent_to("p.petrov@torex.ru") == []           # staff are not bothered
    maild.sink.messages.clear()
    # A reply without a category gets the list again; with one, the ticket opens with it.
    maild.send(mail(subject="Re: [#OSA-000001] вопрос", body="Не понял"))
    maild.send(mail(subject="Re: [#OSA-000001] вопрос", body="Категория: Принтер\n\nНе печатает."))
    maild.drain()
    t = ticket(maild)
    assert (t.status, t.category, t.kind) == ("open", "Принтер", "problem")
    assert len(maild.sent_to("ivan@torex.ru")) == 2           # the list again, then the ack
    assert len(maild.sent_to("p.petrov@torex.ru")) == 1


@pytest.mark.parametrize("how", ["tag", "brackets", "first line"])
def test_explicit_category_wins_over_words(maild, how):
    subject, body, rcpt = "Не печатает принтер", "Принтер не печатает, картридж новый.", "osticket@torex.ru"
    if how == "tag":
        rcpt = "osticket+mail@torex.ru"
    elif how == "brackets":
        subject = "[Почта] " + subject
    else:
        body = "Категория: Почта\n" + body
    maild.send(mail(subject=subject, body=body, to=rcpt), rcpt=rcpt)
    maild.drain()
    assert ticket(maild).category == "Почта"


def test_misdirected_1c_mail_is_transferred_and_the_requester_told(maild):
    maild.send(mail(subject="1С не проводит документ", body="Ошибка при проведении реализации в 1С."))
    maild.drain()
    t = ticket(maild, "DAB-000001")
    assert (t.department, t.category) == ("DAB", "Ошибка 1С")
    assert any(e.type == "event" and e.body.startswith("Передана из ОСА в ДАБ") for e in t.entries)
    [ack] = maild.sent_to("ivan@torex.ru")
    assert "передана из ОСА в ДАБ" in ack.body and "1С" in ack.body
    assert maild.sent_to("s.kuznetsov@torex.ru") and not maild.sent_to("p.petrov@torex.ru")


def test_mobile_and_pbx_mail_to_osa_is_answered_and_closed(maild):
    maild.send(mail(subject="Сим-карта", body="Не работает корпоративная сим-карта."))
    maild.send(mail(subject="Телефон", body="Не работает внутренний номер 1234 в цехе."))
    maild.send(mail(subject="Телефон", body="Не работает IP-телефон, мой вн. 3456, нет гудка."))
    maild.drain()
    assert [ticket(maild, f"OSA-00000{n}").status for n in (1, 2, 3)] == ["closed", "closed", "open"]
    answers = maild.sent_to("ivan@torex.ru")
    assert sum("не занимается мобильной связью" in m.body for m in answers) == 2


# -- the admin's tools ---------------------------------------------------------------------
@pytest.fixture
def rules_copy(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    return rules


def check(rules):
    return CliRunner().invoke(main, ["rules", "check", "--rules", str(rules)])


def test_rules_check_passes_on_the_shipped_files(rules_copy):
    result = check(rules_copy)
    assert result.exit_code == 0 and "rules OK: 2 departments, 19 categories" in result.output


@pytest.mark.parametrize("file,old,new,message", [
    ("rules.toml", 'transfer = "DAB"', 'transfer = "XYZ"', "unknown department 'XYZ'"),
    ("rules.toml", 'close = "not_handled"', 'close = "no_such_template"', "template 'no_such_template'"),
    ("rules.toml", "field = \"meant\"", "field = \"colour\"", "unknown field 'colour'"),
    ("routing.toml", "margin = 0.", "margin = 1.", "threshold 'margin' must be a number from 0 to 1"),
    ("routing.toml", "category = 0.", "categry = 0.", "unknown threshold 'categry'"),
    ("departments/OSA.toml", "patterns = ['\\\\\\\\[", "patterns = ['(unclosed", "bad regular expression"),
    ("departments/OSA.toml", 'name = "Почта"', 'name = "Принтер"', "duplicate category name 'Принтер'"),
    ("departments/DAB.toml", 'kind = "request"', 'kind = "wish"', "kind must be one of problem, request"),
])
def test_rules_check_names_file_line_and_problem(rules_copy, file, old, new, message):
    path = rules_copy / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    line = next(i for i, row in enumerate(text.splitlines(), 1) if old in row)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = check(rules_copy)
    assert result.exit_code == 1
    assert f"{path}: line {line}: " in result.output and message in result.output, result.output


def test_rules_check_lists_every_mistake_at_once(rules_copy):
    """Issue 14: three broken rules in rules.toml are three lines, each with its own line
    number (the check used to stop at the first)."""
    path = rules_copy / "rules.toml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    broken = {'transfer = "DAB"': 'transfer = "XYZ"', 'close = "not_handled"': 'close = "no_such_template"',
              'close = "uncategorised"': 'close = "no_such_either"'}
    where = {new: next(i for i, row in enumerate(lines, 1) if old in row) for old, new in broken.items()}
    for old, new in broken.items():
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    result = check(rules_copy)
    assert result.exit_code == 1 and "3 error(s)" in result.output, result.output
    transfer_line, last_line = where['transfer = "XYZ"'], where['close = "no_such_either"']
    assert f"{path}: line {transfer_line}: " in result.output
    assert "no_such_template" in result.output and "no_such_either" in result.output
    assert f"line {last_line}: " in result.output


def test_rules_test_is_a_dry_run(tmp_path):
    eml = tmp_path / "m.eml"
    eml.write_bytes(mail(subject="Не печатает принтер", message_id="dry@torex.ru"))
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["rules", "test", str(eml), "--json", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["disposition"], out["department"], out["category"], out["kind"]) == (
        "ticket-created", "OSA", "Принтер", "problem")
    assert any("принтер" in " ".join(r["words"]) for r in out["rules"])
    assert [m["to"] for m in out["mail"]][:1] == ["ivan@torex.ru"]
    assert not (data / "maild.db").exists()                    # touched nothing
    assert not data.exists()                                   # not even the spool folders
    text = CliRunner().invoke(main, ["rules", "test", str(eml), "--data-dir", str(data)]).output
    assert "disposition: ticket-created" in text and "would send to ivan@torex.ru" in text


def test_invalid_rules_are_refused_on_reload_and_the_old_stay(rules_copy):
    holder = OrganisationHolder(rules_copy, PROJECT / "templates")
    before = holder()
    (rules_copy / "rules.toml").write_text('[[rule]]\nname = "x"\n', encoding="utf-8")
    assert holder.reload_if_changed() is False and holder() is before
    shutil.copy(PROJECT / "rules" / "rules.toml", rules_copy / "rules.toml")
    (rules_copy / "organisation.toml").write_text(
        (rules_copy / "organisation.toml").read_text(encoding="utf-8").replace(
            '"torex.ru"', '"torex.ru", "plant.example"'), encoding="utf-8")
    assert holder.reload_if_changed() is True and "plant.example" in holder().domains


def test_condition_kinds_words_whole_words_contains_regex(tmp_path, rules_copy):
    from maild.deciding import rules
    from maild.deciding.policy import load_policy
    from maild.reading.parse import parse
    (rules_copy / "rules.toml").write_text('''
[[rule]]
name = "w"
  [[rule.if]]
  field = "text"
  words = ["срочн"]
  [rule.then]
  priority = "high"

[[rule]]
name = "ww"
  [[rule.if]]
  field = "subject"
  whole_words = ["ВПР"]
  [rule.then]
  priority = "urgent"

[[rule]]
name = "all"
match = "all"
  [[rule.if]]
  field = "sender_domain"
  contains = ["torex.ru"]
  [[rule.if]]
  field = "header:X-Mailer"
  regex = ['1C:Enterprise\\s+8']
  [rule.then]
  assign = "kuznetsov"
  route = "DAB"
''', encoding="utf-8")
    org, table, reader = load_policy(rules_copy, PROJECT / "templates")
    osa = org.department("OSA")

    def routed(subject, body="текст", headers=""):
        raw = (f"From: a@torex.ru\r\nSubject: {subject}\r\n{headers}Content-Type: text/plain; "
               f"charset=utf-8\r\n\r\n{body}").encode()
        return rules.route(parse(raw), ("osticket@torex.ru",), "a@torex.ru", osa, org, table, reader)

    assert routed("Срочно: принтер").priority == "high"           # a word start, any case
    assert routed("принтер ВПРЫСК").priority == "normal"           # whole word only ...
    assert routed("ВПР не открывается").priority == "urgent"       # ... matches
    r = routed("обмен", headers="X-Mailer: 1C:Enterprise 8.3\r\n")
    assert (r.department.code, r.assign) == ("DAB", "kuznetsov")   # all of the conditions
    assert routed("обмен").department.code == "OSA"


def test_rules_test_tells_replies_as_the_worker_would(maild, tmp_path):
    maild.send(mail(message_id="orig@torex.ru"))
    maild.drain()
    args = ["--data-dir", str(maild.app.config.data_dir), "--db", maild.app.config.db_url]

    def dry(sender, body="Ещё не печатает."):
        eml = tmp_path / "r.eml"
        eml.write_bytes(mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=sender, body=body))
        return json.loads(CliRunner().invoke(main, ["rules", "test", str(eml), "--json"] + args).output)

    assert dry("ivan@torex.ru")["disposition"] == "reply-added"
    assert dry("p.petrov@torex.ru")["disposition"] == "unauthenticated-staff"     # no proof in it
    stranger = dry("a.kozlova@torex.ru")
    assert stranger["disposition"] == "ticket-created" and "OSA-000001" in stranger["reason"]
    assert "link OSA-NNNNNN and OSA-000001" in stranger["plan"]


def _in_a_parser_process(parcels):
    """What a forked parser process sees of each parcel, and whether it unpickled it again."""
    from maild.reading import prepare as parcel_mod
    seen = []
    for one in parcels:
        before = dict(parcel_mod._UNPACKED)
        policy = one.unpack()
        seen.append((sorted(policy.org.domains), before.get(one.digest) is policy))
    return seen


def test_the_rules_reach_the_parser_processes_once_per_reload(rules_copy):
    import multiprocessing as mp
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from maild.reading.prepare import Parcels

    holder = OrganisationHolder(rules_copy, PROJECT / "templates")
    parcels = Parcels()
    first = parcels.of(holder.policy)
    assert parcels.of(holder.policy) is first          # no new pickle per batch
    assert pickle.loads(pickle.dumps(first)).unpack() is holder.policy
    with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
        # Forked after the parcel was made: the child has it unpacked already.
        assert pool.submit(_in_a_parser_process, [first]).result() == [(["torex.ru"], True)]
        (rules_copy / "organisation.toml").write_text(
            (rules_copy / "organisation.toml").read_text(encoding="utf-8").replace(
                '"torex.ru"', '"torex.ru", "plant.example"'), encoding="utf-8")
        assert holder.reload_if_changed() is True
        second = parcels.of(holder.policy)
        assert second is not first and second.digest != first.digest
        # The child unpickles the new rules on the first batch, and only then.
        assert pool.submit(_in_a_parser_process, [second, second]).result() == [
            (["plant.example", "torex.ru"], False), (["plant.example", "torex.ru"], True)]
