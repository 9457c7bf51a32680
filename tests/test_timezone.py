"""The company's zone (issue 14): every time people read — mails, reports, digests, the
command line — is in the ``timezone`` of the config, labelled; report days begin at its
midnight; storage and ``--json`` stay UTC. Over SMTP into the real pipeline, and the CLI."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from dateutil import tz

from maild import config as config_mod
from maild.admin.cli import main
from maild.reports import dates, digest
from maild.values import FixedClock, LocalTime, SystemClock

from conftest import mail

OPENED = datetime(2026, 12, 1, 21, 36, tzinfo=UTC)      # 02.12.2026 01:36 in Saratov (UTC+4)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def zone_config(tmp_path, name: str):
    """A config file naming the zone, and the Config loaded from it."""
    path = tmp_path / f"{name.replace('/', '-')}.toml"
    path.write_text(f'timezone = "{name}"\n', encoding="utf-8")
    return path, config_mod.load(path)


def in_zone(harness_factory, tmp_path, name: str):
    path, loaded = zone_config(tmp_path, name)
    return harness_factory(configure=lambda cfg: replace(cfg, timezone=loaded.timezone)), path


def cli(h, config, *args):
    return CliRunner().invoke(main, [*args, "--config", str(config), "--data-dir", str(h.app.config.data_dir),
                                     "--db", h.app.config.db_url], catch_exceptions=False)


def open_ticket_at(h, moment: datetime, subject="Не печатает принтер"):
    """The pipeline's clock at ``moment`` for this mail, then the real one again (the command
    line's mail is queued at the real time)."""
    h.app.clock = FixedClock(moment)
    h.send(mail(subject=subject))
    assert h.drain().outcomes[-1].disposition == "ticket-created"
    h.app.clock = SystemClock()


# -- the config --------------------------------------------------------------------------
def test_an_unknown_zone_is_one_sentence_and_exit_78(tmp_path):
    path = tmp_path / "maild.toml"
    path.write_text('timezone = "Europe/Saratow"\n', encoding="utf-8")
    with pytest.raises(config_mod.ConfigError, match=r"key 'timezone' .* \"Europe/Saratov\", not 'Europe/Saratow'"):
        config_mod.load(path)
    result = CliRunner().invoke(main, ["--config", str(path), "--data-dir", str(tmp_path / "d"), "tickets", "list"])
    assert result.exit_code == 78 and "timezone" in result.output and "Europe/Saratov" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["UTC+3", "Europe", "/etc/passwd", "saratov"])
def test_what_is_not_a_zone_name_is_refused(tmp_path, name):
    """A POSIX rule like UTC+3 too: dateutil and POSIX read its sign the opposite ways."""
    path = tmp_path / "maild.toml"
    path.write_text(f'timezone = "{name}"\n', encoding="utf-8")
    with pytest.raises(config_mod.ConfigError, match="key 'timezone'"):
        config_mod.load(path)


