"""The command line as an MTA pipe, an admin and a script use it (click's runner, real files)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from maild import config
from maild.admin.cli import main

from conftest import mail


@pytest.fixture
def run(tmp_path, db_url):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, ["--data-dir", str(tmp_path / "data"), "--db", db_url, *args],
                             input=input, catch_exceptions=False)
    assert invoke("db", "init").exit_code == 0
    return invoke


def test_inject_drain_and_read_back_as_json(run, tmp_path):
    eml = tmp_path / "saved.eml"
    eml.write_bytes(mail(subject="Нет доступа к папке", message_id="cli@torex.ru"))
    result = run("inject", str(eml), "--rcpt", "osticket@torex.ru", "--sender", "ivan@torex.ru")
    assert result.exit_code == 0 and "queued as" in result.output
    result = run("inject", "-", "--rcpt", "osticket-1c@torex.ru", "--sender", "ivan@torex.ru",
                 input=mail(subject="Ошибка 1С", body="1С выдаёт ошибку при проведении документа.",
                            message_id="cli2@torex.ru"))
    assert result.exit_code == 0
    result = run("drain")
    assert result.exit_code == 0 and result.output.startswith("processed 2: 2 new tickets")

    listed = json.loads(run("tickets", "list", "--json").output)
    assert [(t["number"], t["subject"], t["status"]) for t in listed] == [
        ("OSA-000001", "Нет доступа к папке", "open"), ("DAB-000001", "Ошибка 1С", "open")]
    assert json.loads(run("tickets", "list", "--dept", "dab", "--json").output)[0]["number"] == "DAB-000001"

    shown = json.loads(run("tickets", "show", "osa-1", "--json").output)
    assert set(shown) >= {"number", "department", "subject", "status", "requester", "assignee",
                          "category", "kind", "source", "created_at", "entries"}
    assert shown["requester"] == {"email": "ivan@torex.ru", "name": "Иван Иванов", "phone": "", "office": "",
                                  "company": ""}
    [entry] = shown["entries"]
    assert set(entry) == {"type", "author", "created_at", "body", "full_body", "attachments", "unauthenticated"}
    assert entry["type"] == "message" and "Принтер" in entry["body"]

    text = run("tickets", "show", "OSA-000001").output
    assert "OSA-000001  Нет доступа к папке" in text and "ivan@torex.ru" in text

    rows = json.loads(run("outbox", "list", "--json").output)
    assert {r["kind"] for r in rows} == {"ack", "alert"} and len(rows) == 6
    assert set(rows[0]) >= {"id", "ticket", "to", "subject", "kind", "status", "message_id"}
    assert {r["status"] for r in rows} == {"sent"}      # no relay configured: the local Maildir
    assert len(list((tmp_path / "data" / "outbox" / "new").iterdir())) == 6


def test_inject_exit_statuses(run, tmp_path):
    assert run("inject", "-", "--rcpt", "nobody@torex.ru", input=mail()).exit_code == 67
    assert run("inject", str(tmp_path / "missing.eml"), "--rcpt", "osticket@torex.ru").exit_code == 65
    assert run("inject", "-", "--rcpt", "osticket@torex.ru", input=b"  \n").exit_code == 65
    spool_tmp = tmp_path / "data" / "spool" / "tmp"
    spool_tmp.rmdir()
    spool_tmp.write_text("in the way")
    result = run("inject", "-", "--rcpt", "osticket@torex.ru", input=mail())
    # A file where a directory must be: waiting will not mend it (73, can't create), and the
    # sentence names the file in the way.
    assert result.exit_code == 73 and f"{spool_tmp} is a file, not a directory" in result.output


def test_unknown_ticket_and_config_errors_are_clear(run, tmp_path):
    result = run("tickets", "show", "OSA-999")
    assert result.exit_code == 1 and "no ticket OSA-999" in result.output

    bad = tmp_path / "maild.toml"
    bad.write_text('[smtp]\nlisten = "127.0.0.1:2525"\nmax_mesage_size = 10\n')
    result = CliRunner().invoke(main, ["--config", str(bad), "tickets", "list"])
    assert result.exit_code == 78 and "unknown key 'smtp.max_mesage_size'" in result.output
    bad.write_text('[relay]\nport = "25"\n')
    result = CliRunner().invoke(main, ["--config", str(bad), "tickets", "list"])
    assert result.exit_code == 78 and "'relay.port' must be a int" in result.output
    assert "Traceback" not in result.output


def test_unknown_status_or_department_is_an_error_naming_the_valid_ones(run):
    """Issue 14: `--status bogus` and `--dept XYZ` used to print nothing and exit 0."""
    result = run("tickets", "list", "--status", "bogus")
    assert result.exit_code == 2
    assert all(word in result.output for word in ("bogus", "open", "answered", "closed"))
    result = run("tickets", "list", "--dept", "XYZ")
    assert result.exit_code == 1 and "XYZ" in result.output and "OSA" in result.output and "DAB" in result.output
    assert run("tickets", "list", "--status", "OPEN", "--dept", "osa").exit_code == 0


def test_broken_rules_named_with_file(tmp_path):
    rules = tmp_path / "rules"
    (rules / "departments").mkdir(parents=True)
    (rules / "organisation.toml").write_text('[organisation]\ndomains = ["torex.ru"]\n')
    (rules / "departments" / "OSA.toml").write_text('[department]\ncode = "OSA"\naddress = \n')
    result = CliRunner().invoke(main, ["--rules", str(rules), "--data-dir", str(tmp_path / "d"),
                                       "tickets", "list"])
    assert result.exit_code == 78
    assert "OSA.toml" in result.output and "line 3" in result.output


def test_example_config_documents_the_defaults():
    """... but the zone: the example shows the company's (the default is the machine's)."""
    from dataclasses import replace

    from dateutil import tz

    from maild import config

    from conftest import PROJECT
    example = config.load(PROJECT / "maild.toml.example")
    default = config.load(None)
    assert example.config_file == PROJECT / "maild.toml.example" and default.config_file is None
    assert example.timezone == tz.gettz("Europe/Saratov")
    assert replace(example, rules_dir=default.rules_dir, templates_dir=default.templates_dir,
                   timezone=default.timezone) == default


def test_global_options_also_after_the_command(tmp_path, db_url):
    runner = CliRunner()
    data = str(tmp_path / "elsewhere")
    assert runner.invoke(main, ["db", "init", "--data-dir", data, "--db", db_url]).exit_code == 0
    result = runner.invoke(main, ["inject", "-", "--rcpt", "osticket@torex.ru", "--sender",
                                  "ivan@torex.ru", "--data-dir", data], input=mail())
    assert result.exit_code == 0
    result = runner.invoke(main, ["drain", "--data-dir", data, "--db", db_url])
    assert result.exit_code == 0 and "1 new tickets" in result.output


@pytest.mark.parametrize("url,says", [
    ("nonsense", "is not a URL SQLAlchemy reads"),
    ("mysql://maild@localhost/maild", "needs a driver for 'mysql'"),
])
def test_a_bad_database_url_is_one_sentence_and_exit_78(tmp_path, url, says):
    """Issue 14: a bad --db printed a 45-line traceback."""
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "--db", url, "tickets", "list"])
    assert result.exit_code == 78 and says in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_tickets_show_names_a_requester_without_a_name_by_address_alone(run, tmp_path):
    import re
    raw = re.sub(rb"(?m)^From: .*$", b"From: ivan@torex.ru", mail(message_id="nameless@torex.ru"), count=1)
    assert b"\nFrom: ivan@torex.ru\n" in b"\n" + raw
    assert run("inject", "-", "--rcpt", "osticket@torex.ru", input=raw).exit_code == 0
    run("drain")
    text = run("tickets", "show", "OSA-000001").output
    assert "requester <ivan@torex.ru>;" in text and "requester  " not in text


@pytest.mark.parametrize("value, says", [
    ("libuv", "key 'smtp.event_loop' must be one of auto, uvloop, asyncio, not 'libuv'"),
    ("asyncio", None),
    ("uvloop", None),       # installed with maild on Linux (setup.cfg)
])
def test_the_event_loop_is_checked_when_the_config_is_read(tmp_path, value, says):
    path = tmp_path / "maild.toml"
    path.write_text(f'[smtp]\nevent_loop = "{value}"\n', encoding="utf-8")
    if says is None:
        assert config.load(path).smtp.event_loop == value
        return
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert says in str(err.value)


def test_auto_takes_uvloop_where_it_is_installed_and_asyncio_otherwise():
    from maild import eventloop
    assert eventloop.chosen("asyncio") == "asyncio"
    assert eventloop.chosen("auto") == ("uvloop" if eventloop.available() else "asyncio")
    assert eventloop.run(_which_loop(), "asyncio") == "asyncio"
    assert eventloop.run(_which_loop(), "uvloop") == "uvloop"


async def _which_loop() -> str:
    import asyncio
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
