"""Memory benchmark: peak resident memory while maild handles one mail with a big attachment.

The mail: from ivan@torex.ru to osticket@torex.ru, as Outlook writes it (RFC 2047 name and
subject, a quoted-printable Russian text part, an RFC 2231 file name), with a binary
attachment of 25 MiB (deterministic random bytes, like a PDF scan: incompressible) in
base64, which makes the message about 34 MiB as sent.

Each phase runs in a fresh Python process, which first does everything except the big
mail (imports, database, rules, and one small mail through the same code, so lazy imports
and caches are done): its peak RSS at that point is the baseline. Then the big mail; the
increase of the peak RSS over the baseline is what the mail cost.

* (a) parse: ``maild.parse.parse`` and ``classify`` of the raw bytes;
* (b) pipeline: a temporary data dir, ``config.load``, ``App.create``, ``init_db``, the mail
  put into the spool, ``app.worker().drain(relay=False)`` (parsing in the same process);
* (c) as (b) with the parser process ``maild serve`` uses (``worker(parser_process=True)``):
  the worker's peak and the parser process's peak (its high-water mark from /proc,
  reset after the small mail; RUSAGE_CHILDREN too, once it has exited);
* (d) ``maild serve`` for real (unless ``--no-smtp``): the mail sent with smtplib, then
  each process's high-water mark (listener, worker, parser, sender) from /proc once the
  ticket exists. The default ``smtp.max_message_size`` (25 MiB for the whole message)
  refuses this mail with 552, so this phase raises it in a config file of its own.

Target (issue 7): the increase stays below 10 x the attachment size, in every process.

    make bench-memory                     # = .venv/bin/python bench/memory.py
    .venv/bin/python bench/memory.py --attachment-mib 5 --no-smtp --keep

Exit status 0 when every phase completed (a missed target is reported, not fatal); 1 when
a phase failed (a process died, the mail did not become a ticket in time).
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
import resource
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from email.header import Header
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAILD = ROOT / ".venv" / "bin" / "maild"
HOST, SEED, MiB = "127.0.0.1", 20240611, 1024 * 1024
TARGET_RATIO = 10.0
START_TIMEOUT, TICKET_TIMEOUT, STOP_TIMEOUT, CHILD_TIMEOUT = 30.0, 300.0, 60.0, 600.0
SENDER, RCPT = "ivan@torex.ru", "osticket@torex.ru"

TEXT = ("Добрый день!\n\nНаправляю скан договора поставки №17 от 03.06.2024 для проверки "
        "подписей. Файл большой, почта с трудом его пропустила.\nПросьба подтвердить, что "
        "документ открывается.\n\n--\nС уважением,\nИван Петров\nотдел снабжения, вн. 2143\n")
FILENAME = "Скан договора №17.pdf"


# -- the mail ---------------------------------------------------------------------------
def make_message(size: int, tag: str = "big") -> bytes:
    """A mail as Outlook sends it, with an attachment of ``size`` random bytes."""
    data = random.Random(SEED).randbytes(size)
    quoted = quopri.encodestring(TEXT.encode("utf-8")).decode("ascii")
    encoded_name = "".join(f"%{b:02X}" if not chr(b).isalnum() or b > 127 else chr(b)
                           for b in FILENAME.encode("utf-8"))
    head = (
        "Received: from ws-0417.torex.local ([10.1.4.17])\n\tby mail.torex.ru with ESMTP; "
        "Mon, 03 Jun 2024 08:00:00 +0300\n"
        f"From: {Header('Иван Петров', 'utf-8').encode()} <{SENDER}>\n"
        f"To: {RCPT}\n"
        f"Subject: {Header('Скан договора поставки №17', 'utf-8').encode()}\n"
        "Date: Mon, 03 Jun 2024 08:00:00 +0300\n"
        f"Message-ID: <bench-memory.{SEED}.{tag}@torex.ru>\n"
        "MIME-Version: 1.0\n"
        "X-Mailer: Microsoft Outlook 16.0\n"
        'Content-Type: multipart/mixed; boundary="----=_NextPart_000_0017_01DAB5A1.5F3C2E10"\n'
        "\n"
        "This is a multi-part message in MIME format.\n\n"
        "------=_NextPart_000_0017_01DAB5A1.5F3C2E10\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n\n"
        f"{quoted}\n"
        "------=_NextPart_000_0017_01DAB5A1.5F3C2E10\n"
        f'Content-Type: application/pdf; name="{Header(FILENAME, "utf-8").encode()}"\n'
        "Content-Transfer-Encoding: base64\n"
        f"Content-Disposition: attachment; filename*=utf-8''{encoded_name}\n\n")
    tail = "\n------=_NextPart_000_0017_01DAB5A1.5F3C2E10--\n"
    return (head.replace("\n", "\r\n").encode("ascii")
            + base64.encodebytes(data).replace(b"\n", b"\r\n")
            + tail.replace("\n", "\r\n").encode("ascii"))


# -- measuring --------------------------------------------------------------------------
def maxrss(who: int = resource.RUSAGE_SELF) -> int:
    """Peak RSS in bytes (Linux reports kilobytes)."""
    return resource.getrusage(who).ru_maxrss * 1024


def proc_mem(pid: int) -> tuple[int, int]:
    """(current RSS, high-water mark) of a process in bytes, from /proc; (0, 0) if gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


