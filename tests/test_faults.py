"""A 250 means the mail is safe: the real daemon under the faults real servers meet."""
from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from conftest import PG_URL, free_port, mail, wait_until
from test_daemon import MAILD, _listening


def start(tmp_path: Path, db_url: str, port: int, log_name: str, init: bool = True) -> subprocess.Popen:
    """``maild serve`` as an admin starts it: after ``maild db init`` (``init``; PostgreSQL is
    not made by ``serve``), or on a database that is not there."""
    env = dict(os.environ, MAILD_DATA_DIR=str(tmp_path / "data"), MAILD_DB=db_url)
    if init:
        subprocess.run([str(MAILD), "db", "init"], env=env, check=True, capture_output=True, timeout=60)
    with open(tmp_path / log_name, "w+") as log:    # the daemon writes to its own copy of the file
        proc = subprocess.Popen([str(MAILD), "serve", "--smtp", f"127.0.0.1:{port}"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    assert wait_until(lambda: _listening(port)), (tmp_path / log_name).read_text()
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def keys_and_tickets(db_url: str) -> dict[str, int]:
    """Message-ID -> how many inbound records; and every ticket must have its first entry."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT message_key, count(*) FROM inbound GROUP BY message_key")).all())
        empty = conn.execute(text("SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                                  "(SELECT 1 FROM entries e WHERE e.ticket_id = t.id)")).scalar()
        orphans = conn.execute(text("SELECT count(*) FROM inbound i WHERE i.disposition = 'ticket-created' "
                                    "AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = i.ticket_id)")).scalar()
    engine.dispose()
    assert empty == 0 and orphans == 0, "half-stored: a ticket without its message, or a record without its ticket"
    return counts


def test_kill_9_during_parallel_deliveries_loses_nothing_that_got_250(tmp_path, db_url):
    port = free_port()
    proc = start(tmp_path, db_url, port, "serve1.log")
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(60):
            key = f"kill-{n}-{i}@torex.ru"
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                    c.sendmail("ivan@torex.ru", ["osticket@torex.ru"],
                               mail(subject=f"Не печатает принтер {n}-{i}", message_id=key))
                with lock:
                    accepted.append(key)
            except (OSError, smtplib.SMTPException):
                with lock:
                    refused.append(key)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(accepted) >= 60, timeout=60)
    os.killpg(proc.pid, signal.SIGKILL)           # listener, worker, sender, parsers: all at once
    proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=60)
    assert refused, "the kill came too late to test anything"

    proc = start(tmp_path, db_url, port, "serve2.log")
    try:
        def done() -> bool:
            try:
                counts = keys_and_tickets(db_url)
            except Exception:
                return False
            spool = tmp_path / "data" / "spool"
            return all(key in counts for key in accepted) and not any(
                (spool / d).exists() and any((spool / d).iterdir()) for d in ("incoming", "active"))
        assert wait_until(done, timeout=90), "not every accepted message was processed after the restart"
    finally:
        stop(proc)
    counts = keys_and_tickets(db_url)
    assert all(counts[key] == 1 for key in accepted)                 # each exactly once
    assert all(counts.get(key, 0) <= 1 for key in refused)           # absent, or whole and once
    assert "Traceback" not in (tmp_path / "serve2.log").read_text()


def test_a_locked_sqlite_database_delays_processing_and_never_intake(tmp_path):
    db = tmp_path / "data" / "maild.db"
    url = f"sqlite:///{db}"
    port = free_port()
    proc = start(tmp_path, url, port, "serve.log")
    try:
        with smtplib.SMTP("127.0.0.1", port) as c:        # the schema exists, the worker runs
            c.sendmail("ivan@torex.ru", ["osticket@torex.ru"], mail(message_id="before@torex.ru"))
        assert wait_until(lambda: "before@torex.ru" in keys_and_tickets(url))
        holder = sqlite3.connect(db, timeout=30, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")                  # someone else holds the database
        started = time.monotonic()
        for i in range(20):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                assert c.sendmail("ivan@torex.ru", ["osticket@torex.ru"], mail(message_id=f"locked-{i}@torex.ru")) == {}
        assert time.monotonic() - started < 10              # intake never waited for the database
        time.sleep(1)
        holder.execute("ROLLBACK")
        holder.close()
        assert wait_until(lambda: all(f"locked-{i}@torex.ru" in keys_and_tickets(url) for i in range(20)), timeout=60)
    finally:
        stop(proc)
    assert all(n == 1 for n in keys_and_tickets(url).values())


def test_an_unreachable_postgresql_delays_processing_and_never_intake(tmp_path):
    if not PG_URL:
        import pytest

        from conftest import IN_CI
        if IN_CI:
            pytest.fail("CI must set MAILD_TEST_PG so the daemon is also tested against PostgreSQL")
        pytest.skip("MAILD_TEST_PG names no PostgreSQL (CI sets it)")
    from conftest import pg_schema
    with pg_schema() as good:
        port = free_port()
        bad = "postgresql+psycopg://maild:maild@127.0.0.1:1/none?connect_timeout=2"
        proc = start(tmp_path, bad, port, "down.log", init=False)
        try:
            for i in range(10):
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                    sent = c.sendmail("ivan@torex.ru", ["osticket@torex.ru"], mail(message_id=f"down-{i}@torex.ru"))
                    assert sent == {}
            assert wait_until(lambda: "database unavailable" in (tmp_path / "down.log").read_text(), timeout=30)
        finally:
            stop(proc)
        proc = start(tmp_path, good, port, "up.log")        # the database is back
        try:
            assert wait_until(lambda: all(f"down-{i}@torex.ru" in keys_and_tickets(good) for i in range(10)),
                              timeout=60)
        finally:
            stop(proc)
        assert all(n == 1 for n in keys_and_tickets(good).values())
        assert "Traceback" not in (tmp_path / "down.log").read_text()
