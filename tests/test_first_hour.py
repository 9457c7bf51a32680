"""A new admin's first hour off the happy path (issue 14), as they live it: the real ``maild``
command in a fresh directory, each mistake once. Every answer is the right sysexits status, at
most three lines on stderr, names the thing to fix, and holds no traceback and no SQL."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from conftest import IN_CI, PG_URL, PROJECT, free_port, mail, pg_schema

MAILD = Path(sys.executable).with_name("maild")
EX_USAGE_CLICK, EX_NOUSER, EX_CANTCREAT, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 2, 67, 73, 75, 77, 78


def maild(*args: str, cwd: Path, env: dict | None = None, stdin: bytes | None = None,
          as_nobody: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """``maild ARGS`` in ``cwd`` with no MAILD_* from the test run's own environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")} | (env or {})
    command = [str(MAILD), *args]
    if as_nobody:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, cwd=cwd, env=full, input=stdin, capture_output=True, timeout=timeout)


def answered(result: subprocess.CompletedProcess, code: int, *names: str) -> str:
    """The answer is ``code``, short, names each of ``names``; returns stderr."""
    err = result.stderr.decode("utf-8", "replace")
    everything = err + result.stdout.decode("utf-8", "replace")
    assert result.returncode == code, everything
    assert "Traceback" not in everything and "[SQL" not in everything and "sqlalche.me" not in everything, everything
    assert len([line for line in err.splitlines() if line.strip()]) <= 3, err
    for name in names:
        assert name in err, (name, err)
    return err


@pytest.fixture
def fresh(tmp_path) -> Path:
    """A directory a newcomer has just made and changed into."""
    where = tmp_path / "work"
    where.mkdir()
    return where


# -- the embedded database makes itself -------------------------------------------------------
def test_drain_on_a_fresh_directory_makes_the_database_and_says_so_once(fresh):
    err = answered(maild("drain", cwd=fresh), 0, "made a new database", str(fresh / "var" / "maild.db"))
    assert len(err.strip().splitlines()) == 1
    assert (fresh / "var" / "maild.db").is_file()
    answered(maild("drain", cwd=fresh), 0)                  # the second time: nothing to say
    assert maild("drain", cwd=fresh).stderr == b""


def test_every_command_on_a_fresh_directory_works_without_db_init(fresh):
    for command in (("tickets", "list"), ("outbox", "list"), ("log",), ("report", "phone")):
        shutil.rmtree(fresh / "var", ignore_errors=True)
        answered(maild(*command, cwd=fresh), 0, "made a new database")


def test_status_says_what_is_in_use_and_why_and_makes_nothing(fresh, tmp_path):
    result = maild("status", cwd=fresh)
    answered(result, 0)
    out = result.stdout.decode()
    assert f"{fresh / 'var'}  (the default: var/ under the current directory, {fresh})" in out
    assert "not made yet" in out and "Maildir" in out and "127.0.0.1:2525" in out and " UTC (the machine's zone" in out
    assert "web pages:     http://127.0.0.1:8025/ (maild web, or serve --web)" in out
    assert not (fresh / "var").exists()                       # looking made nothing
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = maild("status", "--json", cwd=elsewhere, env={"MAILD_DATA_DIR": str(fresh / "var")})
    import json
    shown = json.loads(result.stdout)
    assert shown["data_dir"] == {"path": str(fresh / "var"), "from": "from MAILD_DATA_DIR", "exists": False,
                                 "problem": None}
    assert shown["database"]["state"] == "absent" and shown["exit"] == 0
    assert shown["web"] == {"url": "http://127.0.0.1:8025/", "listen": "127.0.0.1:8025", "enabled": False}
    maild("db", "init", cwd=fresh)
    shown = json.loads(maild("status", "--json", "--data-dir", "var", cwd=fresh).stdout)
    assert shown["database"]["state"] == "ready" and shown["data_dir"]["from"] == "from --data-dir"


