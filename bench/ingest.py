"""Ingest benchmark: how fast maild accepts mail over SMTP and turns it into tickets.

One run, side by side, the same N pre-generated messages from K parallel SMTP clients
(smtplib in threads; ``--connections new``, the default, opens a connection per message as
most MTAs deliver, ``persistent`` keeps one per client) to:

* a trivial one-process aiosmtpd server that discards them: the ceiling of this machine;
* ``maild serve`` with one SMTP listener, and with N (``--listeners``, one per core), each on
  a fresh temporary data dir with SQLite;
* two ``maild serve`` nodes on one PostgreSQL (``--pg URL`` or ``$MAILD_TEST_PG``), the
  clients split between them as between two MX hosts;
* then maild with N listeners at a steady offered load (``--offered``, 100 mails/s);
* with ``--preload 1000000``, maild with one listener on a database that already holds a million
  tickets (bench/preload.py), against the empty one.

For each: acceptance (msgs/s, x the trivial server, p50/p99 time from the start of
``sendmail`` to the ``250``) and processing (time from the first send until every message is a
ticket with its answer queued, and N / that time). Targets (issue 16, this 2-core machine, new
connections): acceptance >= 1.0 x trivial, >= 500 tickets/s, p99 <= 20 ms at 100 mails/s.

The mail is generated up front and deterministic (fixed seed): 2-8 KB of Russian text
(UTF-8, a quarter windows-1251 8bit), 30% with an HTML alternative, every 10th with a
100-300 KB base64 attachment, each with its own Message-ID. Only 127.0.0.1 is used.

    make bench                                  # = .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py -n 500 -k 10 --keep

Exit status 0 when the run completed (missed targets are reported, not fatal); 1 when a
server does not start, a message is refused or processing does not finish in time.
The last line of output is a one-line JSON summary.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import quopri
import random
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAILD = ROOT / ".venv" / "bin" / "maild"
HOST, SEED = "127.0.0.1", 20240611
START_TIMEOUT, SEND_TIMEOUT, TICKET_TIMEOUT, STOP_TIMEOUT = 30.0, 600.0, 300.0, 60.0
TARGET_RATIO, TARGET_TICKETS, TARGET_P99_MS = 1.0, 500.0, 20.0

SENTENCES = [
    "Добрый день, коллеги.", "Не печатает принтер в бухгалтерии на третьем этаже.",
    "При запуске 1С:Бухгалтерии появляется ошибка «Нет доступа к информационной базе».",
    "Прошу восстановить доступ к общей папке отдела снабжения.",
    "С утра не открывается корпоративный сайт, браузер пишет, что сертификат недействителен.",
    "После обновления конфигурации перестал формироваться отчёт по остаткам на складе.",
    "Пользователь Иванова не может войти в почту, пароль сброшен вчера.",
    "Сканер МФУ сохраняет документы в неправильную папку.", "Заранее спасибо за помощь.",
    "Проблема повторяется уже третий день, работа отдела фактически остановлена.",
    "Скриншот ошибки прикладываю, номер рабочего места — WS-0417.",
    "Нужно установить программу для просмотра чертежей на два компьютера.",
    "В документе «Реализация товаров и услуг» неверно рассчитывается НДС.",
    "Телефон: внутренний 2143, с 9:00 до 18:00.", "Очень срочно, завтра сдаём отчётность!",
    "Обмен с сайтом завис на этапе выгрузки номенклатуры.", "Прошу решить в приоритетном порядке.",
]
SUBJECTS = ["Не печатает принтер", "Ошибка 1С при проведении документа", "Нет доступа к папке",
            "Не работает почта", "Установка ПО", "Сбой обмена с сайтом", "Медленно работает сеть",
            "Заявка на новое рабочее место", "Не формируется отчёт", "Вопрос по лицензии"]
NAMES = ["Иван Петров", "Мария Соколова", "Алексей Морозов", "Елена Волкова", "Дмитрий Козлов",
         "Ольга Новикова", "Сергей Лебедев", "Наталья Попова"]
MAILERS = ["Microsoft Outlook 16.0", "Mozilla Thunderbird 115.6", "The Bat! 10.4", "Roundcube 1.6"]


@dataclass(frozen=True)
class Msg:
    sender: str
    rcpt: str
    raw: bytes


def _text_part(text: str, subtype: str, rng: random.Random) -> str:
    """windows-1251 8bit, or UTF-8 as base64, quoted-printable or 8bit. The message is built
    as a str holding bytes as latin-1 characters, encoded once at the end."""
    roll = rng.random()
    if roll < 0.25:
        return (f"Content-Type: text/{subtype}; charset=windows-1251\n"
                "Content-Transfer-Encoding: 8bit\n\n" + text.encode("cp1251").decode("latin-1"))
    head = f"Content-Type: text/{subtype}; charset=utf-8\nContent-Transfer-Encoding: "
    if roll < 0.40 or subtype == "html":
        return head + "base64\n\n" + base64.encodebytes(text.encode()).decode()
    if roll < 0.50:
        return head + "quoted-printable\n\n" + quopri.encodestring(text.encode()).decode()
    return head + "8bit\n\n" + text.encode().decode("latin-1")


def make_message(i: int, rng: random.Random, attachment: bool) -> Msg:
    sender, name = f"user{rng.randrange(1, 400)}@torex.ru", rng.choice(NAMES)
    rcpt = "osticket@torex.ru" if rng.random() < 0.7 else "osticket-1c@torex.ru"
    size, paras = rng.randint(2000, 8000), []
    while sum(len(p.encode()) for p in paras) < size:
        paras.append(textwrap.fill(" ".join(rng.choices(SENTENCES, k=rng.randint(2, 6))), 72))
    body = _text_part("\n\n".join(paras) + f"\n\n--\nС уважением,\n{name}\n", "plain", rng)
    if rng.random() < 0.3:
        html = "<html><body>" + "".join(f"<p>{p}</p>\n" for p in paras) + "</body></html>\n"
        body = (f'Content-Type: multipart/alternative; boundary="alt-{i}"\n\n--alt-{i}\n{body}\n'
                f"--alt-{i}\n{_text_part(html, 'html', rng)}\n--alt-{i}--\n")
    if attachment:
        blob = base64.encodebytes(rng.randbytes(rng.randint(100_000, 300_000))).decode()
        body = (f'Content-Type: multipart/mixed; boundary="mix-{i}"\n\n--mix-{i}\n{body}\n'
                f'--mix-{i}\nContent-Type: application/pdf; name="scan-{i}.pdf"\n'
                "Content-Disposition: attachment; "
                f"filename*=utf-8''%D1%81%D0%BA%D0%B0%D0%BD-{i}.pdf\n"
                f"Content-Transfer-Encoding: base64\n\n{blob}\n--mix-{i}--\n")
    date = format_datetime(datetime(2024, 6, 3, 8, tzinfo=timezone(timedelta(hours=3)))
                           + timedelta(seconds=17 * i))
    subject = f"{rng.choice(SUBJECTS)} ({i})"
    head = (f"Received: from ws-{i % 250:04d}.torex.local ([10.1.{i % 250}.{i % 199 + 2}])\n"
            f"\tby mail.torex.ru with ESMTP; {date}\n"
            f"From: {Header(name, 'utf-8').encode()} <{sender}>\nTo: {rcpt}\n"
            f"Subject: {Header(subject, 'utf-8').encode()}\nDate: {date}\n"
            f"Message-ID: <bench.{SEED}.{i:06d}@torex.ru>\nMIME-Version: 1.0\n"
            f"X-Mailer: {rng.choice(MAILERS)}\n")
    return Msg(sender, rcpt, (head + body).encode("latin-1").replace(b"\n", b"\r\n"))


def generate(n: int, every: int) -> list[Msg]:
    rng = random.Random(SEED)
    return [make_message(i, rng, every > 0 and (i + 1) % every == 0) for i in range(n)]


def send_all(ports: list[int], msgs: list[Msg], clients: int, per_connection: bool = False,
             offered: float = 0.0):
    """Send from ``clients`` threads, over persistent connections (connected before the clock
    starts) or, ``per_connection``, a new connection per message as most MTAs deliver. Client k
    talks to ``ports[k % len(ports)]`` (two nodes: two MX hosts). ``offered``: messages per
    second in all, paced (0: as fast as the server answers).
    Returns (start, wall time, per-message seconds to the 250, errors)."""
    errors: list[str] = []
    latency = [0.0] * len(msgs)
    stop = threading.Event()

    def connect(k: int) -> smtplib.SMTP:
        return smtplib.SMTP(HOST, ports[k % len(ports)], local_hostname="bench.torex.ru", timeout=60)
    try:
        conns = [] if per_connection else [connect(k) for k in range(clients)]
    except (OSError, smtplib.SMTPException) as exc:
        return 0.0, 0.0, [], [f"cannot connect to {HOST}:{ports}: {exc!r}"]
    deadline = time.monotonic() + SEND_TIMEOUT
    barrier = threading.Barrier(clients + 1)
    begun = [0.0]

    def client(k: int) -> None:
        barrier.wait()
        for i in range(k, len(msgs), clients):
            if stop.is_set() or time.monotonic() > deadline:
                return
            if offered:             # message i is due i/offered seconds after the start
                time.sleep(max(0.0, begun[0] + i / offered - time.perf_counter()))
            m, t = msgs[i], time.perf_counter()
            refused: object = None
            try:
                if per_connection:
                    with connect(k) as conn:
                        refused = conn.sendmail(m.sender, [m.rcpt], m.raw)
                else:
                    refused = conns[k].sendmail(m.sender, [m.rcpt], m.raw)
            except (OSError, smtplib.SMTPException) as exc:
                refused = exc
            latency[i] = time.perf_counter() - t
            if refused:
                errors.append(f"message {i} to <{m.rcpt}> not accepted: {refused!r}")
                stop.set()
                return

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    begun[0] = t0 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 1)
    wall = time.perf_counter() - t0
    if any(t.is_alive() for t in threads) or (not errors and not all(latency)):
        errors.append(f"sending did not finish within {SEND_TIMEOUT:.0f} s")
    for c in conns:
        try:
            c.quit()
        except (OSError, smtplib.SMTPException):
            c.close()
    return t0, wall, latency, errors


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] if s else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(cmd: list[str], port: int, log: Path) -> subprocess.Popen | None:
    """Start a server in its own session; None if it does not listen in time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_server(proc)
    return None


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # its own session: the daemon and its worker
            proc.wait()


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def trivial_server(port: int, loop_kind: str) -> None:
    """Phase A's server (``--trivial-server PORT``): accepts everything, keeps nothing; on
    the stdlib's event loop (the issue's baseline) or, ``--trivial-loop uvloop``, on uvloop
    (the same loop maild's listeners use by default: the fair comparison beside it)."""
    import asyncio

    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)   # the server thread inherits the mask
    if loop_kind == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    controller = Controller(Discard(), hostname=HOST, port=port, enable_SMTPUTF8=True,
                            decode_data=False, loop=loop)
    controller.start()
    signal.sigwait(stop)
    controller.stop()


