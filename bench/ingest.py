"""Ingest benchmark: how fast maild accepts mail over SMTP and turns it into tickets.

Phase A sends N pre-generated messages from K parallel SMTP clients (one persistent
connection each, smtplib in threads) to a trivial aiosmtpd server that discards them, run
in its own process like maild: the ceiling of this machine, Python and aiosmtpd.
Phase B sends the same messages to ``maild serve`` (fresh temporary data dir, SQLite):

* acceptance: msgs/s and p50/p99 time from the start of ``sendmail`` to the ``250``,
  against phase A (target: maild >= 0.70 x trivial);
* processing: time from the first send until every message is a ticket with its
  acknowledgement queued (``tickets`` = N and N ``outbox`` rows of kind 'ack'), and
  N / that time (target: >= 300 tickets/s).

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
TARGET_RATIO, TARGET_TICKETS = 0.70, 300.0

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


def send_all(port: int, msgs: list[Msg], clients: int):
    """Send from ``clients`` persistent connections (connected before the clock starts).
    Returns (start, wall time, per-message seconds to the 250, errors)."""
    errors: list[str] = []
    latency = [0.0] * len(msgs)
    stop = threading.Event()
    try:
        conns = [smtplib.SMTP(HOST, port, local_hostname="bench.torex.ru", timeout=60)
                 for _ in range(clients)]
    except (OSError, smtplib.SMTPException) as exc:
        return 0.0, 0.0, [], [f"cannot connect to {HOST}:{port}: {exc!r}"]
    deadline = time.monotonic() + SEND_TIMEOUT
    barrier = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        barrier.wait()
        for i in range(k, len(msgs), clients):
            if stop.is_set() or time.monotonic() > deadline:
                return
            m, t = msgs[i], time.perf_counter()
            try:
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
    barrier.wait()
    t0 = time.perf_counter()
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


def trivial_server(port: int) -> None:
    """Phase A's server (``--trivial-server PORT``): accepts everything, keeps nothing."""
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)   # the server thread inherits the mask
    controller = Controller(Discard(), hostname=HOST, port=port, enable_SMTPUTF8=True,
                            decode_data=False)
    controller.start()
    signal.sigwait(stop)
    controller.stop()


def db_counts(db: Path) -> tuple[int, int, int]:
    """(tickets, answer rows, alert rows), read-only; zeros while the file is not ready. The
    answer is the acknowledgement, or for a request the rules close at once (the reading is
    sure it is not the department's work) the notice saying so: every sender gets one."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT (SELECT count(*) FROM tickets),"
                                " (SELECT count(*) FROM outbox WHERE kind IN ('ack', 'uncategorised',"
                                " 'not_handled')),"
                                " (SELECT count(*) FROM outbox WHERE kind='alert')").fetchone()
    except sqlite3.Error:
        return 0, 0, 0


def fs_type(path: Path) -> str:
    """The file system under ``path`` (tmpfs would make the spool's fsyncs free)."""
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    found = [(len(m), kind) for m, kind in mounts if str(path).startswith(m)]
    return max(found)[1] if found else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=2000, help="messages to send (2000)")
    ap.add_argument("-k", "--clients", type=int, default=20,
                    help="parallel SMTP connections (20)")
    ap.add_argument("--attachments-every", type=int, default=10, metavar="M",
                    help="every M-th message carries a 100-300 KB attachment (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir and logs")
    ap.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trivial_server:
        trivial_server(args.trivial_server)
        return 0
    if args.messages < 1 or args.clients < 1:
        ap.error("--messages and --clients must be at least 1")
    n, k = args.messages, min(args.clients, args.messages)

    t = time.perf_counter()
    msgs = generate(n, args.attachments_every)
    total, median = sum(len(m.raw) for m in msgs), pct([len(m.raw) for m in msgs], .5)
    print(f"generated {n} messages ({total / 2**20:.1f} MiB, median {median / 1024:.1f} KiB) "
          f"in {time.perf_counter() - t:.1f} s; sending from {k} clients")
    tmp = Path(tempfile.mkdtemp(prefix="maild-bench-"))
    result: dict = {"messages": n, "clients": k, "bytes": total, "nproc": os.cpu_count(),
                    "python": platform.python_version(), "fs": fs_type(tmp), "ok": False}
    try:
        status = run(msgs, k, tmp, result)
        result["ok"] = status == 0
        return status
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps(result, sort_keys=True))


