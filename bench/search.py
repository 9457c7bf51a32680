"""Search benchmark (issue 17): the latency of ``acting/search.search`` with N entries in the
database, SQLite and PostgreSQL side by side, for a staff search (one department) and an
employee's (their own tickets), with a common word, a rare one and two words.

The database is filled with synthetic requests: sentences of helpdesk words in their
Russian forms (a Zipf-like choice, so some words are in most entries and some in few), ten
entries a ticket, two departments, 1000 requesters. The rows are written as the writer
writes them (acting/actions.py: the entry, and on SQLite its FTS row of stems); building a
million takes minutes, so a built database is kept in --keep and reused.

    .venv/bin/python bench/search.py [--entries 1000000] [--queries 100] [--keep /tmp/maild-search]
        [--pg postgresql+psycopg://maild:maild@127.0.0.1:5432/maild_test]   # PostgreSQL too
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maild.acting import db, search
from maild.reading.stems import Stems

WORDS = [word for line in ("принтер принтера принтером не печатает печатать бумага картридж замятие сканер сканировать",
                          "почта почты письмо письма пароль пароля сбросить учётная запись доступ папка сетевая диск",
                          "компьютер ноутбук монитор мышь клавиатура включается перезагрузка обновление windows office",
                          "outlook 1с бухгалтерия отчёт отчёта выгрузка зарплата склад накладная телефон номер кабинет",
                          "срочно пожалуйста помогите спасибо добрый день коллеги сервер vpn wifi интернет медленно")
         for word in line.split()]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 5000
PER_TICKET = 10
REQUESTERS = 1000


def sentence(rng: random.Random) -> str:
    # Zipf-like: the first words of WORDS are in most entries, the last in few.
    n = len(WORDS)
    return " ".join(WORDS[min(int(rng.paretovariate(0.9)) - 1, n - 1)] for _ in range(rng.randint(8, 30)))


def build(url: str, entries: int) -> None:
    engine = db.make_engine(url)
    db.init_schema(engine)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM entries")).scalar()
    if have >= entries:
        print(f"  {url.split('://')[0]}: {have} entries there already", flush=True)
        return
    rng, reader, started = random.Random(17), Stems(), time.perf_counter()
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO people (id, email, name, created_at, updated_at) VALUES "
                          "(:id, :email, '', :t, :t)"),
                     [{"id": i, "email": f"user{i}@torex.ru", "t": T0} for i in range(1, REQUESTERS + 1)])
    tickets = entries // PER_TICKET
    for start in range(0, tickets, BATCH // PER_TICKET):
        with engine.begin() as conn:
            rows_t, rows_e, fts_t, fts_e = [], [], [], []
            for tid in range(start + 1, min(start + BATCH // PER_TICKET, tickets) + 1):
                at = T0 + timedelta(minutes=tid)
                subject = sentence(rng)[:80]
                rows_t.append({"id": tid, "number": f"{'OSA' if tid % 2 else 'DAB'}-{tid:06d}",
                               "department": "OSA" if tid % 2 else "DAB", "subject": subject, "status": "open",
                               "requester": tid % REQUESTERS + 1, "t": at})
                fts_t.append({"id": tid, "stems": reader.indexed(subject)})
                for k in range(PER_TICKET):
                    eid = (tid - 1) * PER_TICKET + k + 1
                    body = "\n".join(sentence(rng) for _ in range(rng.randint(1, 3)))
                    rows_e.append({"id": eid, "tid": tid, "type": "message" if k % 3 == 0 else
                                   ("response" if k % 3 == 1 else "note"), "body": body,
                                   "t": at + timedelta(seconds=k)})
                    fts_e.append({"id": eid, "stems": reader.indexed(body)})
            conn.execute(text("INSERT INTO tickets (id, number, department, subject, status, requester_id, "
                              "source, created_at, updated_at) VALUES (:id, :number, :department, :subject, "
                              ":status, :requester, 'email', :t, :t)"), rows_t)
            conn.execute(text("INSERT INTO entries (id, ticket_id, type, created_at, body, full_body) "
                              "VALUES (:id, :tid, :type, :t, :body, '')"), rows_e)
            if sqlite:
                conn.execute(text("INSERT INTO tickets_fts (rowid, stems) VALUES (:id, :stems)"), fts_t)
                conn.execute(text("INSERT INTO entries_fts (rowid, stems) VALUES (:id, :stems)"), fts_e)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"  {engine.dialect.name}: {entries} entries written in {time.perf_counter() - started:.0f} s",
          flush=True)
    engine.dispose()


QUERIES = (("common word", "принтеры"), ("rare word", "vpn"), ("two words", "пароль почты"))


def measure(url: str, queries: int) -> dict[tuple[str, str], tuple[float, float, int]]:
    engine = db.make_engine(url)
    out = {}
    rng = random.Random(5)
    with engine.connect() as conn:
        for scope_name in ("staff", "employee"):
            for label, words in QUERIES:
                times, hits = [], 0
                for _ in range(queries):
                    scope = (search.Scope.staff(rng.choice(("OSA", "DAB"))) if scope_name == "staff"
                             else search.Scope.requester(rng.randint(1, REQUESTERS)))
                    started = time.perf_counter()
                    found = search.search(conn, words, scope)
                    times.append((time.perf_counter() - started) * 1000)
                    hits += len(found.hits)
                times.sort()
                out[(scope_name, label)] = (statistics.median(times), times[int(len(times) * 0.99) - 1],
                                            hits // queries)
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--keep", default="/tmp/maild-search")
    parser.add_argument("--pg", default="", help="a PostgreSQL URL: measure it too (its tables are replaced)")
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite:///{Path(args.keep) / f'search-{args.entries}.db'}"}
    if args.pg:
        urls["postgresql"] = args.pg
    print(f"building ({args.entries} entries, {args.entries // PER_TICKET} tickets):", flush=True)
    for url in urls.values():
        build(url, args.entries)
    results = {name: measure(url, args.queries) for name, url in urls.items()}
    print(f"\nsearch latency, ms ({args.queries} queries each; hits: tickets found, at most 20)")
    head = "".join(f"  {name + ' p50':>16} {'p99':>7} {'hits':>5}" for name in results)
    print(f"{'scope':<9} {'query':<12}{head}")
    for key in next(iter(results.values())):
        cells = "".join(f"  {r[key][0]:>16.2f} {r[key][1]:>7.2f} {r[key][2]:>5}" for r in results.values())
        print(f"{key[0]:<9} {key[1]:<12}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