def db_counts(url: str) -> tuple[int, int, int]:
    """(tickets, answer rows, alert rows), read-only; zeros while the database is not ready. The
    answer is the acknowledgement, or for a request the rules close at once (the reading is
    sure it is not the department's work) the notice saying so: every sender gets one."""
    query = ("SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM outbox WHERE kind IN "
             "('ack', 'uncategorised', 'not_handled')), (SELECT count(*) FROM outbox WHERE kind='alert')")
    if url.startswith("sqlite:///"):
        try:
            with closing(sqlite3.connect(f"file:{url[len('sqlite:///'):]}?mode=ro", uri=True, timeout=5)) as conn:
                return conn.execute(query).fetchone()
        except sqlite3.Error:
            return 0, 0, 0
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(query)).one())
    except Exception:
        return 0, 0, 0
    finally:
        engine.dispose()


def fs_type(path: Path) -> str:
    """The file system under ``path`` (tmpfs would make the spool's fsyncs free)."""
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    found = [(len(m), kind) for m, kind in mounts if str(path).startswith(m)]
    return max(found)[1] if found else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=2000, help="messages to send (2000)")
    ap.add_argument("-k", "--clients", type=int, default=20,
                    help="parallel SMTP clients (20)")
    ap.add_argument("--connections", choices=("new", "persistent"), default="new",
                    help="a new connection per message, as most MTAs deliver (new), or one per client")
    ap.add_argument("--listeners", type=int, default=os.cpu_count() or 1,
                    help="listener processes of the 'maild, N listeners' run (one per core)")
    ap.add_argument("--pg", default=os.environ.get("MAILD_TEST_PG", ""), metavar="URL",
                    help="PostgreSQL for the two-node run (default $MAILD_TEST_PG; none: skipped)")
    ap.add_argument("--offered", type=float, default=100.0, metavar="RATE",
                    help="the paced run's offered load, mails/s (100; 0: no paced run)")
    ap.add_argument("--preload", type=int, default=0, metavar="TICKETS",
                    help="also run maild with one listener on a database already holding this many tickets "
                         "(bench/preload.py; 1000000 for issue 16's target) and compare with the empty one")
    ap.add_argument("--attachments-every", type=int, default=10, metavar="M",
                    help="every M-th message carries a 100-300 KB attachment (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir and logs")
    ap.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                    help="maild's smtp.event_loop in every run (auto: uvloop where installed)")
    ap.add_argument("--compare-loops", action="store_true",
                    help="also run maild with one listener on the stdlib's asyncio loop, beside uvloop")
    ap.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--trivial-loop", default="asyncio", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trivial_server:
        trivial_server(args.trivial_server, args.trivial_loop)
        return 0
    if args.messages < 1 or args.clients < 1:
        ap.error("--messages and --clients must be at least 1")
    n, k = args.messages, min(args.clients, args.messages)

    t = time.perf_counter()
    msgs = generate(n, args.attachments_every)
    total, median = sum(len(m.raw) for m in msgs), pct([len(m.raw) for m in msgs], .5)
    print(f"generated {n} messages ({total / 2**20:.1f} MiB, median {median / 1024:.1f} KiB) "
          f"in {time.perf_counter() - t:.1f} s; sending from {k} clients, {args.connections} connections")
    tmp = Path(tempfile.mkdtemp(prefix="maild-bench-"))
    result: dict = {"messages": n, "clients": k, "bytes": total, "nproc": os.cpu_count(),
                    "connections": args.connections, "python": platform.python_version(),
                    "fs": fs_type(tmp), "ok": False, "runs": {}}
    try:
        status = run(msgs, k, tmp, result, args)
        result["ok"] = status == 0
        return status
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps(result, sort_keys=True))