def test_no_zone_is_the_machines(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Vladivostok")
    assert config_mod.load(None).timezone.utcoffset(datetime(2026, 12, 1)) == timedelta(hours=10)
    assert config_mod.load(None).timezone == tz.gettz("Asia/Vladivostok")


# -- the one formatter -------------------------------------------------------------------
@pytest.mark.parametrize("zone,moment,shown", [
    ("Europe/Saratov", OPENED, "02.12.2026 01:36 UTC+4"),       # the tz database says "+04"
    ("Europe/Moscow", OPENED, "02.12.2026 00:36 MSK"),
    ("Europe/Berlin", OPENED, "01.12.2026 22:36 CET"),
    ("Europe/Berlin", utc(2026, 7, 1, 10), "01.07.2026 12:00 CEST"),
    ("Asia/Kolkata", OPENED, "02.12.2026 03:06 IST"),
    ("Asia/Kathmandu", OPENED, "02.12.2026 03:21 UTC+5:45"),
    ("America/Sao_Paulo", OPENED, "01.12.2026 18:36 UTC-3"),
    ("UTC", OPENED, "01.12.2026 21:36 UTC"),
])
def test_a_time_reads_with_its_zone(zone, moment, shown):
    local = LocalTime(tz.gettz(zone))
    assert local.when(moment) == shown
    assert local.when(moment.replace(tzinfo=None)) == shown        # naive is storage's UTC
    assert local.day(moment) == shown[:10]


def test_days_begin_at_the_companys_midnight_even_across_a_dst_change():
    berlin = LocalTime(tz.gettz("Europe/Berlin"))
    assert berlin.midnight(date(2026, 3, 30)) == utc(2026, 3, 29, 22)        # CEST since the 29th
    assert berlin.midnight(date(2026, 3, 29)) == utc(2026, 3, 28, 23)
    # The last day of a period ending at a midnight: 24 hours back would be the 28th.
    assert berlin.day_before(berlin.midnight(date(2026, 3, 30))) == "29.03.2026"
    vladivostok = LocalTime(tz.gettz("Asia/Vladivostok"))
    assert vladivostok.today(FixedClock(utc(2026, 12, 1, 15))) == date(2026, 12, 2)
    assert vladivostok.today(FixedClock(utc(2026, 12, 1, 13, 59))) == date(2026, 12, 1)


# -- mails and the command line in Saratov time ------------------------------------------
def test_a_ticket_opened_at_21_36_utc_reads_02_12_01_36_in_saratov(harness_factory, tmp_path):
    h, config = in_zone(harness_factory, tmp_path, "Europe/Saratov")
    open_ticket_at(h, OPENED)
    alerts = [m for m in h.sink.messages if "Новая заявка:" in m.subject]
    assert alerts and all("Открыта: 02.12.2026 01:36 UTC+4" in a.body and "21:36" not in a.body for a in alerts)
    assert alerts[0].msg["Date"].datetime.utcoffset() == timedelta(hours=4)
    text = cli(h, config, "tickets", "show", "OSA-000001").output
    assert "opened 02.12.2026 01:36 UTC+4" in text and "--- 02.12.2026 01:36 UTC+4 ivan@torex.ru" in text
    assert "OSA-000001  open      02.12.2026 01:36 UTC+4" in cli(h, config, "tickets", "list").output
    # Scripts read JSON: it stays ISO UTC.
    shown = json.loads(cli(h, config, "tickets", "show", "OSA-000001", "--json").output)
    assert shown["created_at"] == "2026-12-01T21:36:00+00:00"
    assert shown["entries"][0]["created_at"] == "2026-12-01T21:36:00+00:00"
    # maild log: when the intake received it (the real clock), in Saratov too.
    [row] = json.loads(cli(h, config, "log", "--json").output)
    received = h.app.local.when(datetime.fromisoformat(row["received_at"]))
    assert received.endswith(" UTC+4") and f"       1  {received}  ticket-created" in cli(h, config, "log").output


def test_history_by_mail_and_the_digest_are_in_saratov_time(harness_factory, tmp_path):
    h, _ = in_zone(harness_factory, tmp_path, "Europe/Saratov")
    open_ticket_at(h, OPENED)
    h.sink.messages.clear()
    h.send(mail(subject="история"))
    h.drain()
    [history] = h.sent_to("ivan@torex.ru")
    assert "Открыта:    02.12.2026 01:36 UTC+4" in history.body
    h.sink.messages.clear()
    with h.app.engine_begin() as conn:
        digest.send(h.app.actions(conn), h.app.organisation(), OPENED + timedelta(hours=1))
    h.drain()
    subjects = {m.subject for m in h.sink.messages}
    assert subjects and all("Сводка ОСА на 02.12.2026" in s for s in subjects), subjects


# -- report days are the company's -------------------------------------------------------
def opened(summary: dict) -> int:
    return sum(row["opened"] for row in summary["rows"])


def test_today_in_vladivostok_begins_at_14_00_utc_the_day_before(harness_factory, tmp_path):
    """A ticket at 15:00 UTC on the 1st is the 2nd's there; one at 13:00 UTC is the 1st's."""
    h, config = in_zone(harness_factory, tmp_path, "Asia/Vladivostok")
    open_ticket_at(h, utc(2026, 12, 1, 13), "Не печатает принтер")
    open_ticket_at(h, utc(2026, 12, 1, 15), "Не работает мышь")

    def report(day: str) -> dict:
        result = cli(h, config, "report", "summary", "--since", day, "--until", day, "--format", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)
    second = report("02.12.2026")
    assert (second["since"], second["until"]) == ("2026-12-01T14:00:00+00:00", "2026-12-02T14:00:00+00:00")
    assert opened(second) == 1 and opened(report("01.12.2026")) == 1


def test_report_since_today_is_the_companys_today(harness_factory, tmp_path):
    """`--since today` from the real clock: an hour either side of Vladivostok's midnight,
    which is 14:00 UTC of the UTC day before — so UTC's today would count the other one."""
    h, config = in_zone(harness_factory, tmp_path, "Asia/Vladivostok")
    local = h.app.local
    midnight = local.midnight(local.today(SystemClock()))
    open_ticket_at(h, midnight - timedelta(hours=1), "Не печатает принтер")      # yesterday there
    open_ticket_at(h, midnight + timedelta(hours=1), "Не работает мышь")        # today there
    result = cli(h, config, "report", "summary", "--since", "today", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert got["since"] == midnight.isoformat() and opened(got) == 1


def test_a_mailed_report_names_the_companys_days(harness_factory, tmp_path):
    h, config = in_zone(harness_factory, tmp_path, "Europe/Saratov")
    open_ticket_at(h, utc(2026, 10, 31, 21))            # 01.11.2026 01:00 in Saratov: November's
    result = cli(h, config, "report", "summary", "--since", "01.11.2026", "--until", "30.11.2026",
                 "--format", "json")
    got = json.loads(result.output)
    assert got["since"] == "2026-10-31T20:00:00+00:00" and opened(got) == 1
    h.sink.messages.clear()
    assert cli(h, config, "report", "summary", "--since", "01.11.2026", "--until", "30.11.2026",
               "--mail-to", "boss@torex.ru").exit_code == 0
    h.drain()
    [sent] = h.sent_to("boss@torex.ru")
    assert "за 01.11.2026–30.11.2026" in sent.subject
    names = sorted(part.get_filename() for part in sent.msg.iter_attachments())
    assert names == ["summary-2026-11-01-2026-12-01.csv", "summary-2026-11-01-2026-12-01.svg"]
    [chart] = [p for p in sent.msg.iter_attachments() if p.get_filename().endswith(".svg")]
    assert "Открыто и закрыто, 01.11.2026–30.11.2026" in chart.get_payload(decode=True).decode("utf-8")


def test_dates_take_the_zone_they_are_read_in():
    saratov = LocalTime(tz.gettz("Europe/Saratov"))
    today = saratov.today(FixedClock(OPENED))
    assert today == date(2026, 12, 2)
    assert dates.since("today", today, saratov) == utc(2026, 12, 1, 20)
    assert dates.until("last month", today, saratov) == utc(2026, 11, 30, 20)
