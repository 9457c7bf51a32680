"""Deadlines (issue 17): working time on the Russian production calendar and a department's
hours; what the acknowledgement and the alert say; the clock stopping while the employee is
asked and running again; escalation to the assignee, then the lead; ``#срок``. Through the
real daemon (SMTP in, the sink out) with a controlled clock, on SQLite and PostgreSQL."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from dateutil import tz
from sqlalchemy import text

from maild.deciding import calendar as cal, deadlines
from maild.deciding.organisation import RulesError
from maild.values import FixedClock

from conftest import PROJECT, TRUSTED_DKIM, mail

SARATOV = tz.gettz("Europe/Saratov")
IVAN = "Иван Иванов <ivan@torex.ru>"
PETROV = "Пётр Петров <p.petrov@torex.ru>"          # OSA's lead (rules/departments/OSA.toml)
SIDOROVA = "Анна Сидорова <a.sidorova@torex.ru>"


def saratov(*args) -> datetime:
    return datetime(*args, tzinfo=SARATOV).astimezone(UTC)


def work() -> cal.WorkTime:
    return cal.WorkTime(cal.load_calendar(PROJECT / "rules"),
                        cal.Hours(SARATOV, time(8), time(17), (time(12), time(13))))


# -- working time -------------------------------------------------------------------------
@pytest.mark.parametrize("start, minutes, expected", [
    # Friday 16:00 + 4 h: one hour on Friday, three on Monday morning.
    (saratov(2026, 12, 4, 16, 0), 240, saratov(2026, 12, 7, 11, 0)),
    # Lunch is not working time: 11:00 + 2 h is 14:00.
    (saratov(2026, 12, 7, 11, 0), 120, saratov(2026, 12, 7, 14, 0)),
    # Tuesday 3 November 2026 is a pre-holiday day (ends 16:00), 4 November a holiday.
    (saratov(2026, 11, 3, 15, 0), 240, saratov(2026, 11, 5, 11, 0)),
    # Saturday 20 February 2027 is a working day, Monday 22nd a day off, the 23rd a holiday.
    (saratov(2027, 2, 19, 16, 30), 240, saratov(2027, 2, 20, 11, 30)),
    (saratov(2027, 2, 20, 16, 0), 120, saratov(2027, 2, 24, 9, 0)),
    # The New Year holidays: 31 December 2026 (moved from 3 January 2027) to 10 January.
    (saratov(2026, 12, 30, 16, 0), 120, saratov(2027, 1, 11, 9, 0)),
    # Mail in the night counts from the morning; 0 minutes is the first working moment.
    (saratov(2026, 12, 8, 3, 0), 0, saratov(2026, 12, 8, 8, 0)),
])
def test_working_time_crosses_weekends_holidays_and_moved_days(start, minutes, expected):
    w = work()
    assert w.add(start, minutes) == expected
    assert w.between(start, expected) == minutes or minutes == 0


def test_the_shipped_calendar_agrees_with_the_holidays_library():
    """The file is the truth the daemon uses; the library (which knows the government's
    transfers) checks it, day by day, for every year the file names."""
    holidays = pytest.importorskip("holidays")
    calendar = cal.load_calendar(PROJECT / "rules")
    assert calendar.years >= {2026, 2027}
    for year in calendar.years:
        ru = holidays.country_holidays("RU", years=year)
        day = date(year, 1, 1)
        while day.year == year:
            library_working = (day in ru.weekend_workdays) or (day.weekday() < 5 and day not in ru)
            assert calendar.is_working(day) == library_working, day
            day += timedelta(days=1)


def test_a_calendar_mistake_names_the_file_and_line(tmp_path):
    (tmp_path / "calendar.toml").write_text("[[year]]\nyear = 2026\nholidays = [2026-01-01]\n"
                                            "working = [2026-01-05]\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"calendar.toml: line 4: year 2026: working names 2026-01-05, a weekday"):
        cal.load_calendar(tmp_path)
    (tmp_path / "calendar.toml").write_text("[[year]]\nyear = 2026\ndays_off = [2027-01-01]\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"line 3: .*a day of another year"):
        cal.load_calendar(tmp_path)


@pytest.mark.parametrize("said, minutes", [("4h", 240), ("4ч", 240), ("2d", 960), ("2д", 960), ("1h30m", 90),
                                           ("1ч30мин", 90), ("3 дня", 1440), ("x", None), ("0h", None)])
def test_durations(said, minutes):
    assert deadlines.duration(said, 480) == minutes


# -- through the daemon ---------------------------------------------------------------------
def at(h, moment: datetime) -> None:
    h.app.clock = FixedClock(moment)


def write(h, sender, subject, body, headers=None):
    address = sender.split("<")[-1].rstrip(">")
    h.send(mail(subject=subject, sender=sender, body=body, headers=headers), sender=address)
    return h.drain().outcomes[-1]


def ticket_row(h, number="OSA-000001"):
    with h.session() as s:
        return s.execute(text("SELECT status, respond_by, resolve_by, responded_at, paused_minutes, escalated "
                              "FROM tickets WHERE number = :n"), {"n": number}).one()


def as_utc(value):
    """A stored moment (SQLite gives its text) in UTC."""
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@pytest.fixture
def desk(harness_factory):
    """The daemon, in Saratov's zone (what people read), with the project's rules."""
    return harness_factory(configure=lambda cfg: replace(cfg, timezone=SARATOV))


def test_the_acknowledgement_and_the_alert_say_the_deadline_in_plain_words(desk):
    at(desk, saratov(2026, 12, 4, 16, 0))          # Friday, an hour before the end of the day
    assert write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.").disposition == "ticket-created"
    [ack] = desk.sent_to("ivan@torex.ru")
    assert "Мы ответим до 11:00 понедельника, 07.12.2026." in ack.body
    alerts = desk.sent_to("p.petrov@torex.ru")
    assert alerts and "ответить до 11:00 понедельника, 07.12.2026; решить до 16:00 вторника, 08.12.2026" \
        in alerts[0].body
    row = ticket_row(desk)
    assert as_utc(row.respond_by) == saratov(2026, 12, 7, 11, 0)
    assert as_utc(row.resolve_by) == saratov(2026, 12, 8, 16, 0)


@pytest.mark.parametrize("opened, promised", [
    # A pre-holiday Tuesday (ends 16:00) and the Unity Day holiday after it.
    (saratov(2026, 11, 3, 15, 0), "Мы ответим до 11:00 четверга, 05.11.2026."),
    # Friday before the moved working Saturday of 20 February 2027.
    (saratov(2027, 2, 19, 16, 30), "Мы ответим до 11:30 субботы, 20.02.2027."),
    # The New Year holidays: 31 December 2026 (moved from 3 January) to 10 January.
    (saratov(2026, 12, 30, 15, 0), "Мы ответим до 10:00 понедельника, 11.01.2027."),
])
def test_the_acknowledgement_counts_holidays_and_moved_days(desk, opened, promised):
    at(desk, opened)
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    assert promised in desk.sent_to("ivan@torex.ru")[0].body


def test_a_categorys_own_terms_win(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "[Учётная запись и пароль] Заблокировалась учётная запись",
          "Не могу войти в компьютер, пишет что учётная запись заблокирована.")
    row = ticket_row(desk)
    assert as_utc(row.respond_by) == saratov(2026, 12, 7, 9, 30)       # respond = "30m"
    assert as_utc(row.resolve_by) == saratov(2026, 12, 7, 11, 0)       # resolve = "2h"


def test_the_clock_stops_while_the_employee_is_asked_and_runs_again(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))             # Monday; resolve 2d = 16 working hours
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    assert as_utc(ticket_row(desk).resolve_by) == saratov(2026, 12, 9, 9, 0)
    at(desk, saratov(2026, 12, 7, 10, 0))            # an hour later Petrov asks a question
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "Какая модель принтера?", headers=TRUSTED_DKIM)
    row = ticket_row(desk)
    assert row.status == "answered" and as_utc(row.responded_at) == saratov(2026, 12, 7, 10, 0)
    assert row.paused_minutes == 15 * 60
    # Nothing is overdue while the employee is asked, however long they take.
    at(desk, saratov(2026, 12, 10, 10, 0))
    assert desk.worker().escalate() == 0
    write(desk, IVAN, "Re: [#OSA-000001] Не печатает принтер", "HP LaserJet 1320.")
    row = ticket_row(desk)
    # Thursday 10:00 + the 15 hours that were left: Thu 6 h, Fri 8 h, Monday 1 h.
    assert row.status == "open" and row.paused_minutes is None
    assert as_utc(row.resolve_by) == saratov(2026, 12, 14, 9, 0)


def test_a_missed_deadline_goes_to_the_assignee_then_to_the_lead_once_each(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))             # respond by 14:00 (lunch is not working time)
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    at(desk, saratov(2026, 12, 7, 9, 5))
    assert write(desk, SIDOROVA, "Re: [#OSA-000001] Не печатает принтер", "#взять",
                 headers=TRUSTED_DKIM).disposition == "command-applied"
    desk.sink.messages.clear()
    at(desk, saratov(2026, 12, 7, 13, 59))
    assert desk.worker().escalate() == 0
    at(desk, saratov(2026, 12, 7, 14, 30))
    assert desk.worker().escalate() == 1
    desk.drain()
    [first] = desk.sink.messages
    assert first.rcpt_tos == ["a.sidorova@torex.ru"]
    assert "Срок ответа по заявке OSA-000001 истёк 07.12.2026 14:00" in first.body
    assert "[#OSA-000001]" in first.subject
    assert desk.worker().escalate() == 0             # told once
    desk.drain()
    assert len(desk.sink.messages) == 1
    at(desk, saratov(2026, 12, 7, 16, 1))            # two working hours late: the lead
    assert desk.worker().escalate() == 1
    desk.drain()
    assert [m.rcpt_tos for m in desk.sink.messages[1:]] == [["p.petrov@torex.ru"]]
    assert "руководитель" in desk.sink.messages[1].body
    assert desk.worker().escalate() == 0
    assert ticket_row(desk).escalated == 2
    assert not desk.sent_to("ivan@torex.ru")         # the requester hears nothing of it


def test_an_unassigned_overdue_ticket_goes_to_the_whole_department(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    desk.sink.messages.clear()
    at(desk, saratov(2026, 12, 7, 14, 30))
    desk.worker().escalate()
    desk.drain()
    assert sorted(r for m in desk.sink.messages for r in m.rcpt_tos) == ["a.sidorova@torex.ru", "p.petrov@torex.ru"]


def test_deadline_command_moves_the_deadline_with_a_reason_and_without_one_changes_nothing(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    desk.sink.messages.clear()
    refused = write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "#срок 10.12.2026 15:00",
                    headers=TRUSTED_DKIM)
    assert refused.disposition == "command-refused"
    [receipt] = desk.sent_to("p.petrov@torex.ru")
    assert "укажите причину" in receipt.body
    assert as_utc(ticket_row(desk).resolve_by) == saratov(2026, 12, 9, 9, 0)
    desk.sink.messages.clear()
    assert write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "#срок 10.12.2026 15:00 ждём картридж",
                 headers=TRUSTED_DKIM).disposition == "command-applied"
    assert as_utc(ticket_row(desk).resolve_by) == saratov(2026, 12, 10, 15, 0)
    with desk.session() as s:
        events = [r[0] for r in s.execute(text("SELECT body FROM entries WHERE type = 'event' ORDER BY id"))]
    assert "Срок решения: до 15:00 четверга, 10.12.2026 (был до 09:00 среды, 09.12.2026). Причина: ждём картридж" \
        in events
    assert not desk.sent_to("ivan@torex.ru")         # internal: the requester is not told
    # A duration is working time from now; a day off is refused.
    desk.sink.messages.clear()
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "#срок 4ч ждём ответа поставщика",
          headers=TRUSTED_DKIM)
    assert as_utc(ticket_row(desk).resolve_by) == saratov(2026, 12, 7, 14, 0)
    desk.sink.messages.clear()
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "#срок 12.12.2026 поставщик", headers=TRUSTED_DKIM)
    assert "нерабочий день" in desk.sent_to("p.petrov@torex.ru")[0].body


def test_a_forged_deadline_command_changes_nothing(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "#срок 31.12.2026 15:00 потом")   # no proof
    assert as_utc(ticket_row(desk).resolve_by) == saratov(2026, 12, 9, 9, 0)


def test_the_digest_lists_the_missed_and_the_near_deadlines(desk):
    from maild.reports import digest
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")      # respond by 14:00 Mon
    at(desk, saratov(2026, 12, 8, 9, 0))
    write(desk, IVAN, "Не работает мышь", "Мышь не двигается.")                        # respond by 14:00 Tue
    at(desk, saratov(2026, 12, 1, 9, 0))
    write(desk, IVAN, "Монитор", "Нужен второй монитор.")                               # long overdue
    write(desk, PETROV, "Re: [#OSA-000003] Монитор", "Закажем.", headers=TRUSTED_DKIM)  # answered: no clock
    desk.sink.messages.clear()
    morning = saratov(2026, 12, 8, 8, 30)
    with desk.app.engine_begin() as conn:
        digest.send(desk.app.actions(conn), desk.app.organisation(), morning)
    desk.drain()
    body = desk.sent_to("p.petrov@torex.ru")[0].body.replace("\r\n", "\n")
    late = body.split("Срок истёк:")[1].split("\n\n")[0]
    near = body.split("Срок истекает в ближайший рабочий день:")[1].split("\n\n")[0]
    assert "OSA-000001  ответить до 14:00 понедельника, 07.12.2026" in late and "OSA-000002" not in late
    assert "OSA-000002  ответить до 14:00 вторника, 08.12.2026" in near and "OSA-000001" not in near
    assert "OSA-000003" not in late + near


def test_the_report_counts_answers_within_the_deadline_per_category(desk):
    from maild.reports import report
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "[Принтер] Не печатает принтер", "Принтер на 3 этаже не печатает.")     # by 14:00
    write(desk, IVAN, "[Принтер] Замятие бумаги", "Бумага застревает в принтере.")              # by 14:00
    write(desk, IVAN, "[Почта] Не уходят письма", "Письма висят в исходящих.")                 # by 10:00
    at(desk, saratov(2026, 12, 7, 11, 0))
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "Проверьте сейчас.", headers=TRUSTED_DKIM)
    write(desk, PETROV, "Re: [#OSA-000003] Не уходят письма", "Проверьте сейчас.", headers=TRUSTED_DKIM)
    with desk.app.engine_begin() as conn:
        rows = {r.category: r for r in report.summary(conn, saratov(2026, 12, 1, 0, 0),
                                                       saratov(2026, 12, 31, 0, 0)).rows}
    assert (rows["Принтер"].answered_in_time, rows["Принтер"].with_deadline) == (1, 2)
    assert (rows["Почта"].answered_in_time, rows["Почта"].with_deadline) == (0, 1)      # an hour late
    assert report.in_time(rows["Принтер"]) == "1/2"


@pytest.mark.parametrize("year", [2026, 2027])
def test_rules_calendar_drafts_the_year_the_shipped_file_holds(year):
    """`maild rules calendar YEAR`: the library's draft is the file's table for that year."""
    import tomllib

    from click.testing import CliRunner

    from maild.admin.cli import main
    pytest.importorskip("holidays")
    result = CliRunner().invoke(main, ["rules", "calendar", str(year)])
    assert result.exit_code == 0, result.output
    drafted = tomllib.loads(result.output)["year"][0]
    shipped = next(t for t in tomllib.loads((PROJECT / "rules" / "calendar.toml").read_text(encoding="utf-8"))["year"]
                   if t["year"] == year)
    for key in ("holidays", "days_off", "working", "short"):
        assert sorted(drafted[key]) == sorted(shipped[key]), key


# -- what a hostile review found (each once a bug) ------------------------------------------
def test_an_overdue_ticket_answered_and_answered_back_tells_the_lead_only_once(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    at(desk, saratov(2026, 12, 7, 10, 0))
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "Какая модель?", headers=TRUSTED_DKIM)
    write(desk, IVAN, "Re: [#OSA-000001] Не печатает принтер", "HP 1320.")        # resolve by Wed 09:00
    for moment in (saratov(2026, 12, 9, 10, 30), saratov(2026, 12, 9, 12, 30)):     # stage 1, then 2
        at(desk, moment)
        assert desk.worker().escalate() == 1
    assert ticket_row(desk).escalated == 2
    at(desk, saratov(2026, 12, 9, 13, 30))       # a question and its answer: still the same deadline
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "А лампа горит?", headers=TRUSTED_DKIM)
    write(desk, IVAN, "Re: [#OSA-000001] Не печатает принтер", "Горит.")
    assert ticket_row(desk).escalated == 2
    at(desk, saratov(2026, 12, 9, 16, 0))
    assert desk.worker().escalate() == 0


def test_a_response_sent_with_close_is_the_first_response(desk):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    at(desk, saratov(2026, 12, 7, 9, 30))
    write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", "#закрыть\nЗаменили картридж.", headers=TRUSTED_DKIM)
    assert as_utc(ticket_row(desk).responded_at) == saratov(2026, 12, 7, 9, 30)
    at(desk, saratov(2026, 12, 14, 9, 0))        # reopened a week later: the response deadline was met
    write(desk, IVAN, "Re: [#OSA-000001] Не печатает принтер", "Опять не печатает.")
    assert desk.worker().escalate() == 0


@pytest.mark.parametrize("said, why", [("1000д долго", "до 400 дней"), ("31.12.2030 потом", "дальше 400 дней"),
                                       ("31.02.2027 x", "нет в календаре")])
def test_a_deadline_out_of_reach_is_refused_not_a_failure(desk, said, why):
    at(desk, saratov(2026, 12, 7, 9, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    desk.sink.messages.clear()
    outcome = write(desk, PETROV, "Re: [#OSA-000001] Не печатает принтер", f"#срок {said}", headers=TRUSTED_DKIM)
    assert outcome.disposition == "command-refused"
    assert why in desk.sent_to("p.petrov@torex.ru")[0].body


@pytest.mark.parametrize("line, said", [('lunch = "25:00-26:00"', "lunch"), ('zone = "/etc/passwd"', "zone"),
                                        ('zone = "UTC+3"', "zone")])
def test_a_wrong_hours_value_names_the_file_and_line(tmp_path, line, said):
    import shutil

    from maild.deciding.policy import load_policy
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    path = rules / "departments" / "OSA.toml"
    source = path.read_text(encoding="utf-8")
    key = line.split(" =")[0]
    source = "\n".join(line if row.startswith(f"{key} =") else row for row in source.splitlines())
    if f"{key} =" not in path.read_text(encoding="utf-8"):
        source = source.replace('[hours]\n', f'[hours]\n{line}\n')
    path.write_text(source, encoding="utf-8")
    with pytest.raises(RulesError, match=rf"OSA.toml: line \d+: \[hours\] {said}"):
        load_policy(rules, PROJECT / "templates")
    (rules / "departments" / "OSA.toml").write_text(
        (PROJECT / "rules" / "departments" / "OSA.toml").read_text(encoding="utf-8").replace(
            'lead = "petrov"', 'lead = ["petrov"]'), encoding="utf-8")
    with pytest.raises(RulesError, match=r"OSA.toml: line \d+: \[deadlines\] lead"):
        load_policy(rules, PROJECT / "templates")


def test_tickets_show_gives_the_deadlines(desk):
    from maild.acting import store
    from maild.admin import views
    from maild.values import LocalTime
    at(desk, saratov(2026, 12, 4, 16, 0))
    write(desk, IVAN, "Не печатает принтер", "Принтер на 3 этаже не печатает.")
    with desk.session() as s:
        t = store.ticket_with_entries(s, "OSA-000001")
        shown = views.ticket(t)
        text_ = views.ticket_text(t, LocalTime(SARATOV))
    assert shown["deadlines"] == {"respond_by": "2026-12-07T07:00:00+00:00", "resolve_by": "2026-12-08T12:00:00+00:00",
                                  "responded_at": None, "paused_minutes": None, "escalated": 0}
    assert shown["merged"] is False
    assert "respond by 07.12.2026 11:00" in text_ and "resolve by 08.12.2026 16:00" in text_