@dataclass
class Setup:
    """One way of running maild for a phase: its nodes' commands, ports and database."""
    name: str
    db_url: str
    nodes: list[tuple[list[str], int, Path]]       # (command, port, log)


def maild_setup(tmp: Path, name: str, listeners: int, db_url: str = "", nodes: int = 1,
                event_loop: str = "auto") -> Setup:
    folder = tmp / name.replace(" ", "-").replace(",", "")
    folder.mkdir()
    db_url = db_url or f"sqlite:///{folder / 'data' / 'maild.db'}"
    out = []
    for i in range(nodes):
        port = free_port()
        config = folder / f"node{i}.toml"
        config.write_text(f'data_dir = "{folder / f"data{i}" if nodes > 1 else folder / "data"}"\n'
                          f'db = "{db_url}"\n[cluster]\nnode = "bench{i}"\n'
                          # every client is 127.0.0.1 here; a real MX hears from many addresses
                          '[smtp]\nmax_connections_per_client = 1000\nmax_sessions = 2000\n'
                          f'event_loop = "{event_loop}"\n', encoding="utf-8")
        out.append(([str(MAILD), "--config", str(config), "serve", "--smtp", f"{HOST}:{port}",
                     "--listeners", str(listeners)], port, folder / f"node{i}.log"))
    if nodes > 1:       # the schema once, before the nodes start
        subprocess.run([str(MAILD), "--config", str(folder / "node0.toml"), "db", "init"], check=True,
                       capture_output=True, timeout=120)
    return Setup(name, db_url, out)


