"""What the nodes of a cluster tell each other through the database (issue 16): who is alive
(``nodes``, a heartbeat) and which scheduled job already ran for its period (``job_runs``).

A scheduled job (the morning digest, the monthly report) is started by each node's timer; the
first to insert its ``(job, period)`` row in the transaction that queues the job's mail does
it, the others find the row and send nothing. That is exactly once per period, not merely
"not at the same time" as an advisory lock would give. Works the same on SQLite.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from maild.acting.models import JobRun as JobRunRow, Node

HEARTBEAT_SECONDS = 5.0
ALIVE_SECONDS = 3 * HEARTBEAT_SECONDS    # not heard of for longer: shown as not alive

_BEAT = text("INSERT INTO nodes (name, pid, started_at, seen_at, facts) VALUES (:name, :pid, :started, now(), :facts) "
             "ON CONFLICT (name) DO UPDATE SET pid = :pid, started_at = :started, seen_at = now(), facts = :facts")
_JOB = text("INSERT INTO job_runs (job, period, node, at) VALUES (:job, :period, :node, :at) "
            "ON CONFLICT (job, period) DO NOTHING")


@dataclass(frozen=True)
class NodeSeen:
    name: str
    pid: int
    started_at: datetime
    seen_at: datetime
    facts: dict


@dataclass(frozen=True)
class JobRun:
    job: str
    period: str
    node: str
    at: datetime


class Heartbeat:
    """The worker's ``nodes`` row, written at most every HEARTBEAT_SECONDS; a failure to write
    it is the outage the worker logs anyway, so it is not logged again here."""

    def __init__(self, engine: Engine, name: str, pid: int, started: datetime, listen: str):
        self.engine, self.name, self.pid, self.started, self.listen = engine, name, pid, started, listen
        self._last = float("-inf")

    def __call__(self, local_spool: int, last_error: str) -> None:
        if time.monotonic() - self._last < HEARTBEAT_SECONDS:
            return
        self._last = time.monotonic()
        with contextlib.suppress(SQLAlchemyError), self.engine.begin() as conn:
            beat(conn, self.name, self.pid, self.started,
                 {"listen": self.listen, "local_spool": local_spool, "last_error": last_error})


def beat(conn: Connection, name: str, pid: int, started: datetime, facts: dict) -> None:
    """This node is alive (PostgreSQL: the database's clock stamps it)."""
    conn.execute(_BEAT, {"name": name, "pid": pid, "started": started, "facts": json.dumps(facts, sort_keys=True)})


def nodes(conn: Connection) -> list[NodeSeen]:
    table = Node.__table__
    return [NodeSeen(r.name, r.pid, r.started_at, r.seen_at, json.loads(r.facts or "{}"))
            for r in conn.execute(select(table).order_by(table.c.name))]


def once(conn: Connection, job: str, period: str, node: str, at: datetime) -> JobRun | None:
    """Claim ``job`` for ``period`` in ``conn``'s transaction: None when it is this run's to do,
    else the run that did it (or is doing it: the second insert waits for the first's commit)."""
    if conn.execute(_JOB, {"job": job, "period": period, "node": node, "at": at}).rowcount == 1:
        return None
    table = JobRunRow.__table__
    row = conn.execute(select(table).where(table.c.job == job, table.c.period == period)).one()
    return JobRun(row.job, row.period, row.node, row.at)


def outbox_depths(conn: Connection) -> tuple[int, int]:
    """Outgoing mail due now (``pending``, its time come) and ``failed``: for status and metrics
    (both counts run on the ``outbox_due`` index)."""
    due = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now"),
                       {"now": datetime.now(UTC)}).scalar_one()
    failed = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")).scalar_one()
    return int(due), int(failed)
