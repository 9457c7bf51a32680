"""Who may hold a connection to the web pages, and for how long — what the SMTP intake's
limits are for mail (``smtp.max_connections_per_client``, ``smtp.min_data_rate``).

aiohttp has no timeout for a request's headers and no limit on connections, so one client
that opens thousands and never finishes them would take every file the process may open.
``Gate`` stands between the listening socket and aiohttp's protocol: a connection over the
per-client or total count is closed at once, and a connection that sends less than
``min_rate`` bytes a second over a ``window`` is closed (a browser's idle keep-alive
connection too: it simply opens a new one). The total stays below the process's open-file
limit, so the accept loop never runs out.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("maild.web")


def _file_budget() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(1000, (soft if soft != resource.RLIM_INFINITY else 4096) - 100))


class Gate:
    def __init__(self, per_client: int = 20, total: int | None = None, min_rate: int = 64, window: float = 20.0):
        self.per_client, self.total = per_client, total or _file_budget()
        self.min_rate, self.window = min_rate, window
        self.open: Counter[str] = Counter()
        self.count = 0
        self.refused = 0
        self._said = 0.0

    def protocol(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for ``loop.create_server``: ``make``'s protocol, guarded."""
        return lambda: _Guarded(self, make)

    def admit(self, client: str) -> bool:
        if self.count >= self.total or self.open[client] >= self.per_client:
            self.refused += 1
            if time.monotonic() - self._said > 60:      # one line a minute, not one a connection
                self._said = time.monotonic()
                log.warning("web: connections refused (%s in all so far): %s holds %s, %s open in all",
                            self.refused, client, self.open[client], self.count)
            return False
        self.count += 1
        self.open[client] += 1
        return True

    def leave(self, client: str) -> None:
        self.count -= 1
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the gate's counts and rate."""

    def __init__(self, gate: Gate, make: Callable[[], asyncio.Protocol]):
        self.gate, self.make = gate, make
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.received = 0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self.gate.admit(self.client):
            transport.abort()
            return
        self.transport = transport
        self.inner = self.make()
        self.inner.connection_made(transport)
        self.timer = asyncio.get_running_loop().call_later(self.gate.window, self._check)

    def _check(self) -> None:
        if self.transport is None:
            return
        if self.received < self.gate.min_rate * self.gate.window:
            self.transport.abort()          # idle or trickling: its file is worth more to others
            return
        self.received = 0
        self.timer = asyncio.get_running_loop().call_later(self.gate.window, self._check)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.inner is None:
            return
        self.gate.leave(self.client)
        self.transport = None
        self.inner.connection_lost(exc)
