"""Full-text search (issue 17): ``#найти`` by mail for staff and employees, ``maild tickets
search``, in both databases, with Russian word forms; the index of an upgraded database."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from maild.acting import db
from maild.admin.cli import main
from maild.reading.stems import Stems

from conftest import PG_URL, TRUSTED_DKIM, mail, pg_schema

IVAN = "Иван Иванов <ivan@torex.ru>"
OLGA = "Ольга Белова <o.belova@torex.ru>"
PETROV = "Пётр Петров <p.petrov@torex.ru>"          # OSA staff
KUZ = "Сергей Кузнецов <s.kuznetsov@torex.ru>"      # DAB staff
DAB = "osticket-1c@torex.ru"


def write(h, sender, subject, body, rcpt="osticket@torex.ru", headers=None):
    address = sender.split("<")[-1].rstrip(">")
    h.send(mail(subject=subject, sender=sender, body=body, headers=headers), rcpt=rcpt, sender=address)
    return h.drain().outcomes[-1]


def seeded(h):
    """OSA-000001 Ivan's printer (with Petrov's note and response), OSA-000002 Olga's
    cartridge, OSA-000003 Ivan's mouse, DAB-000001 Ivan's 1C question naming a printer."""
    write(h, IVAN, "Не печатает принтер", "Добрый день!\nПринтер на третьем этаже не печатает.\nСпасибо")
    write(h, OLGA, "Закончился картридж", "Картриджа больше нет, а принтером пользуется весь отдел.")
    write(h, IVAN, "Мышь", "Мышка не работает.")
    write(h, IVAN, "Отчёт в 1С", "Отчёт не выводится на принтеры бухгалтерии.", rcpt=DAB)
    write(h, PETROV, "Re: [#OSA-000001] Не печатает принтер",
          "#заметка\nпринтеру нужен новый фьюзер, пароль сервиса ТАЙНА-7", headers=TRUSTED_DKIM)
    write(h, PETROV, "Re: [#OSA-000001] Не печатает принтер", "Заменили фьюзер в принтере, проверьте.",
          headers=TRUSTED_DKIM)
    h.sink.messages.clear()


def one_mail_to(h, address):
    assert {r for m in h.sink.messages for r in m.rcpt_tos} == {address}
    [got] = h.sink.messages
    return got.body


def numbers_in(body: str) -> list[str]:
    return [word for word in body.split() if word[:4] in ("OSA-", "DAB-") and word[4:].isdigit()]


def test_staff_find_their_departments_tickets_in_any_word_form_newest_first(maild):
    seeded(maild)
    outcome = write(maild, PETROV, "поиск", "#найти принтеры", headers=TRUSTED_DKIM)
    assert outcome.disposition == "command-applied"
    body = one_mail_to(maild, "p.petrov@torex.ru")
    # принтер, принтером, принтеру... found, newest matching text first (the response on
    # OSA-000001 came after Olga's mail); DAB's ticket is another department's.
    assert numbers_in(body) == ["OSA-000001", "OSA-000002"]
    assert "принтером пользуется весь отдел" in body          # the matching line, as written
    assert "ivan@torex.ru" in body and "o.belova@torex.ru" in body
    assert "Спасибо" not in body                              # lines without the word are not shown
    with maild.session() as s:
        assert s.execute(text("SELECT count(*) FROM tickets")).scalar() == 4      # nothing opened


def test_staff_search_sees_notes_and_every_word_must_match(maild):
    seeded(maild)
    write(maild, PETROV, "поиск", "#найти фьюзера тайна", headers=TRUSTED_DKIM)
    body = one_mail_to(maild, "p.petrov@torex.ru")
    assert numbers_in(body) == ["OSA-000001"] and "заметка: " in body and "ТАЙНА-7" in body
    maild.sink.messages.clear()
    write(maild, PETROV, "поиск", "#найти фьюзер мышка", headers=TRUSTED_DKIM)
    assert "ничего не найдено" in one_mail_to(maild, "p.petrov@torex.ru")


def test_an_employee_finds_only_their_own_tickets_and_never_a_note(maild):
    seeded(maild)
    outcome = write(maild, IVAN, "вопрос", "#найти принтера")
    assert outcome.disposition == "search-sent" and outcome.ticket is None
    body = one_mail_to(maild, "ivan@torex.ru")
    # Both departments, their own only: Olga's cartridge ticket is not shown.
    assert numbers_in(body) == ["OSA-000001", "DAB-000001"]
    assert "картридж" not in body.lower() and "o.belova" not in body
    assert "Заменили фьюзер в принтере" in body             # the department's response is theirs
    assert "ТАЙНА" not in body and "пароль" not in body      # the note is not
    maild.sink.messages.clear()
    write(maild, IVAN, "вопрос", "#найти тайна")
    assert "ничего не найдено" in one_mail_to(maild, "ivan@torex.ru")


def test_a_forged_staff_search_gets_no_results_and_the_forger_nothing(maild):
    seeded(maild)
    outcome = write(maild, PETROV, "поиск", "#найти тайна")          # no proof it is Petrov's mail
    assert outcome.disposition == "command-refused"
    assert all("ТАЙНА" not in m.body for m in maild.sink.messages)


def test_a_search_of_stop_words_only_says_so(maild):
    seeded(maild)
    write(maild, IVAN, "вопрос", "#найти и не в")
    assert "Искать нечего" in one_mail_to(maild, "ivan@torex.ru")


def test_an_employees_searches_count_in_the_hourly_limit(maild):
    seeded(maild)
    dispositions = [write(maild, IVAN, "вопрос", f"#найти принтер {n}").disposition for n in range(7)]
    assert dispositions == ["search-sent"] * 5 + ["not-answered"] * 2


def test_cli_search_in_both_databases(maild, tmp_path):
    seeded(maild)
    cfg = maild.app.config
    args = ["--data-dir", cfg.data_dir, "--db", cfg.db_url, "tickets", "search"]
    runner = CliRunner()
    got = runner.invoke(main, args + ["принтерами", "--json"])
    assert got.exit_code == 0, got.output
    found = json.loads(got.output)
    assert found["words"] == ["принтер"] and found["cut"] is False
    assert [t["number"] for t in found["tickets"]] == ["OSA-000001", "DAB-000001", "OSA-000002"]
    first = found["tickets"][0]
    assert first["where"] == "response" and first["lines"] == ["Заменили фьюзер в принтере, проверьте."]
    assert set(first) == {"number", "department", "status", "subject", "requester", "at", "where", "lines"}
    mine = json.loads(runner.invoke(main, args + ["тайна", "--requester", "IVAN@torex.ru", "--json"]).output)
    assert mine["tickets"] == []
    dab = runner.invoke(main, args + ["принтер", "--dept", "DAB"])
    assert dab.exit_code == 0 and numbers_in(dab.output) == ["DAB-000001"]
    assert "> " not in dab.output and "бухгалтерии" in dab.output
    limited = runner.invoke(main, args + ["принтер", "--limit", "1"])
    assert numbers_in(limited.output) == ["OSA-000001"] and "--limit" in limited.output
    nothing = runner.invoke(main, args + ["и", "в"])
    assert nothing.exit_code == 1 and "nothing to search for" in nothing.output
    stranger = runner.invoke(main, args + ["x", "--requester", "nobody@torex.ru"])
    assert stranger.exit_code == 1 and "nobody@torex.ru" in stranger.output


WORDS = [word for line in ("принтеры принтера принтером печатает печатают сломался сломалась бухгалтерии бухгалтерия",
                            "ёлка Ёжик заявки заявкой сотрудников отделу работает работал printers printing scanned",
                            "windows10 1с v2 3 этажом почты почтовый пароли паролем") for word in line.split()]


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (MAILD_TEST_PG)")
def test_sqlites_stems_are_postgresqls_russian_stems():
    """The same Snowball stemmers on both sides: a word is indexed alike in either database."""
    reader = Stems()
    with pg_schema() as url:
        engine = db.make_engine(url)
        try:
            with engine.connect() as conn:
                for word in WORDS:
                    lexemes = conn.execute(text("SELECT tsvector_to_array(to_tsvector('russian', :w))"),
                                           {"w": word}).scalar()
                    assert lexemes == reader.of(word), word
        finally:
            engine.dispose()