# -- what the admin typed wrong ---------------------------------------------------------------
@pytest.mark.parametrize("url, named", [
    ("nonsense", "'nonsense'"),
    ("mysql://maild@localhost/maild", "'mysql'"),
])
def test_a_database_url_maild_cannot_use(fresh, url, named):
    answered(maild("--db", url, "tickets", "list", cwd=fresh), EX_CONFIG, named)
    assert not (fresh / "var").exists()


def test_a_data_dir_that_is_a_file(fresh):
    (fresh / "var").write_text("not a directory")
    for command in (("tickets", "list"), ("drain",), ("serve", "--smtp", f"127.0.0.1:{free_port()}")):
        answered(maild(*command, cwd=fresh), EX_CANTCREAT, f"{fresh / 'var'} is a file")


def test_a_config_file_that_is_not_there_or_wrong(fresh):
    answered(maild("--config", "maild.toml", "drain", cwd=fresh), EX_CONFIG, "maild.toml", "no such file")
    (fresh / "maild.toml").write_text('data_dir = "d"\n[smtp]\nlisten = "127.0.0.1:2525"\nmax_mesage_size = 10\n')
    answered(maild("--config", "maild.toml", "drain", cwd=fresh), EX_CONFIG, "maild.toml", "max_mesage_size")
    assert not (fresh / "d").exists()                        # a mistake in the config makes nothing


def test_a_rules_mistake_names_the_file_and_line(fresh):
    rules = fresh / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    path = rules / "rules.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('transfer = "DAB"', 'transfer = "XYZ"', 1),
                    encoding="utf-8")
    answered(maild("--rules", "rules", "drain", cwd=fresh), EX_CONFIG, "rules.toml", "line", "XYZ")


def test_unknown_values_of_list_options_name_the_valid_ones(fresh):
    answered(maild("tickets", "list", "--status", "bogus", cwd=fresh), EX_USAGE_CLICK, "bogus", "open", "closed")
    answered(maild("tickets", "list", "--dept", "XYZ", cwd=fresh), 1, "XYZ", "OSA", "DAB")


def test_inject_to_an_unknown_address_and_serve_on_a_taken_port(fresh):
    answered(maild("inject", "-", "--rcpt", "nobody@torex.ru", cwd=fresh, stdin=mail()), EX_NOUSER,
             "nobody@torex.ru")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        answered(maild("serve", "--smtp", f"127.0.0.1:{port}", cwd=fresh), EX_TEMPFAIL, f"127.0.0.1:{port}")


# -- permissions: what only a person can grant -------------------------------------------------
def _as_someone_else() -> bool:
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


