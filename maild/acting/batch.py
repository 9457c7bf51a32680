"""The outbox rows a batch collects, inserted once by the worker at the batch's end, with the
loop guard's counts of them kept as they come (so it never rescans the batch), and the
tickets' history rows, inserted with them."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from maild.acting import store


class OutboxBatch(list):
    """Outbox rows a batch collects (inserted once by the worker), with the loop guard's
    counts of them kept as they come, so it never rescans the batch; also the tickets'
    history rows, inserted once with them. ``earlier``: mail sent to an address in the last
    hour, fetched for the batch's senders at once (``prefetch``)."""

    def __init__(self) -> None:
        super().__init__()
        self.to: Counter = Counter()
        self.about: Counter = Counter()
        self.changes: list[dict] = []
        self.earlier: dict[str, int] = {}

    def prefetch(self, conn: Connection, recipients: set[str], at: datetime) -> None:
        self.earlier = store.budgeted_by_recipient(conn, at - timedelta(hours=1), recipients)

    def waiting(self, recipient: str, kind: str) -> int:
        """Rows of this kind to this address (the planner's view of the batch)."""
        recipient = recipient.lower()
        return sum(r["recipient"].lower() == recipient and r["kind"] == kind for r in self)

    def extend(self, rows) -> None:
        rows = list(rows)
        super().extend(rows)
        for r in rows:
            if r["kind"] not in store.STAFF_KINDS:
                self.to[r["recipient"].lower()] += 1
                if r["ticket_id"] is not None:
                    self.about[r["ticket_id"]] += 1
