"""The outgoing side: relay due outbox rows (sending/relay.py) and tell each department of
its mail that could not be delivered.

Queue: the ``outbox`` table (rows claimed as ``sending``, see relay.py).
Strategy: ``maild serve`` runs ``send_forever`` in a process of its own. Inbound goes first:
while mail waits in the spool the sender holds back (it would take CPU and the database
from the worker), but never longer than SENDER_YIELD_SECONDS, so acknowledgements still
leave during a long burst. ``maild drain`` calls ``send`` once, after the inbound.
Failure: a database outage postpones sending (logged once, and once when it is back); any
other error in a round is logged and the next round comes after ``worker.poll_interval``.
Config: ``relay.*``, ``worker.poll_interval``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from maild.acting import store
from maild.acting.actions import Actions
from maild.acting.db import OutageLog, is_unavailable
from maild.deciding.policy import OrganisationHolder
from maild.intake.spool import Spool
from maild.metrics import Metrics
from maild.sending.relay import Relay, RelayResult
from maild.values import Notice, OutboxKind, Recipient

log = logging.getLogger("maild.worker")

SENDER_YIELD_SECONDS = 5.0
# An idle sender woken by the worker: 9.5 ms of CPU a second polling every 0.2 s came to
# about 1 ms at this interval (maild serve at rest, measured in docs/benchmarks.md).
SENDER_IDLE_SECONDS = 2.0
FAILURE_LOOK_SECONDS = 30.0


@dataclass
class Outgoing:
    """What a round of sending did."""
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    waits_for_db: bool = False

    def add(self, more: RelayResult) -> None:
        self.sent += more.sent
        self.deferred += more.deferred
        self.failed += more.failed

    def line(self) -> str:
        return f"outgoing: {self.sent} sent, {self.deferred} deferred, {self.failed} failed"


class Sender:
    def __init__(self, relay: Relay, sessions: sessionmaker[Session], organisation: OrganisationHolder,
                 spool: Spool, poll_interval: float, actions: Callable[[Connection], Actions],
                 outage: OutageLog, metrics: Metrics | None = None):
        self.relay = relay
        self.sessions = sessions
        self.organisation = organisation
        self.spool = spool
        self.poll_interval = poll_interval
        self.actions = actions
        self.outage = outage
        self.metrics = metrics or Metrics()
        self._failures_looked_at = float("-inf")

    @property
    def engine(self) -> Engine:
        return self.sessions.kw["bind"]

    def send_forever(self, stop: threading.Event, wakeup=None) -> None:
        """The outgoing side on its own (``maild serve`` runs it in a process of its own).
        Inbound goes first: while mail waits in the spool the sender holds back (it would
        take CPU and the database from the worker), but never longer than
        SENDER_YIELD_SECONDS, so acknowledgements still leave during a long burst.
        ``wakeup`` (an object with ``wait(timeout)``): the worker's word that it queued mail;
        with it an idle sender looks only every SENDER_IDLE_SECONDS (for retries, and mail
        that commands or another node queued), not every poll interval."""
        idle = (wakeup.wait, SENDER_IDLE_SECONDS) if wakeup is not None else (stop.wait, self.poll_interval)
        while not stop.is_set():
            waited = 0.0
            while self.spool.pending() and waited < SENDER_YIELD_SECONDS and not stop.is_set():
                stop.wait(self.poll_interval)
                waited += self.poll_interval
            out = Outgoing()
            try:
                out = self.send()
                if out.sent or out.deferred or out.failed:
                    log.info(out.line())
            except Exception:
                log.exception("relay round failed; next round in a moment")
            if not out.sent and not stop.is_set():
                idle[0](idle[1])

    def send(self) -> Outgoing:
        """Relay due outgoing mail; a database outage only postpones it."""
        out = Outgoing()
        try:
            sent = self.relay.run(self.sessions)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.outage.state(False, "outgoing mail waits: database unavailable", exc)
            out.waits_for_db = True
            return out
        self.outage.state(True)
        out.add(sent)
        self.metrics.relayed(sent.sent, sent.deferred, sent.failed)
        # Failures come from this round, or from bounces the worker recorded: look now and
        # then, not on every round (each look is a write transaction on SQLite).
        if sent.failed or time.monotonic() - self._failures_looked_at > FAILURE_LOOK_SECONDS:
            self._failures_looked_at = time.monotonic()
            if self.report_failures():
                out.add(self.relay.run(self.sessions))        # the reports go out now too
        return out

    def report_failures(self) -> int:
        """Tell each department of its mail that could not be delivered (refused, expired or
        bounced) — once per mail. Mail to staff is left out: telling staff by mail that mail
        to staff fails would only fail again (it is logged and listed by ``outbox list``)."""
        org = self.organisation()
        staff = {m.email.lower() for d in org.departments for m in d.staff}
        told = 0
        with self.engine.begin() as conn:
            for row in store.unreported_failures(conn):
                department = ((org.department(row.department) if row.department else None)
                              or org.department_for_address(row.sender))
                if department is not None and row.recipient.lower() not in staff:
                    actions = self.actions(conn)
                    ticket = store.ticket_by_id(conn, row.ticket_id) if row.ticket_id else None
                    notice = Notice(OutboxKind.FAILURE, "delivery_failed", "auto-generated", True)
                    actions.queue(ticket, department, notice,
                                  [Recipient(m.email, m.name) for m in department.staff], None,
                                  row={"recipient": row.recipient, "subject": row.subject, "kind": row.kind,
                                       "error": row.last_error or "", "created_at": row.created_at})
                    actions.finish()
                    told += 1
                store.mark_reported(conn, row.id)
        return told