@pytest.fixture
def shared_dir():
    """A directory another user can reach (pytest's own tmp is its owner's only)."""
    where = Path(tempfile.mkdtemp(prefix="maild-first-hour-"))
    where.chmod(0o755)
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.mark.skipif(not _as_someone_else(), reason="root without setpriv: no way to be refused a write")
def test_a_read_only_data_dir_is_a_permission_problem_not_a_retry(shared_dir):
    data = shared_dir / "var"
    assert maild("--data-dir", str(data), "db", "init", cwd=shared_dir).returncode == 0
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if os.geteuid() != 0:
        for path in [*data.rglob("*"), data]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    nobody = os.geteuid() == 0
    try:
        for command in (("tickets", "list"), ("drain",), ("db", "init"),
                        ("serve", "--smtp", f"127.0.0.1:{free_port()}")):
            answered(maild("--data-dir", str(data), *command, cwd=shared_dir, as_nobody=nobody), EX_NOPERM,
                     str(data))
        answered(maild("--data-dir", str(data), "inject", "-", "--rcpt", "osticket@torex.ru", cwd=shared_dir,
                       stdin=mail(), as_nobody=nobody), EX_NOPERM, str(data))
        answered(maild("--data-dir", str(shared_dir / "new"), "drain", cwd=shared_dir, as_nobody=nobody),
                 EX_NOPERM, str(shared_dir / "new"))
    finally:
        for path in [data, *data.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


# -- PostgreSQL: the external database ------------------------------------------------------
@pytest.fixture
def pg():
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI must set MAILD_TEST_PG so the PostgreSQL mistakes are tried too")
        pytest.skip("MAILD_TEST_PG names no PostgreSQL (CI sets it)")
    return make_url(PG_URL)


def test_postgresql_without_a_schema_names_db_init_for_every_command(fresh, pg):
    with pg_schema() as empty:
        for command in (("drain",), ("tickets", "list"), ("serve", "--smtp", f"127.0.0.1:{free_port()}")):
            answered(maild("--db", empty, *command, cwd=fresh), EX_CONFIG, "run 'maild db init'")
        answered(maild("--db", empty, "db", "init", cwd=fresh), 0)
        answered(maild("--db", empty, "drain", cwd=fresh), 0)


def test_postgresql_database_that_does_not_exist(fresh, pg):
    name = "maild_missing_" + secrets.token_hex(4)
    url = pg.set(database=name).render_as_string(hide_password=False)
    answered(maild("--db", url, "drain", cwd=fresh), EX_CONFIG, f"the database {name} does not exist",
             f"createdb -O {pg.username} {name}")


def test_postgresql_wrong_password_is_refused_not_retried(fresh, pg):
    url = pg.set(password="not-" + (pg.password or "")).render_as_string(hide_password=False)
    err = answered(maild("--db", url, "tickets", "list", cwd=fresh), EX_NOPERM, "password")
    assert "not-" not in err                                  # the password is never printed


def test_postgresql_that_is_down_is_the_one_thing_to_retry(fresh, pg):
    url = pg.set(port=free_port(), query={"connect_timeout": "2"}).render_as_string(hide_password=False)
    answered(maild("--db", url, "tickets", "list", cwd=fresh), EX_TEMPFAIL, "try again later")


@pytest.mark.parametrize("name, command", [("maild.service", "serve"), ("maild-web.service", "web")])
def test_systemd_restarts_what_waiting_mends_and_not_what_a_person_must_fix(name, command):
    """``maild serve`` and ``maild web`` end with 73, 77 or 78 for what they name a person to
    fix; the units must not restart them every two seconds for those, and must for 75 and a crash."""
    from maild.values import Exit
    unit = (PROJECT / "systemd" / name).read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Restart"] == "on-failure"
    assert {int(x) for x in settings["RestartPreventExitStatus"].split()} == {Exit.CANTCREAT, Exit.NOPERM, Exit.CONFIG}
    assert settings["ExecStart"].split()[-1] == command


# -- found by a hostile newcomer: what only looked like a database, or only looked temporary ----
@pytest.mark.parametrize("url", ["nonsense", "postgresql://maild:maild@127.0.0.1:notaport/x",
                                 "mysql://maild@localhost/maild", "sqlite://", "sqlite:///:memory:"])
def test_status_refuses_the_database_urls_every_command_refuses(fresh, url):
    for command in (("status",), ("drain",)):
        answered(maild("--db", url, *command, cwd=fresh), EX_CONFIG, "database URL")


def test_a_file_that_is_no_sqlite_database_or_holds_others_tables_is_left_alone(fresh):
    import sqlite3
    (fresh / "text.db").write_text("hello\n")
    for command in (("status",), ("drain",), ("tickets", "list")):
        result = maild("--db", f"sqlite:///{fresh / 'text.db'}", *command, cwd=fresh)
        assert result.returncode == EX_CONFIG and "is not a SQLite database" in (result.stderr + result.stdout).decode()
    with contextlib.closing(sqlite3.connect(fresh / "other.db")) as conn:
        conn.execute("CREATE TABLE foo (x)")
        conn.commit()
    answered(maild("--db", f"sqlite:///{fresh / 'other.db'}", "drain", cwd=fresh), EX_CONFIG,
             "holds tables that are not maild's (foo)")
    with contextlib.closing(sqlite3.connect(fresh / "other.db")) as conn:
        assert [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["foo"]
    assert (fresh / "text.db").read_text() == "hello\n"


def test_a_directory_or_device_as_the_database_cannot_be_created(fresh):
    (fresh / "adir").mkdir()
    for path in (fresh / "adir", Path("/dev/null")):
        for command in (("status",), ("drain",)):
            result = maild("--db", f"sqlite:///{path}", *command, cwd=fresh)
            said = (result.stderr + result.stdout).decode()
            assert result.returncode == EX_CANTCREAT and f"{path} is not a file" in said, said


def test_a_newer_or_damaged_schema_gets_the_advice_that_mends_it(fresh):
    import sqlite3
    answered(maild("db", "init", cwd=fresh), 0)
    database = fresh / "var" / "maild.db"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("DROP TABLE ticket_changes")
        conn.commit()
    # Stamped as current, a table gone: `db init` must not answer "up to date" and loop.
    answered(maild("db", "init", cwd=fresh), EX_CONFIG, "lost the tables ticket_changes", "backup")
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042'")
        conn.commit()
    answered(maild("drain", cwd=fresh), EX_CONFIG, "0042", "newer maild")


def test_an_address_this_machine_does_not_have_is_configuration(fresh):
    answered(maild("serve", "--smtp", "192.0.2.1:2525", cwd=fresh), EX_CONFIG, "192.0.2.1:2525")


def test_bad_input_to_inject_and_rules_test_is_65(fresh):
    answered(maild("inject", "-", "--rcpt", "osticket@torex.ru", "--sender", "not an address <<>>", cwd=fresh,
                   stdin=mail()), 65, "--sender")
    (fresh / "empty.eml").write_bytes(b"")
    answered(maild("rules", "test", "empty.eml", cwd=fresh), 65, "empty.eml", "empty")
    (fresh / "maild.toml").write_text("[smtp]\nmax_message_size = 1000\n")
    (fresh / "big.eml").write_bytes(mail() + b"x" * 2000)
    for command in (("rules", "test", "big.eml"), ("inject", "big.eml", "--rcpt", "osticket@torex.ru")):
        answered(maild("--config", "maild.toml", *command, cwd=fresh), 65, "over the limit of 1000 bytes")


def test_a_hostname_that_is_no_domain_is_refused(fresh):
    (fresh / "maild.toml").write_text('hostname = ""\n')
    answered(maild("--config", "maild.toml", "status", cwd=fresh), EX_CONFIG, "hostname")


def test_a_reader_that_goes_away_is_not_an_error(fresh):
    read, write = os.pipe()
    os.close(read)                      # `maild ... | head` once head has gone
    try:
        result = subprocess.run([str(MAILD), "config", "reference"], cwd=fresh, stdout=write,
                                stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write)
    assert result.returncode == 141 and result.stderr == b"", result.stderr


@pytest.mark.skipif(not _as_someone_else(), reason="root without setpriv: no way to be refused a read")
def test_files_maild_may_not_open_are_permission_problems(shared_dir):
    nobody = os.geteuid() == 0
    answered(maild("db", "init", "--db", f"sqlite:///{shared_dir / 'ro.db'}", cwd=shared_dir), 0)
    (shared_dir / "ro.db").chmod(0o444)
    (shared_dir / "unreadable.toml").write_text("")
    (shared_dir / "unreadable.eml").write_bytes(mail())
    for name in ("unreadable.toml", "unreadable.eml"):
        (shared_dir / name).chmod(0o000)
    data = shared_dir / "data"
    data.mkdir()
    data.chmod(0o777)
    shared_dir.chmod(0o555)
    try:
        args = ("--data-dir", str(data), "--db", f"sqlite:///{shared_dir / 'ro.db'}")
        answered(maild(*args, "drain", cwd=shared_dir, as_nobody=nobody), EX_NOPERM, "cannot write the database")
        status = maild(*args, "status", cwd=shared_dir, as_nobody=nobody)      # says so, and is not "ready"
        assert status.returncode == EX_NOPERM and b"cannot write the database" in status.stdout
        answered(maild("--config", "unreadable.toml", "status", cwd=shared_dir, as_nobody=nobody), EX_NOPERM,
                 str(shared_dir / "unreadable.toml"))
        answered(maild("--data-dir", str(data), "inject", "unreadable.eml", "--rcpt", "osticket@torex.ru",
                       cwd=shared_dir, as_nobody=nobody), EX_NOPERM, "unreadable.eml")
    finally:
        shared_dir.chmod(0o755)
