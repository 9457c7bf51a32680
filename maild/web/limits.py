"""Rate limits of the web pages: so many actions per key (a client address, a mail address)
within a sliding hour. Kept in the process's memory: a restart forgets them, and the
worker's loop guard (``loop_guard.per_recipient_hour``) still bounds the mail they cause."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Limit:
    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic, window: float = 3600.0):
        self.per_hour, self.clock, self.window = per_hour, clock, window
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one action for ``key``; False (and not counted) when the hour's are used up."""
        now = self.clock()
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.per_hour:
            return False
        times.append(now)
        if len(self._seen) > 100_000:           # a flood of keys must not grow without end
            self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        for key in [k for k, t in self._seen.items() if not t or t[-1] <= now - self.window]:
            del self._seen[key]
