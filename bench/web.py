"""Web benchmark: how fast ``maild web`` takes requests on its form, and how fast "мои заявки"
answers with a large database — side by side with its lightest page in the same run.

It starts ``maild web`` as its own process (a fresh temporary data dir, SQLite), fills the
database with ``--tickets`` tickets (default 10,000: 2,000 requesters with 5 tickets of 4
entries each; the signed-in person has 20 of them), then from K concurrent clients (aiohttp):

* ``/categories``: p50/p99 of the catalogue, the baseline of the pages' own cost;
* ``POST /``: form submissions per second, each a request kept durably (fsync) and its
  confirmation job in the spool (fsync), and p50/p99 of the POST;
* ``GET /my``: p50/p99 of the list, and ``GET /my/NUMBER``, one conversation.

The session cookie is signed with the installation's secret, as the sign-in button would
sign it (the sign-in itself needs the worker and mail, which bench/ingest.py measures).

    .venv/bin/python bench/web.py                     # 10,000 tickets, 400 requests a page, K = 8
    .venv/bin/python bench/web.py --tickets 1000 -n 200 -k 4 --keep

Exit status 0 when the run completed; 1 when the server does not start or a request fails.
The last line of output is a one-line JSON summary.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import insert

HERE = Path(__file__).resolve().parent
MAILD = Path(sys.executable).with_name("maild")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ME = "bench.user@torex.ru"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(data_dir: Path, tickets: int) -> str:
    """The database of ``data_dir`` with ``tickets`` tickets; returns a ticket of ME's."""
    from maild import config as config_mod
    from maild.acting.models import Entry, Person, Ticket
    from maild.app import App
    app = App.create(config_mod.load(None, data_dir=str(data_dir)))
    app.init_db()
    people = max(1, (tickets - 20) // 5)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with app.engine_begin() as conn:
        conn.execute(insert(Person), [{"id": 1, "email": ME, "name": "Бенч Пользователь"}]
                     + [{"id": i + 2, "email": f"user{i}@torex.ru", "name": f"Сотрудник {i}"} for i in range(people)])
        rows, entries = [], []
        for n in range(tickets):
            owner = 1 if n % max(1, tickets // 20) == 0 and n // max(1, tickets // 20) < 20 else 2 + n % people
            at = start + timedelta(minutes=n)
            rows.append({"id": n + 1, "number": f"OSA-{n + 1:06d}", "department": "OSA",
                         "subject": f"Не печатает принтер в кабинете {n % 500}", "status": "open",
                         "requester_id": owner, "source": "email", "created_at": at, "updated_at": at,
                         "category": "Принтер"})
            for k in range(4):
                entries.append({"ticket_id": n + 1, "type": ("message", "response", "note", "message")[k],
                                "author_id": owner, "created_at": at + timedelta(minutes=k),
                                "body": "Добрый день! Принтер печатает полосами. " * 8,
                                "full_body": "", "unauthenticated": False})
        conn.execute(insert(Ticket), rows)
        for i in range(0, len(entries), 5000):
            conn.execute(insert(Entry), entries[i:i + 5000])
    mine = "OSA-000001"
    app.close()
    return mine


def session_cookie(data_dir: Path) -> str:
    from maild.config import AuthConfig
    from maild.deciding.auth import load_secret
    from maild.web.tokens import Purpose, Signer
    return Signer(load_secret(AuthConfig(), data_dir)).dumps(Purpose.SESSION, {"a": ME, "g": 0})


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(n: int, k: int, one) -> tuple[float, list[float]]:
    """``n`` calls of ``one(i)`` from ``k`` workers: (seconds in all, each call's ms)."""
    latencies: list[float] = []
    todo = iter(range(n))

    async def worker():
        for i in todo:
            t0 = time.perf_counter()
            await one(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(k)))
    return time.perf_counter() - t0, latencies


async def run(base: str, n: int, k: int, cookie: str, mine: str) -> dict:
    results = {}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async def get(path: str, headers: dict | None = None) -> str:
            async with http.get(base + path, headers=headers) as r:
                text = await r.text()
                if r.status != 200:
                    raise SystemExit(f"GET {path}: {r.status}")
                return text

        async with http.get(base + "/") as r:
            csrf = CSRF.search(await r.text()).group(1)
        await get("/categories")                                            # warm up
        elapsed, lat = await timed(n, k, lambda i: get("/categories"))
        results["categories"] = {"per_s": n / elapsed, "p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99)}

        async def submit(i: int) -> None:
            form = aiohttp.FormData()
            for key, value in (("csrf", csrf), ("email", f"user{i}@torex.ru"), ("category", "OSA:printer"),
                               ("subject", f"Принтер {i}"), ("text", "Принтер печатает полосами. " * 20)):
                form.add_field(key, value)
            async with http.post(base + "/", data=form, allow_redirects=False,
                                 headers={"Origin": base, "Sec-Fetch-Site": "same-origin"}) as r:
                if r.status != 303:
                    raise SystemExit(f"POST /: {r.status} {await r.text()}")

        elapsed, lat = await timed(n, k, submit)
        results["form"] = {"per_s": n / elapsed, "p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99)}

        signed_in = {"Cookie": f"maild_session={cookie}"}
        for path, key in (("/my", "my_list"), (f"/my/{mine}", "my_ticket")):
            page = await get(path, signed_in)
            assert mine in page, page[:500]
            elapsed, lat = await timed(n, k, lambda i, p=path: get(p, signed_in))
            results[key] = {"per_s": n / elapsed, "p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=400, help="requests per page")
    parser.add_argument("-k", type=int, default=8, help="concurrent clients")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="maild-bench-web-"))
    data = tmp / "var"
    port = free_port()
    (tmp / "maild.toml").write_text(f'[web]\nlisten = "127.0.0.1:{port}"\nper_client_hour = 1000000\n'
                                    'per_address_hour = 1000000\n')
    t0 = time.perf_counter()
    mine = fill(data, args.tickets)
    print(f"database: {args.tickets} tickets, {args.tickets * 4} entries in {time.perf_counter() - t0:.1f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    log = open(tmp / "web.log", "w")        # noqa: SIM115 - the process writes to it
    proc = subprocess.Popen([str(MAILD), "--config", str(tmp / "maild.toml"), "--data-dir", str(data), "web"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print((tmp / "web.log").read_text())
                    return 1
                time.sleep(0.1)
        results = asyncio.run(run(base, args.n, args.k, session_cookie(data), mine))
        spooled = sum(1 for _ in (data / "spool" / "incoming").iterdir())
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    print(f"\n{'page':<14}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}   ({args.n} requests, {args.k} clients, "
          f"{os.cpu_count()} cores)")
    for key, label in (("categories", "/categories"), ("form", "POST /"), ("my_list", "/my"),
                       ("my_ticket", "/my/NUMBER")):
        r = results[key]
        print(f"{label:<14}{r['per_s']:>10.0f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}")
    print(f"spool: {spooled} confirmation jobs from {args.n} submissions")
    if args.keep:
        print(f"kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {"tickets": args.tickets, "n": args.n, "k": args.k, **results, "spooled": spooled}
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if spooled == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
