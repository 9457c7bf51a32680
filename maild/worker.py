"""The worker: one message's path from the spool to a ticket, readable top to bottom.

    claim (spool) -> read, parse, classify, route (reading/prepare, in the parser process)
      -> decide (deciding/dispatch: a plan, nothing written)
      -> apply (acting/apply: the plan written, one transaction per batch) -> archive
    then: relay due outgoing mail (sending/sender; ``serve`` runs it in a process of its own)

Queues: takes files from ``spool/incoming`` (claim = rename into ``active``), writes the
database, moves each processed file into the archive ``mail/YYYY/MM/``.
Strategy: messages are processed in batches, one transaction per batch and a savepoint per
message, so one bad message never takes its neighbours down and the durable commit is
paid once per batch. Processing twice is a no-op: the Message-ID (or the hash of a mail
without one) is unique in ``inbound``. With a parser process, the next batch is parsed
there while this one is written; batches are still written in arrival order.
Failure: mail that cannot be parsed is quarantined at once with the reason; a message
whose processing raises is retried ``worker.max_attempts`` times, then quarantined; if
the database is unreachable the whole batch goes back to ``incoming`` untouched and is
retried later (not counted against the messages).
Security: the worker trusts nothing in the mail; who may do what is decided by the table
(dispatch.py, auth.py), and it writes only what the plan says. The rules in force are
one snapshot per batch (a reload between batches, never inside one).
Config: ``worker.batch_size``, ``worker.poll_interval``, ``worker.max_attempts``,
``worker.retry_delay``, ``worker.parse_processes``.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from maild.acting.actions import INSERT_CHANGES, INSERT_OUTBOX, Actions, OutboxBatch
from maild.acting.apply import InboundRecord, apply
from maild.acting.blobs import BlobStore
from maild.acting.db import OutageLog, cause, is_conflict, is_unavailable
from maild.config import Config
from maild.deciding import auth, dispatch, facts, rules
from maild.deciding.plan import Planner
from maild.deciding.policy import OrganisationHolder, Policy
from maild.escalator import ESCALATE_EVERY, Escalator
from maild.intake import spool as spool_mod
from maild.intake.spool import Spool, SpoolItem
from maild.metrics import Metrics
from maild.reading.classify import Verdict
from maild.reading.mail import Mail
from maild.reading.prepare import Parcels, Parsed, read_and_parse_all, read_and_parse_parcel
from maild.sending.relay import Relay
from maild.sending.render import Renderer
from maild.sending.sender import Outgoing, Sender
from maild.values import Clock, Disposition, Envelope, SystemClock

log = logging.getLogger("maild.worker")
CONFLICT_RETRIES = 5
security = logging.getLogger("maild.security")

_REPLIES = frozenset({Disposition.REPLY_ADDED, Disposition.RESPONSE_ADDED, Disposition.AUTO_REPLY_RECORDED,
                      Disposition.UNAUTHENTICATED_STAFF, Disposition.COMMAND_APPLIED, Disposition.COMMAND_REFUSED})


@dataclass(frozen=True)
class Outcome:
    disposition: str          # ticket-created, reply-added, response-added, duplicate, ...
    reason: str
    ticket: str | None = None


@dataclass
class DrainSummary:
    processed: int = 0
    created: int = 0
    replies: int = 0
    duplicates: int = 0
    quarantined: int = 0
    retried: int = 0
    deferred_db: int = 0
    sent: int = 0
    send_deferred: int = 0
    send_failed: int = 0
    send_waits_for_db: bool = False
    outcomes: list[Outcome] = field(default_factory=list)

    def take(self, out: Outgoing) -> None:
        """The outgoing round's figures (``maild drain`` sends after the inbound)."""
        self.sent, self.send_deferred, self.send_failed = out.sent, out.deferred, out.failed
        self.send_waits_for_db = out.waits_for_db

    def line(self) -> str:
        return (f"processed {self.processed}: {self.created} new tickets, {self.replies} replies, "
                f"{self.duplicates} duplicates, {self.quarantined} quarantined, {self.retried} to retry"
                + (f", {self.deferred_db} waiting for the database" if self.deferred_db else "")
                + f"; outgoing: {self.sent} sent, {self.send_deferred} deferred, {self.send_failed} failed")


