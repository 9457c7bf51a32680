"""Event-loop benchmark: a bare aiosmtpd server (discards every message) on the stdlib's
asyncio loop and on uvloop, alternating, with a new connection per message. Prints msgs/s
and the server's own CPU a message (read by the server at exit). Why ``smtp.event_loop``
defaults to uvloop: docs/benchmarks.md.

    .venv/bin/python bench/loops.py [--messages 1500] [--clients 10] [--pairs 3]
"""
from __future__ import annotations

import argparse
import smtplib
import socket
import subprocess
import sys
import threading
import time

SERVER = r'''
import asyncio, os, signal, sys
from aiosmtpd.smtp import SMTP

class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Discard()), "127.0.0.1", int(sys.argv[1]))
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print("ready", flush=True)
    await stop
    cpu = os.times()
    print(cpu.user + cpu.system, flush=True)

if sys.argv[2] == "uvloop":
    import uvloop
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
else:
    asyncio.run(main())
'''
MESSAGE = (b"From: a@torex.ru\r\nTo: osticket@torex.ru\r\nSubject: bench\r\n\r\n"
           + (b"x" * 70 + b"\r\n") * 100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(kind: str, n: int, k: int) -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), kind], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    left, lock, errors = iter(range(n)), threading.Lock(), []

    def client() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            try:
                with smtplib.SMTP("127.0.0.1", port) as s:
                    s.sendmail("a@torex.ru", ["osticket@torex.ru"], MESSAGE)
            except (OSError, smtplib.SMTPException) as exc:
                errors.append(repr(exc))

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    proc.terminate()
    cpu = float(proc.stdout.readline())
    proc.wait()
    if errors:
        raise SystemExit(f"{kind}: {len(errors)} messages refused: {errors[0]}")
    return n / wall, cpu / n * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1500)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    print(f"{'':10}{'msgs/s':>8}{'server CPU ms/msg':>20}")
    for _ in range(args.pairs):
        for kind in ("asyncio", "uvloop"):
            rate, cpu = run(kind, args.messages, args.clients)
            print(f"{kind:10}{rate:8.0f}{cpu:20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