def pg_schema_url(url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema on the server for the two-node run, and how to drop it."""
    from sqlalchemy import create_engine, text
    name = f"bench_{os.getpid()}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {name}"))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}", drop


def cpu_by_role(sessions: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) of every living process of these sessions, by its name: the
    daemon (``maild``: the supervisor and first listener), ``maild-listener``, ``maild-parser``,
    ``maild-worker``, ``maild-sender`` (children.py names them)."""
    import procs
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for _, name, rest in procs.stats():
        if int(rest[3]) in sessions:
            out[name] = out.get(name, 0.0) + (int(rest[11]) + int(rest[12])) / tick
    return out


def run_maild(setup: Setup, msgs: list[Msg], k: int, per_connection: bool, offered: float = 0.0) -> dict | str:
    """One phase against ``setup``: acceptance, then the time until every message is a ticket
    with its answer queued. A string says what failed."""
    n = len(msgs)
    procs = []
    for command, port, log in setup.nodes:
        proc = start_server(command, port, log)
        if proc is None:
            for p in procs:
                stop_server(p)
            return f"{setup.name} did not start listening; its log:\n" + log.read_text(errors="replace")[-3000:]
        procs.append(proc)
    try:
        base = db_counts(setup.db_url)        # a preloaded database's own rows
        before = cpu_by_role([p.pid for p in procs])
        t0, wall, latency, errors = send_all([port for _, port, _ in setup.nodes], msgs, k, per_connection,
                                             offered)
        def counted() -> tuple[int, ...]:
            return tuple(now - then for now, then in zip(db_counts(setup.db_url), base, strict=True))
        backlog, counts = n - counted()[0], (0, 0, 0)
        while (not errors and all(p.poll() is None for p in procs)
               and time.perf_counter() - t0 < wall + TICKET_TIMEOUT):
            counts = counted()
            if counts[0] >= n and counts[1] >= n:
                break
            time.sleep(0.05)
        t_tickets = time.perf_counter() - t0
        after = cpu_by_role([p.pid for p in procs])
    finally:
        for p in procs:
            stop_server(p)
    problems = [line for _, _, log in setup.nodes for line in log.read_text(errors="replace").splitlines()
                if " ERROR " in line or " WARNING " in line or line.startswith("Traceback")]
    if problems:
        print(f"{setup.name}: {len(problems)} warnings/errors in its log, the first ones:\n  "
              + "\n  ".join(problems[:5]))
    if errors:
        return f"{setup.name}: " + "\n".join(errors[:5])
    if counts[0] < n or counts[1] < n:
        return (f"{setup.name}: only {counts[0]}/{n} tickets and {counts[1]}/{n} answers "
                f"{TICKET_TIMEOUT:.0f} s after sending")
    return {"rate": n / wall, "p50_ms": pct(latency, .5) * 1e3, "p99_ms": pct(latency, .99) * 1e3,
            "backlog_after_send": backlog, "tickets": counts[0], "acks": counts[1], "alerts": counts[2],
            "time_to_tickets_s": t_tickets, "tickets_per_s": n / t_tickets, "log_problems": len(problems),
            "cpu_ms_per_message": {role: round((after[role] - before.get(role, 0.0)) * 1e3 / n, 2)
                                   for role in sorted(after)}}


def run(msgs: list[Msg], k: int, tmp: Path, result: dict, args) -> int:
    n, per_connection = len(msgs), args.connections == "new"
    runs = result["runs"]
    for name, loop_kind in [("trivial aiosmtpd", "asyncio")] + ([("trivial aiosmtpd, uvloop", "uvloop")]
                                                                 if has_uvloop() else []):
        port, log = free_port(), tmp / f"trivial-{loop_kind}.log"
        proc = start_server([sys.executable, __file__, "--trivial-server", str(port), "--trivial-loop", loop_kind],
                            port, log)
        if proc is None:
            print(f"FAIL: the trivial aiosmtpd server ({loop_kind}) did not start:\n" + log.read_text())
            return 1
        try:
            _, wall_a, lat_a, errors = send_all([port], msgs, k, per_connection)
        finally:
            stop_server(proc)
        if errors:
            print(f"FAIL (trivial server, {loop_kind}): " + "\n".join(errors[:5]))
            return 1
        runs[name] = {"rate": n / wall_a, "p50_ms": pct(lat_a, .5) * 1e3, "p99_ms": pct(lat_a, .99) * 1e3}

    loop = args.event_loop
    setups = [maild_setup(tmp, "maild, 1 listener", 1, event_loop=loop)]
    if args.compare_loops:
        setups.append(maild_setup(tmp, "maild, 1 listener, asyncio", 1, event_loop="asyncio"))
    if args.listeners > 1:
        setups.append(maild_setup(tmp, f"maild, {args.listeners} listeners", args.listeners, event_loop=loop))
    drop = None
    if args.pg:
        url, drop = pg_schema_url(args.pg)
        setups.append(maild_setup(tmp, "2 nodes, PostgreSQL", max(1, args.listeners // 2), url, nodes=2,
                                  event_loop=loop))
    try:
        for setup in setups:
            outcome = run_maild(setup, msgs, k, per_connection)
            if isinstance(outcome, str):
                print("FAIL: " + outcome)
                return 1
            runs[setup.name] = outcome
        if args.preload:        # the cost per message on a full database, against the empty one above
            import preload
            full = maild_setup(tmp, f"maild, 1 listener, {args.preload:,} tickets", 1, event_loop=loop)
            seconds = preload.make(Path(full.db_url[len("sqlite:///"):]), args.preload)
            print(f"preloaded {args.preload:,} tickets in {seconds:.0f} s")
            outcome = run_maild(full, msgs, k, per_connection)
            if isinstance(outcome, str):
                print("FAIL: " + outcome)
                return 1
            runs[full.name] = outcome
        if args.offered:        # the latency a sender sees at a steady load, not at saturation
            paced = maild_setup(tmp, f"maild at {args.offered:.0f} mails-s", args.listeners, event_loop=loop)
            count = min(n, int(args.offered * 10))
            outcome = run_maild(paced, msgs[:count], k, per_connection, args.offered)
            if isinstance(outcome, str):
                print("FAIL: " + outcome)
                return 1
            result["paced"] = dict(outcome, offered=args.offered, messages=count)
    finally:
        if drop is not None:
            drop()
    report(result, args)
    return 0


def report(result: dict, args) -> None:
    runs, trivial = result["runs"], result["runs"]["trivial aiosmtpd"]
    verdict = lambda good: "ok" if good else "MISSED"  # noqa: E731
    print(f"\nmachine: {os.cpu_count()} CPUs, Python {result['python']} "
          f"({platform.python_implementation()}), {platform.system()} {platform.release()}, "
          f"data dir on {result['fs']}; {args.connections} connections, {result['clients']} clients")
    print(f"{'':28}{'msgs/s':>8}{'x trivial':>10}{'p50 ms':>9}{'p99 ms':>9}{'tickets/s':>11}")
    for name, r in runs.items():
        r["ratio"] = r["rate"] / trivial["rate"]
        tickets = f"{r['tickets_per_s']:11.0f}" if "tickets_per_s" in r else f"{'-':>11}"
        print(f"{name:28}{r['rate']:8.0f}{r['ratio']:10.2f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}{tickets}")
    print("CPU per message, ms, by process (the profile of maild serve as a whole):")
    for name, r in runs.items():
        if "cpu_ms_per_message" in r:
            cpu = r["cpu_ms_per_message"]
            print(f"  {name:26}" + ", ".join(f"{role} {ms:.2f}" for role, ms in cpu.items())
                  + f"; all {sum(cpu.values()):.2f}")
    best = max((r for name, r in runs.items() if name.startswith("maild")), key=lambda r: r["rate"])
    print(f"acceptance, best maild / trivial: {best['ratio']:.2f} (target >= {TARGET_RATIO:.2f}: "
          f"{verdict(best['ratio'] >= TARGET_RATIO)})")
    if "trivial aiosmtpd, uvloop" in runs:
        result["ratio_uvloop"] = best["rate"] / runs["trivial aiosmtpd, uvloop"]["rate"]
        print(f"  against the trivial server on uvloop, as maild's listeners run: {result['ratio_uvloop']:.2f}")
    print(f"tickets with answers queued, best: {best['tickets_per_s']:.0f}/s "
          f"(target >= {TARGET_TICKETS:.0f}: {verdict(best['tickets_per_s'] >= TARGET_TICKETS)})")
    full = [r for name, r in runs.items() if name.startswith("maild, 1 listener, ") and name.endswith(" tickets")]
    if full:
        empty = runs["maild, 1 listener"]
        result["preload_ratio"] = full[0]["tickets_per_s"] / empty["tickets_per_s"]
        print(f"cost per message on the full database: tickets/s {result['preload_ratio']:.2f} x the empty one, "
              f"acceptance {full[0]['rate'] / empty['rate']:.2f} x (target >= 0.90: "
              f"{verdict(result['preload_ratio'] >= 0.9)})")
    if "paced" in result:
        paced = result["paced"]
        print(f"at {paced['offered']:.0f} mails/s offered ({paced['messages']} mails): p50 {paced['p50_ms']:.1f} ms, "
              f"p99 {paced['p99_ms']:.1f} ms to the 250 (target <= {TARGET_P99_MS:.0f} ms: "
              f"{verdict(paced['p99_ms'] <= TARGET_P99_MS)})")


if __name__ == "__main__":
    sys.exit(main())