def reset_hwm(pid: int) -> bool:
    """Reset a process's high-water mark to its current RSS (Linux: clear_refs 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every process below ``pid``, parents before their children."""
    import procs
    parents: dict[int, list[int]] = {}
    for child, _, fields in procs.stats():
        parents.setdefault(int(fields[1]), []).append(child)
    out, todo = [], [pid]
    while todo:
        parent = todo.pop(0)
        for child in sorted(parents.get(parent, [])):
            out.append((child, parent))
            todo.append(child)
    return out


def daemon_processes(listener: int) -> dict[str, int]:
    """``maild serve``'s processes by role: the listener's children are the worker (the one
    with children of its own: its parser processes) and the sender."""
    tree = descendants(listener)
    has_children = {parent for _, parent in tree}
    pids, parsers = {"listener": listener}, 0
    for pid, parent in tree:
        if parent == listener:
            pids["worker" if pid in has_children else "sender"] = pid
        else:
            parsers += 1
            pids[f"parser process {parsers}"] = pid
    return pids


class Watch:
    """High-water marks of a set of processes from a starting point: reset them (or, where
    that is not allowed, remember them), later read how far each rose."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.base: dict[str, int] = {}
        for name, pid in pids.items():
            rss, hwm = proc_mem(pid)
            self.base[name] = rss if reset_hwm(pid) else hwm

    def read(self) -> dict[str, dict[str, int]]:
        return {name: {"baseline": self.base[name], "peak": proc_mem(pid)[1]}
                for name, pid in self.pids.items()}


# -- the phases, each in a fresh process (``--child MODE FILE DIR``) ------------------------
def child(mode: str, message: Path, tmp: Path) -> dict:
    small = make_message(64 * 1024, tag="warm-up")
    if mode == "parse":
        from maild.reading.classify import classify
        from maild.reading.parse import parse
        from maild.values import Envelope
        envelope = Envelope(mail_from=SENDER, rcpt_to=(RCPT,), peer="bench")
        classify(parse(small), envelope)
        del small
        baseline = maxrss()
        t = time.perf_counter()
        mail = parse(message.read_bytes())
        verdict = classify(mail, envelope)
        elapsed = time.perf_counter() - t
        return {"baseline": baseline, "peak": maxrss(), "seconds": elapsed,
                "verdict": verdict.kind.value, "attachments": [a.size for a in mail.attachments]}

    from maild import config as config_mod
    from maild.app import App
    from maild.values import Envelope
    cfg = config_mod.load(None, data_dir=str(tmp / f"data-{mode}"))
    app = App.create(cfg)
    app.init_db()
    worker = app.worker(parser_process=mode == "pipeline-parser")
    envelope = Envelope(mail_from=SENDER, rcpt_to=(RCPT,), peer="127.0.0.1", helo="ws-0417.torex.local")
    app.spool.put(envelope, small)
    del small
    warm = worker.drain(relay=False)
    if warm.created != 1:
        raise SystemExit(f"the warm-up mail did not become a ticket: {warm.line()}")
    watch = Watch({f"parser process {i}": pid for i, (pid, _) in enumerate(descendants(os.getpid()), 1)})
    blobs = lambda: sum(1 for p in cfg.attachments_dir.rglob("*") if p.is_file())  # noqa: E731
    stored_before = blobs()
    baseline = maxrss()
    t = time.perf_counter()
    app.spool.put(envelope, message.read_bytes())
    summary = worker.drain(relay=False)
    elapsed = time.perf_counter() - t
    result = {"baseline": baseline, "peak": maxrss(), "seconds": elapsed, "children": watch.read(),
              "drain": summary.line(), "created": summary.created,
              "stored_apart": blobs() - stored_before}
    worker.close()
    app.close()
    result["children_rusage"] = maxrss(resource.RUSAGE_CHILDREN)
    if summary.created != 1:
        raise SystemExit(f"the big mail did not become a ticket: {summary.line()}")
    return result


def run_child(mode: str, message: Path, tmp: Path) -> dict | None:
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", mode, str(message), str(tmp)],
                              cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"FAIL ({mode}): not done within {CHILD_TIMEOUT:.0f} s")
        return None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"FAIL ({mode}): exit {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
        return None
    return json.loads(lines[-1])


# -- (d) maild serve over SMTP ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tickets(db: Path) -> int:
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_tickets(db: Path, n: int, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + TICKET_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if tickets(db) >= n:
            return True
        time.sleep(0.1)
    return False


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # its own session: the daemon and its children
            proc.wait()


def smtp_phase(message: Path, tmp: Path) -> dict | None:
    data, log, port = tmp / "data-smtp", tmp / "maild-smtp.log", free_port()
    conf = tmp / "maild-smtp.toml"
    conf.write_text(f"[smtp]\nmax_message_size = {message.stat().st_size * 2}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(MAILD), "--config", str(conf), "--data-dir", str(data), "serve",
                                 "--smtp", f"{HOST}:{port}"], cwd=ROOT, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("FAIL (smtp): maild serve did not start; its log:\n" + log.read_text()[-3000:])
                    return None
                time.sleep(0.05)
        with smtplib.SMTP(HOST, port, timeout=120) as client:      # warm-up: the same path, small
            client.sendmail(SENDER, [RCPT], make_message(64 * 1024, tag="warm-up"))
        if not wait_tickets(data / "maild.db", 1, proc):
            print("FAIL (smtp): the warm-up mail did not become a ticket")
            return None
        time.sleep(1.0)      # let the worker finish its batch (acks queued) before the baseline
        watch = Watch(daemon_processes(proc.pid))
        raw = message.read_bytes()
        t = time.perf_counter()
        with smtplib.SMTP(HOST, port, timeout=300) as client:
            refused = client.sendmail(SENDER, [RCPT], raw)
        sent = time.perf_counter() - t
        if refused or not wait_tickets(data / "maild.db", 2, proc):
            print(f"FAIL (smtp): the big mail did not become a ticket within {TICKET_TIMEOUT:.0f} s "
                  f"(refused: {refused!r}); the log:\n" + log.read_text()[-3000:])
            return None
        processes = watch.read()
        return {"processes": processes, "send_seconds": sent, "ticket_seconds": time.perf_counter() - t}
    except (OSError, smtplib.SMTPException) as exc:
        print(f"FAIL (smtp): {exc!r}; the log:\n" + log.read_text()[-3000:])
        return None
    finally:
        stop_server(proc)


# -- the report -----------------------------------------------------------------------------
def row(name: str, baseline: int, peak: int, attachment: int, rows: list) -> dict:
    increase = max(0, peak - baseline)
    ratio = increase / attachment
    ok = ratio < TARGET_RATIO
    print(f"{name:34}{baseline / MiB:10.1f}{peak / MiB:10.1f}{increase / MiB:10.1f}{ratio:8.2f}x"
          f"  {'ok' if ok else 'OVER'}")
    entry = {"name": name, "baseline": baseline, "peak": peak, "increase": increase,
             "ratio": round(ratio, 3), "ok": ok}
    rows.append(entry)
    return entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attachment-mib", type=float, default=25.0, help="attachment size in MiB (25)")
    ap.add_argument("--no-smtp", action="store_true", help="skip phase (d), maild serve over SMTP")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=2, metavar=("BYTES", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, message, tmp = args.child
        print(json.dumps(child(mode, Path(message), Path(tmp))))
        return 0
    if args.make:
        Path(args.make[1]).write_bytes(make_message(int(args.make[0])))
        return 0

    # This process stays small: the mail is made and read by others. (A child's ru_maxrss
    # starts from the size of the process that forked it, exec or not.)
    attachment = int(args.attachment_mib * MiB)
    tmp = Path(tempfile.mkdtemp(prefix="maild-bench-memory-"))
    result: dict = {"attachment_bytes": attachment, "target_ratio": TARGET_RATIO, "nproc": os.cpu_count(),
                    "python": platform.python_version(), "ok": False}
    try:
        status = run(attachment, tmp, not args.no_smtp, result)
        result["ok"] = status == 0
        return status
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps(result, sort_keys=True))


def run(attachment: int, tmp: Path, smtp_too: bool, result: dict) -> int:
    message = tmp / "message.eml"
    subprocess.run([sys.executable, __file__, "--make", str(attachment), str(message)], check=True)
    size = result["message_bytes"] = message.stat().st_size
    print(f"mail: {attachment / MiB:.1f} MiB attachment, {size / MiB:.1f} MiB as sent (base64); "
          f"target: each increase < {TARGET_RATIO:.0f} x the attachment = {TARGET_RATIO * attachment / MiB:.0f} MiB")
    phases = {mode: run_child(mode, message, tmp) for mode in ("parse", "pipeline", "pipeline-parser")}
    smtp = smtp_phase(message, tmp) if smtp_too else None
    failed = any(p is None for p in phases.values()) or (smtp_too and smtp is None)

    rows: list[dict] = []
    print(f"\n{'peak RSS, MiB':34}{'baseline':>10}{'peak':>10}{'increase':>10}{'ratio':>9}")
    if phases["parse"]:
        p = phases["parse"]
        result["parse"] = row("(a) parse + classify", p["baseline"], p["peak"], attachment, rows)
        result["parse"].update(seconds=p["seconds"], attachments=p["attachments"])
    for mode, label in (("pipeline", "(b) pipeline, one process"), ("pipeline-parser", "(c) pipeline: worker")):
        p = phases[mode]
        if not p:
            continue
        result[mode] = row(label, p["baseline"], p["peak"], attachment, rows)
        result[mode].update(seconds=p["seconds"], drain=p["drain"], stored_apart=p["stored_apart"])
        for name, c in p["children"].items():
            result[mode][name] = row(f"    {name}", c["baseline"], c["peak"], attachment, rows)
        if p["children"]:
            result[mode]["children_rusage"] = p["children_rusage"]
    if smtp:
        result["smtp"] = {"send_seconds": smtp["send_seconds"], "ticket_seconds": smtp["ticket_seconds"]}
        for name, c in smtp["processes"].items():
            result["smtp"][name] = row(f"(d) serve: {name}", c["baseline"], c["peak"], attachment, rows)

    print()
    if phases["parse"]:
        print(f"parse: {phases['parse']['seconds']:.1f} s, attachment sizes {phases['parse']['attachments']}")
    for mode in ("pipeline", "pipeline-parser"):
        if phases[mode]:
            print(f"{mode}: {phases[mode]['seconds']:.1f} s; {phases[mode]['drain']}; "
                  f"attachment files stored apart: {phases[mode]['stored_apart']}")
    if phases["pipeline-parser"] and phases["pipeline-parser"]["children"]:
        print("(c) parser processes' peak by RUSAGE_CHILDREN after they exited: "
              f"{phases['pipeline-parser']['children_rusage'] / MiB:.1f} MiB (baseline included)")
    if smtp:
        print(f"(d) sent in {smtp['send_seconds']:.1f} s; the ticket was there {smtp['ticket_seconds']:.1f} s "
              "after the send began")
    over = [r["name"].strip() for r in rows if not r["ok"]]
    print(f"target (increase < {TARGET_RATIO:.0f} x the attachment in every process): "
          + ("ok" if not over else "OVER in " + "; ".join(over)))
    result["within_target"] = not over
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
