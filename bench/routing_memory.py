"""What the reading costs ``maild serve`` in memory: the whole process tree, with and without it.

Starts ``maild serve`` on a fresh data dir twice, side by side in one run: once with the rules
as shipped, once with the routing model removed (no reading: every request to triage, no
dictionaries loaded). Sends the same labelled mail (tests/fixtures/routing, both halves) over
SMTP, waits until every message is a ticket, then adds up the proportional set size (PSS:
shared pages counted once across processes) of the listener, worker, parser processes and
sender.

    .venv/bin/python bench/routing_memory.py
"""
from __future__ import annotations

import shutil
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAILD = Path(sys.executable).parent / "maild"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out += tree(int(child))
    return out


def pss_mb(pid: int) -> tuple[float, int]:
    total, pids = 0, tree(pid)
    for p in pids:
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total / 1024, len(pids)


def run(rules: Path, mails: list[Path], work: Path) -> tuple[float, float, int]:
    data, port = work / "data", free_port()
    subprocess.run([str(MAILD), "--data-dir", str(data), "--rules", str(rules), "db", "init"], check=True,
                   capture_output=True)
    daemon = subprocess.Popen([str(MAILD), "--data-dir", str(data), "--rules", str(rules), "serve",
                               "--smtp", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)
        idle, _ = pss_mb(daemon.pid)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for path in mails:
                raw = path.read_bytes()
                to = "osticket-1c@torex.ru" if b"osticket-1c@torex.ru" in raw[:3000] else "osticket@torex.ru"
                client.sendmail("bench@torex.ru", [to], raw)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with sqlite3.connect(data / "maild.db") as db:
                done = db.execute("select count(*) from inbound").fetchone()[0]
            if done >= len(mails):
                break
            time.sleep(0.5)
        busy, processes = pss_mb(daemon.pid)
        return idle, busy, processes
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def main() -> None:
    mails = sorted((ROOT / "tests" / "fixtures" / "routing").glob("*/mail/*.eml"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain = tmp / "rules-without-model"
        shutil.copytree(ROOT / "rules", plain)
        (plain / "routing-model.json.gz").unlink()
        results = {}
        for name, rules in (("without the reading", plain), ("with the reading", ROOT / "rules")):
            (tmp / name).mkdir()
            results[name] = run(rules, mails, tmp / name)
    print(f"maild serve, {len(mails)} mails over SMTP; PSS of the whole process tree, MB")
    print(f"{'':24}{'idle':>10}{'after the mail':>16}{'processes':>11}")
    for name, (idle, busy, processes) in results.items():
        print(f"{name:24}{idle:>10.1f}{busy:>16.1f}{processes:>11}")
    grow = results["with the reading"][1] - results["without the reading"][1]
    print(f"the reading adds {grow:.1f} MB to the daemon (target <= 60)")


if __name__ == "__main__":
    main()