@dataclass(frozen=True)
class Prepared:
    item: SpoolItem
    envelope: Envelope
    size: int
    mail: Mail
    verdict: Verdict
    key: str        # the Message-ID, or the hash of the bytes for mail without one
    routing: rules.Routing | None = None


class Worker:
    def __init__(self, config: Config, organisation: OrganisationHolder,
                 sessions: sessionmaker[Session], spool: Spool, renderer: Renderer,
                 blobs: BlobStore, relay: Relay,
                 parser_factory: Callable[[], Executor] | None = None, clock: Clock | None = None,
                 metrics: Metrics | None = None):
        self.config = config
        self.organisation = organisation
        self.sessions = sessions
        self.spool = spool
        self.renderer = renderer
        self.blobs = blobs
        self.relay = relay
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.secret = auth.load_secret(config.auth, config.data_dir)
        self.parser_factory = parser_factory
        self.parcels = Parcels()      # made before the pool forks, so its processes inherit it
        self.parcels.of(organisation.policy)
        self.parser: Executor | None = parser_factory() if parser_factory else None
        self.log_batches = False
        self.outage = OutageLog(log)
        self.sender = Sender(relay, sessions, organisation, spool, config.worker.poll_interval, self.actions,
                             self.outage, self.metrics)

    def close(self) -> None:
        """Stop the parser process (a child that would otherwise keep the worker alive)."""
        if self.parser is not None:
            self.parser.shutdown(wait=True, cancel_futures=True)
            self.parser = None

    @property
    def engine(self) -> Engine:
        return self.sessions.kw["bind"]

    # -- the loop -------------------------------------------------------------------
    def drain(self, relay: bool = True) -> DrainSummary:
        """Process everything waiting, then send due mail. Returns what happened.

        With a parser pool (``maild serve``), batch N+1 is parsed in the pool's process
        while batch N is written here: parsing and the database each get a core, and
        batches are still written in arrival order (replies after their tickets)."""
        summary = DrainSummary()
        items = self.spool.claim(self.config.worker.batch_size)
        if not items and self.spool.database_down:      # the shared spool's mail waits for the database
            summary.deferred_db = self.spool.local_pending()
        parsing = self._parse_async(items)
        while items:
            following = self.spool.claim(self.config.worker.batch_size)
            try:
                parsed = self._parsed(items, parsing)
                parsing = self._parse_async(following) if following else None
                self.spool.renew(items + following)     # the shared spool's leases (shared.py)
                ok = self.process_batch(items, parsed, summary)
            except Exception:
                # Never strand claimed files in active/: give them back, then report.
                self._release_all(items + following, parsing)
                raise
            if not ok:
                self._release_all(following, parsing)
                break   # database unavailable: stop and leave the rest for later
            if self.log_batches:
                log.info("batch: %s", summary.line())
            items = following
        if relay:
            summary.take(self.sender.send())
        return summary

    def _parse_async(self, items: list[SpoolItem]) -> list[Future] | None:
        """Hand a batch to the parser processes, in one chunk per process (results come back
        in order, so batches are still written in arrival order)."""
        if self.parser is None or not items:
            return None
        workers = max(1, self.config.worker.parse_processes)
        size = -(-len(items) // workers)
        store_in = (self.blobs, self.config.attachments)
        parcel = self.parcels.of(self.organisation.policy)
        return [self.parser.submit(read_and_parse_parcel, [item.path for item in items[i:i + size]],
                                   parcel, store_in)
                for i in range(0, len(items), size)]

    def _parsed(self, items: list[SpoolItem], parsing: list[Future] | None) -> list[Parsed]:
        if parsing is not None:
            try:
                return [parsed for future in parsing for parsed in future.result()]
            except BrokenProcessPool:
                # The parser process died (killed, or out of memory): parse here this time.
                log.error("parser process died; parsing this batch in the worker")
                self.parser = self.parser_factory() if self.parser_factory else None
        return read_and_parse_all([item.path for item in items], self.organisation.policy)

    def _release_all(self, items: list[SpoolItem], parsing: list[Future] | None) -> None:
        for future in parsing or ():
            future.cancel()
        for item in items:
            if item.path.exists():
                self.spool.release(item)

    def run_forever(self, stop: threading.Event | None = None, wakeup=None, relay: bool = True,
                    heartbeat: Callable[[int, str], None] | None = None,
                    processed: Callable[[], None] | None = None) -> None:
        """Drain, then wait for a wake-up (an object with ``wait(timeout)``) or the poll interval.
        ``heartbeat``: a cluster node's (acting/cluster.Heartbeat), told after every round;
        ``processed``: told after a round that processed mail (``serve`` wakes the sender)."""
        stop = stop or threading.Event()
        self.spool.recover()
        self.log_batches = True
        last_error = ""
        next_look = 0.0
        escalator = Escalator(lambda: self.engine, self.organisation, self.actions, self.config.notifications,
                              self.clock)
        while not stop.is_set():
            try:
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + ESCALATE_EVERY
                    escalator.look_quietly()
                summary = self.drain(relay=relay)
                if processed is not None and summary.processed:
                    processed()
                if summary.sent or summary.send_deferred or summary.send_failed:
                    log.info(summary.line())
                if summary.deferred_db:
                    last_error = f"{self.clock.now():%Y-%m-%dT%H:%M:%SZ} database unavailable"
            except Exception as exc:
                log.exception("worker round failed; next round in a moment")
                last_error = f"{self.clock.now():%Y-%m-%dT%H:%M:%SZ} {type(exc).__name__}: {exc}"[:300]
            if heartbeat is not None:
                heartbeat(self.spool.local_pending(), last_error)
            (wakeup or stop).wait(self.config.worker.poll_interval)

    def escalate(self) -> int:
        """Look for missed deadlines now (maild/escalator.py); how many were due."""
        return Escalator(lambda: self.engine, self.organisation, self.actions, self.config.notifications,
                         self.clock).look()

    # -- one batch ------------------------------------------------------------------
    def process_batch(self, items: list[SpoolItem], parsed: list[Parsed], summary: DrainSummary) -> bool:
        prepared: list[Prepared] = []
        for item, result in zip(items, parsed, strict=True):
            if result.error is not None:
                self.spool.to_quarantine(item, f"cannot parse: {result.error}")
                summary.quarantined += 1
                log.warning("quarantined %s: cannot parse: %s", item.id, result.error)
                continue
            assert result.mail is not None and result.verdict is not None     # error is None: parsed
            prepared.append(Prepared(item, result.envelope, result.size, result.mail,
                                     result.verdict, result.key, result.routing))

        try:
            try:
                done, failed, lost = self._write_again_on_conflict(prepared, isolate=False)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                # Something in the batch failed: do it again, a savepoint per message, to
                # find the message at fault and let the others through.
                done, failed, lost = self._write_again_on_conflict(prepared, isolate=True)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.outage.state(False, "database unavailable, messages wait in the spool", exc)
            for p in prepared:
                self.spool.release(p.item)
            summary.deferred_db += len(prepared)
            return False
        self.outage.state(True)

        for p in lost:      # another node has it now (this one stalled past its lease)
            log.info("%s: the claim went to another node; left to it", p.item.id)
            self.spool.drop(p.item)
        now = self.clock.now()
        for p, outcome in done:
            self.spool.archive(p.item, self.config.mail_dir, p.envelope.received)
            self.metrics.message(outcome.disposition, (now - p.envelope.received).total_seconds())
            summary.processed += 1
            summary.outcomes.append(outcome)
            if outcome.disposition == Disposition.TICKET_CREATED:
                summary.created += 1
            elif outcome.disposition in _REPLIES:
                summary.replies += 1
            elif outcome.disposition == Disposition.DUPLICATE:
                summary.duplicates += 1
        for p, error in failed:
            reason = f"{type(error).__name__}: {error}"
            log.error("processing %s failed: %s", p.item.id, reason, exc_info=error)
            if self.spool.failed(p.item, reason, self.config.worker.max_attempts, self.config.worker.retry_delay):
                summary.quarantined += 1
            else:
                summary.retried += 1
        return True

    def _write_again_on_conflict(self, prepared: list[Prepared], isolate: bool):
        """``_write``, done again when the server rolled it back for a conflict with another
        node's transaction (a deadlock over a ticket counter and a new person): a moment later
        it goes through. Nothing of a rolled-back attempt remains (one transaction)."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._write(prepared, isolate)
            except Exception as exc:
                if not is_conflict(exc) or attempt == CONFLICT_RETRIES - 1:
                    raise
                log.info("batch of %d rolled back by the database (%s); writing it again", len(prepared),
                         cause(exc))
                time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))   # apart from the other node
        raise AssertionError("unreachable")

    def _write(self, prepared: list[Prepared], isolate: bool
               ) -> tuple[list[tuple[Prepared, Outcome]], list[tuple[Prepared, Exception]], list[Prepared]]:
        """One transaction for the batch. Without ``isolate`` any failure aborts it all (the
        common case pays no savepoints); with it, each message has its own savepoint. Its
        first statement fences the spool's claims: what another node took over is lost."""
        done: list[tuple[Prepared, Outcome]] = []
        failed: list[tuple[Prepared, Exception]] = []
        outbox = OutboxBatch()
        context = self.context(self.organisation.policy)
        with self.engine.begin() as conn:
            ours = self.spool.fence(conn, [p.item for p in prepared])
            lost = [p for p in prepared if p.item.id not in ours]
            prepared = [p for p in prepared if p.item.id in ours]
            if not isolate:     # the loop guard's counts for the batch's senders, in one query
                outbox.prefetch(conn, {p.mail.sender.email.lower() for p in prepared
                                       if p.mail.sender and p.mail.sender.email}, self.clock.now())
            for p in prepared:
                if not isolate:
                    done.append((p, self.process(conn, p, outbox, context)))
                    continue
                try:
                    with conn.begin_nested():
                        outcome = self.process(conn, p, None, context)   # its outbox rows inside its savepoint
                    done.append((p, outcome))
                except Exception as exc:
                    if is_unavailable(exc):
                        raise
                    failed.append((p, exc))
            if outbox:
                conn.execute(INSERT_OUTBOX, outbox)
            if outbox.changes:
                conn.execute(INSERT_CHANGES, outbox.changes)
            self.spool.unfence(conn, [p.item for p, _ in failed])
        return done, failed, lost

    def actions(self, conn: Connection, outbox: OutboxBatch | None = None) -> Actions:
        """The writer, on ``conn``; ``outbox``: the batch's rows, inserted once by ``_write``."""
        return Actions(conn, self.renderer, self.blobs, self.config.attachments, outbox, self.secret,
                       self.config.notifications, self.config.loop_guard, self.clock)

    # -- one message ----------------------------------------------------------------
    def context(self, policy: Policy) -> facts.Context:
        """What deciding needs, for one batch: the rules in force as one snapshot."""
        cfg = self.config
        return facts.Context(policy.org, policy.rules, policy.reader, self.renderer, facts.Settings(
            cfg.auth, self.secret, cfg.hostname, cfg.tickets.reopen_days, cfg.tickets.max_participants,
            cfg.loop_guard.new_tickets_per_sender_hour, cfg.web.base_url, cfg.web.link_hours))

    def process(self, conn: Connection, p: Prepared, outbox: OutboxBatch | None,
                context: facts.Context) -> Outcome:
        """One message, in the caller's transaction: decided (a plan), then written; its
        outgoing mail rows go to ``outbox`` (inserted once for the batch) when given."""
        planner = Planner(conn, self.clock.now(), self.config.notifications, outbox, context.org.deadlines)
        plan = dispatch.decide(facts.Message(p.item.id, p.envelope, p.mail, p.verdict, p.key, p.routing),
                               context, planner)
        applied = apply(self.actions(conn, outbox), plan, self._record(p))
        for warning in plan.warnings:
            security.warning("%s", warning)
        return Outcome(plan.disposition, plan.reason, applied.ticket.number if applied.ticket else None)

    def _record(self, p: Prepared) -> InboundRecord:
        envelope = p.envelope
        return InboundRecord(
            spool_id=p.item.id, message_key=p.key, mail_from=envelope.mail_from[:320],
            rcpt_to=", ".join(envelope.rcpt_to), peer=envelope.peer[:100],
            received_at=envelope.received, size=p.size, subject=p.mail.subject,
            archive_path=str(spool_mod.archive_path(self.config.mail_dir, p.item.id, envelope.received)
                             .relative_to(self.config.data_dir)))
