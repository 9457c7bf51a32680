"""A maild SQLite database that already holds N tickets, each as the pipeline would have left
it: its requester, the inbound record, the first entry, its Message-ID in ``thread_ids``, the
acknowledgement in ``outbox`` and the ``opened`` history row. Written with SQL in SQLite itself
(a recursive counter), so a million tickets take seconds rather than the hours the daemon would.

    .venv/bin/python bench/preload.py /tmp/big.db 1000000

bench/ingest.py ``--preload N`` uses it to measure the cost per message on a full database.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAILD = ROOT / ".venv" / "bin" / "maild"
AT = "2025-01-01 08:00:00.000000"

FILL = [
    # people: one for every ten tickets (employees write more than once)
    "INSERT INTO people (id, email, name, created_at, updated_at) SELECT n, 'old' || n || '@torex.ru', "
    "'Сотрудник ' || n, :at, :at FROM seq WHERE n <= :people",
    "INSERT INTO tickets (id, number, department, subject, status, priority, requester_id, category, kind, source, "
    "created_at, updated_at) SELECT n, 'OSA-' || printf('%06d', n), 'OSA', "
    "'Не печатает принтер, кабинет ' || (n % 500), "
    "CASE WHEN n % 10 = 0 THEN 'open' ELSE 'closed' END, 'normal', 1 + n % :people, 'Принтер', 'problem', 'email', "
    ":at, :at FROM seq",
    "INSERT INTO inbound (id, spool_id, message_key, mail_from, rcpt_to, peer, received_at, archive_path, size, "
    "subject, ticket_id, disposition, reason) SELECT n, 'preload-' || n, 'preload.' || n || '@torex.ru', "
    "'old' || (1 + n % :people) || '@torex.ru', 'osticket@torex.ru', '10.0.0.1:25', :at, '', 4000, "
    "'Не печатает принтер', n, 'ticket-created', 'preloaded' FROM seq",
    "INSERT INTO entries (id, ticket_id, type, author_id, created_at, body, full_body, inbound_id) SELECT n, n, "
    "'message', 1 + n % :people, :at, 'Добрый день! Принтер печатает полосами.', '', n FROM seq",
    "INSERT INTO thread_ids (message_id, ticket_id, outbound) SELECT 'preload.' || n || '@torex.ru', n, 0 FROM seq",
    "INSERT INTO outbox (id, ticket_id, kind, sender, recipient, subject, message_id, raw, status, attempts, "
    "next_attempt_at, created_at, sent_at) SELECT n, n, 'ack', 'osticket@torex.ru', "
    "'old' || (1 + n % :people) || '@torex.ru', 'Заявка принята', 'ack.' || n || '@maild.bench', 'x', 'sent', 1, "
    ":at, :at, :at FROM seq",
    "INSERT INTO ticket_changes (ticket_id, at, field, new, department) SELECT n, :at, 'opened', 'OSA', 'OSA' FROM seq",
]


def make(db: Path, tickets: int) -> float:
    """The schema by ``maild db init``, then the rows; returns the seconds it took."""
    t = time.perf_counter()
    db.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(MAILD), "--db", f"sqlite:///{db}", "--data-dir", str(db.parent), "db", "init"],
                   check=True, capture_output=True, timeout=120)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")          # a fixture: rebuilt if the machine dies
        conn.execute("BEGIN")
        seq = f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {int(tickets)}) "
        for statement in FILL:
            conn.execute(_with(seq, statement), {"at": AT, "people": max(1, tickets // 10)})
        conn.execute("INSERT OR REPLACE INTO ticket_counters (department, last_number) VALUES ('OSA', ?)",
                     (tickets,))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # No ANALYZE: maild never runs it, and its statistics of a million rows all 'sent' made
        # SQLite scan the outbox for due mail instead of using outbox_due (a first run did that).
    finally:
        conn.close()
    return time.perf_counter() - t


def _with(seq: str, statement: str) -> str:
    """SQLite takes the WITH clause after ``INSERT INTO t (...)``, before its SELECT."""
    head, _, select = statement.partition(" SELECT ")
    return f"{head} {seq}SELECT {select}"


if __name__ == "__main__":
    seconds = make(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"{sys.argv[2]} tickets in {seconds:.1f} s")