def run(msgs: list[Msg], k: int, tmp: Path, result: dict) -> int:
    n = len(msgs)
    # Phase A: the trivial server.
    port, log = free_port(), tmp / "trivial.log"
    proc = start_server([sys.executable, __file__, "--trivial-server", str(port)], port, log)
    if proc is None:
        print("FAIL: the trivial aiosmtpd server did not start:\n" + log.read_text())
        return 1
    try:
        _, wall_a, lat_a, errors = send_all(port, msgs, k)
    finally:
        stop_server(proc)
    if errors:
        print("FAIL (trivial server): " + "\n".join(errors[:5]))
        return 1
    a = result["trivial"] = {"rate": n / wall_a, "p50_ms": pct(lat_a, .5) * 1e3,
                             "p99_ms": pct(lat_a, .99) * 1e3}

    # Phase B: maild.
    data, log, port = tmp / "data", tmp / "maild.log", free_port()
    proc = start_server([str(MAILD), "--data-dir", str(data), "serve", "--smtp", f"{HOST}:{port}"],
                        port, log)
    if proc is None:
        print(f"FAIL: maild did not start listening on {HOST}:{port}; its log:\n"
              + log.read_text())
        return 1
    try:
        t0, wall_b, lat_b, errors = send_all(port, msgs, k)
        backlog, counts = n - db_counts(data / "maild.db")[0], (0, 0, 0)
        while (not errors and proc.poll() is None
               and time.perf_counter() - t0 < wall_b + TICKET_TIMEOUT):
            counts = db_counts(data / "maild.db")
            if counts[0] >= n and counts[1] >= n:
                break
            time.sleep(0.05)
        t_tickets, died = time.perf_counter() - t0, proc.poll()
    finally:
        stop_server(proc)
    problems = [line for line in log.read_text(errors="replace").splitlines()
                if " ERROR " in line or " WARNING " in line or line.startswith("Traceback")]
    if problems:
        print(f"maild log: {len(problems)} warnings/errors, the first ones:\n  "
              + "\n  ".join(problems[:5]))
    if errors:
        print("FAIL (maild): " + "\n".join(errors[:5]))
        return 1
    b = result["maild"] = {"rate": n / wall_b, "p50_ms": pct(lat_b, .5) * 1e3,
                           "p99_ms": pct(lat_b, .99) * 1e3, "backlog_after_send": backlog,
                           "tickets": counts[0], "acks": counts[1], "alerts": counts[2],
                           "time_to_tickets_s": t_tickets, "tickets_per_s": n / t_tickets,
                           "log_problems": len(problems)}
    ratio = result["ratio"] = b["rate"] / a["rate"]
    verdict = lambda good: "ok" if good else "MISSED"  # noqa: E731

    print(f"\nmachine: {os.cpu_count()} CPUs, Python {result['python']} "
          f"({platform.python_implementation()}), {platform.system()} {platform.release()}, "
          f"data dir on {result['fs']}")
    print(f"{'':20}{'msgs/s':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in (("trivial aiosmtpd", a), ("maild serve", b)):
        print(f"{name:20}{r['rate']:8.0f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}")
    print(f"acceptance ratio maild/trivial: {ratio:.2f} "
          f"(target >= {TARGET_RATIO:.2f}: {verdict(ratio >= TARGET_RATIO)})")
    print(f"sending took {wall_b:.2f} s; {backlog} messages were not tickets yet when it ended")
    print(f"every message a ticket with its ack queued {t_tickets:.2f} s after the first send: "
          f"{b['tickets_per_s']:.0f} tickets/s "
          f"(target >= {TARGET_TICKETS:.0f}: {verdict(b['tickets_per_s'] >= TARGET_TICKETS)})")
    tail = max(t_tickets - wall_b, 1e-9)
    b["backlog_per_s"] = backlog / tail
    print(f"the backlog after sending ({backlog}) took {tail:.2f} s more: {backlog / tail:.0f} tickets/s "
          "with both cores free of intake")
    print(f"database: {counts[0]} tickets, {counts[1]} acks, {counts[2]} alerts queued")
    if counts[0] < n or counts[1] < n:
        print(f"FAIL: only {counts[0]}/{n} tickets and {counts[1]}/{n} acks "
              + (f"{TICKET_TIMEOUT:.0f} s after sending" if died is None
                 else f"when maild exited by itself ({died})"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
