"""systemd's notification protocol (sd_notify(3)): ``maild serve`` says READY once it listens
and its children run, RELOADING/READY around a SIGHUP, STOPPING at the end, and WATCHDOG=1
while its supervision loop turns (``WatchdogSec=`` in maild.service restarts a hung daemon).

A datagram of ``KEY=value`` lines to the socket named by ``NOTIFY_SOCKET``; without it (not
under systemd, ``Type=simple``) every call does nothing. A dozen lines of protocol do not
justify a dependency (python-systemd is a C extension built against libsystemd).
"""
from __future__ import annotations

import contextlib
import os
import socket
import time


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        if self.address.startswith("@"):          # an abstract socket
            self.address = "\0" + self.address[1:]
        usec = env.get("WATCHDOG_USEC", "")
        mine = env.get("WATCHDOG_PID", "") in ("", str(os.getpid()))
        self.watchdog = int(usec) / 1e6 / 2 if usec.isdigit() and mine else 0.0   # ping at half the limit
        self._last_ping = float("-inf")

    def notify(self, *lines: str) -> None:
        if not self.address:
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(self.address)
            sock.sendall("\n".join(lines).encode("utf-8"))

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def alive(self) -> None:
        """Called from the supervision loop; pings when half the watchdog interval has passed."""
        if self.watchdog and time.monotonic() - self._last_ping >= self.watchdog:
            self._last_ping = time.monotonic()
            self.notify("WATCHDOG=1")
