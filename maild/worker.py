"""The pipeline: one message's path from the spool to a ticket, readable top to bottom.

    claim (spool) -> parse -> classify -> match -> act (one transaction) -> archive
    then: relay due outgoing mail (``maild drain``; ``serve`` has a sender process for it)

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
Config: ``worker.batch_size``, ``worker.poll_interval``, ``worker.max_attempts``,
``worker.parse_processes``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from maild.acting.actions import INSERT_CHANGES, INSERT_OUTBOX, Actions, OutboxBatch
from maild.acting import store
from maild.acting.apply import InboundRecord, apply
from maild.acting.blobs import BlobStore
from maild.acting.db import is_unavailable
from maild.config import AttachmentsConfig, Config
from maild.deciding import auth, dispatch, match, rules
from maild.deciding.dispatch import first_department
from maild.deciding.organisation import Organisation
from maild.deciding.plan import Planner
from maild.deciding.policy import OrganisationHolder, Policy
from maild.intake import spool as spool_mod
from maild.intake.spool import Spool, SpoolItem
from maild.reading.classify import Verdict, classify
from maild.reading.parse import Mail, ParseError, parse
from maild.routing.reader import Reader
from maild.sending.relay import Relay
from maild.sending.render import Renderer
from maild.values import Clock, Disposition, Envelope, Notice, Recipient, SystemClock

log = logging.getLogger("maild.worker")
security = logging.getLogger("maild.security")

SENDER_YIELD_SECONDS = 5.0
_REPLIES = frozenset({Disposition.REPLY_ADDED, Disposition.RESPONSE_ADDED, Disposition.AUTO_REPLY_RECORDED,
                      Disposition.UNAUTHENTICATED_STAFF, Disposition.COMMAND_APPLIED, Disposition.COMMAND_REFUSED})
FAILURE_LOOK_SECONDS = 30.0


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

    def line(self) -> str:
        return (f"processed {self.processed}: {self.created} new tickets, {self.replies} replies, "
                f"{self.duplicates} duplicates, {self.quarantined} quarantined, {self.retried} to retry"
                + (f", {self.deferred_db} waiting for the database" if self.deferred_db else "")
                + f"; outgoing: {self.sent} sent, {self.send_deferred} deferred, {self.send_failed} failed")


@dataclass(frozen=True)
class Parsed:
    """A spool file read, parsed, classified and — should it be a new request — routed by
    the admin's rules. All of it is pure (no database), so it runs in the parser process
    beside the database work; this value is pickled back."""
    envelope: Envelope
    size: int
    mail: Mail | None
    key: str            # the Message-ID, or the hash of the bytes for mail without one
    error: str | None = None
    verdict: Verdict | None = None
    routing: rules.Routing | None = None    # used only if the mail names no ticket


def read_and_parse(path: Path, org: Organisation, table: tuple[rules.Rule, ...], reader: Reader | None,
                   store_in: tuple[BlobStore, AttachmentsConfig] | None = None) -> Parsed:
    """With ``store_in`` (the parser process), attachments within the limits are written to
    the blob store here and their bytes dropped: only their names, types and hashes travel
    back to the worker (copying them between processes cost more than parsing)."""
    try:
        envelope, raw = spool_mod.read(path)
    except (OSError, ValueError, TypeError) as exc:
        # A file that is not a spool file (a disk error, a truncated write, a hand mistake):
        # quarantined with the reason, never a stalled queue.
        return Parsed(Envelope("", ()), 0, None, "", f"unreadable spool file: {type(exc).__name__}: {exc}")
    try:
        mail = parse(raw)
    except ParseError as exc:
        return Parsed(envelope, len(raw), None, "", str(exc))
    except Exception as exc:      # a parser bug must cost this message, not its batch
        return Parsed(envelope, len(raw), None, "", f"parser failed: {type(exc).__name__}: {exc}")
    if store_in is not None and mail.attachments:
        blobs, limits = store_in
        total = 0
        for attachment in mail.attachments:
            total += attachment.size
            if limits.keeps(attachment.size, total):
                blobs.put(attachment.sha256, attachment.data)
        mail = replace(mail, attachments=tuple(a.without_data() for a in mail.attachments))
    key = dispatch.message_key(mail, raw)
    department = first_department(org, envelope)
    routing = None
    # A mail that names a ticket is almost always a reply: it is not read here (the worker
    # routes it after all if it turns out to be a new request).
    names_a_ticket = bool(mail.in_reply_to or mail.references
                          or match.subject_tokens(mail.subject, {d.code for d in org.departments}))
    if department is not None and not names_a_ticket:
        sender = mail.sender.email if mail.sender else envelope.mail_from
        routing = rules.route(mail, envelope.rcpt_to, sender or "", department, org, table, reader)
    return Parsed(envelope, len(raw), mail, key, verdict=classify(mail, envelope), routing=routing)


def read_and_parse_all(paths: list[Path], org: Organisation, table: tuple[rules.Rule, ...], reader: Reader | None,
                       store_in: tuple[BlobStore, AttachmentsConfig] | None = None) -> list[Parsed]:
    return [read_and_parse(path, org, table, reader, store_in) for path in paths]


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
                 parser_factory: Callable[[], Executor] | None = None, clock: Clock | None = None):
        self.config = config
        self.organisation = organisation
        self.sessions = sessions
        self.spool = spool
        self.renderer = renderer
        self.blobs = blobs
        self.relay = relay
        self.clock = clock or SystemClock()
        self.secret = auth.load_secret(config.auth, config.data_dir)
        self.parser_factory = parser_factory
        self.parser: Executor | None = parser_factory() if parser_factory else None
        self.log_batches = False
        self._failures_looked_at = float("-inf")
        self._database_down = False

    def _database_state(self, up: bool, why: str = "") -> None:
        """Log a database outage when it starts and when it ends, not on every poll (a poll
        is a fraction of a second: an outage would fill the log)."""
        if up and self._database_down:
            log.warning("the database is reachable again")
        elif not up and not self._database_down:
            log.warning("%s (said once; the next line is when it is back)", why)
        elif not up:
            log.debug("%s", why)
        self._database_down = not up

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
        parsing = self._parse_async(items)
        while items:
            following = self.spool.claim(self.config.worker.batch_size)
            try:
                parsed = self._parsed(items, parsing)
                parsing = self._parse_async(following) if following else None
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
            self.send(summary)
        return summary

    def send_forever(self, stop: threading.Event) -> None:
        """The outgoing side on its own (``maild serve`` runs it in a process of its own).
        Inbound goes first: while mail waits in the spool the sender holds back (it would
        take CPU and the database from the worker), but never longer than
        SENDER_YIELD_SECONDS, so acknowledgements still leave during a long burst."""
        while not stop.is_set():
            waited = 0.0
            while self.spool.pending() and waited < SENDER_YIELD_SECONDS and not stop.is_set():
                stop.wait(self.config.worker.poll_interval)
                waited += self.config.worker.poll_interval
            summary = DrainSummary()
            try:
                self.send(summary)
                if summary.sent or summary.send_deferred or summary.send_failed:
                    log.info(summary.line().split("; ", 1)[1])
            except Exception:
                log.exception("relay round failed; next round in a moment")
            if not summary.sent:
                stop.wait(self.config.worker.poll_interval)

    def send(self, summary: DrainSummary) -> None:
        """Relay due outgoing mail; a database outage only postpones it."""
        try:
            sent = self.relay.run(self.sessions)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._database_state(False, f"outgoing mail waits: database unavailable: {exc}")
            summary.send_waits_for_db = True
        else:
            self._database_state(True)
            summary.sent, summary.send_deferred, summary.send_failed = sent.sent, sent.deferred, sent.failed
            # Failures come from this round, or from bounces the worker recorded: look now
            # and then, not on every round (each look is a write transaction on SQLite).
            if sent.failed or time.monotonic() - self._failures_looked_at > FAILURE_LOOK_SECONDS:
                self._failures_looked_at = time.monotonic()
                if self.report_failures():
                    more = self.relay.run(self.sessions)        # the reports go out now too
                    summary.sent += more.sent
                    summary.send_deferred += more.deferred
                    summary.send_failed += more.failed

    def report_failures(self) -> int:
        """Tell each department of its mail that could not be delivered (refused, expired or
        bounced) — once per mail. Mail to staff is left out: telling staff by mail that mail
        to staff fails would only fail again (it is logged and listed by ``outbox list``)."""
        org = self.organisation()
        staff = {m.email.lower() for d in org.departments for m in d.staff}
        told = 0
        with self.engine.begin() as conn:
            for row in store.unreported_failures(conn):
                department = (org.department(row.department) if row.department else None) \
                    or org.department_for_address(row.sender)
                if department is not None and row.recipient.lower() not in staff:
                    actions = self.actions(conn)
                    ticket = store.ticket_by_id(conn, row.ticket_id) if row.ticket_id else None
                    actions.queue(ticket, department, Notice("failure", "delivery_failed", "auto-generated", True),
                                  [Recipient(m.email, m.name) for m in department.staff], None,
                                  row={"recipient": row.recipient, "subject": row.subject, "kind": row.kind,
                                       "error": row.last_error or "", "created_at": row.created_at})
                    actions.finish()
                    told += 1
                store.mark_reported(conn, row.id)
        return told

    def _parse_async(self, items: list[SpoolItem]) -> list[Future] | None:
        """Hand a batch to the parser processes, in one chunk per process (results come back
        in order, so batches are still written in arrival order)."""
        if self.parser is None or not items:
            return None
        workers = max(1, self.config.worker.parse_processes)
        size = -(-len(items) // workers)
        store_in = (self.blobs, self.config.attachments)
        return [self.parser.submit(read_and_parse_all, [item.path for item in items[i:i + size]],
                                   self.organisation(), self.organisation.rules, self.organisation.reader,
                                   store_in)
                for i in range(0, len(items), size)]

    def _parsed(self, items: list[SpoolItem], parsing: list[Future] | None) -> list[Parsed]:
        if parsing is not None:
            try:
                return [parsed for future in parsing for parsed in future.result()]
            except BrokenProcessPool:
                # The parser process died (killed, or out of memory): parse here this time.
                log.error("parser process died; parsing this batch in the worker")
                self.parser = self.parser_factory() if self.parser_factory else None
        return read_and_parse_all([item.path for item in items], self.organisation(), self.organisation.rules,
                                  self.organisation.reader)

    def _release_all(self, items: list[SpoolItem], parsing: list[Future] | None) -> None:
        for future in parsing or ():
            future.cancel()
        for item in items:
            if item.path.exists():
                self.spool.release(item)

    def run_forever(self, stop: threading.Event | None = None, wakeup=None, relay: bool = True) -> None:
        """Drain, then wait for a wake-up (an object with ``wait(timeout)``) or the poll interval."""
        stop = stop or threading.Event()
        self.spool.recover()
        self.log_batches = True
        while not stop.is_set():
            try:
                summary = self.drain(relay=relay)
                if summary.sent or summary.send_deferred or summary.send_failed:
                    log.info(summary.line())
            except Exception:
                log.exception("worker round failed; next round in a moment")
            (wakeup or stop).wait(self.config.worker.poll_interval)

    # -- one batch ------------------------------------------------------------------
    def process_batch(self, items: list[SpoolItem], parsed: list[Parsed], summary: DrainSummary) -> bool:
        prepared: list[Prepared] = []
        for item, result in zip(items, parsed):
            if result.error is not None:
                self.spool.to_quarantine(item, f"cannot parse: {result.error}")
                summary.quarantined += 1
                log.warning("quarantined %s: cannot parse: %s", item.id, result.error)
                continue
            prepared.append(Prepared(item, result.envelope, result.size, result.mail,
                                     result.verdict, result.key, result.routing))

        try:
            try:
                done, failed = self._write(prepared, isolate=False)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                # Something in the batch failed: do it again, a savepoint per message, to
                # find the message at fault and let the others through.
                done, failed = self._write(prepared, isolate=True)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._database_state(False, f"database unavailable, messages wait in the spool: {exc}")
            for p in prepared:
                self.spool.release(p.item)
            summary.deferred_db += len(prepared)
            return False
        self._database_state(True)

        for p, outcome in done:
            self.spool.archive(p.item, self.config.mail_dir, p.envelope.received)
            summary.processed += 1
            summary.outcomes.append(outcome)
            if outcome.disposition == Disposition.TICKET_CREATED:
                summary.created += 1
            elif outcome.disposition in _REPLIES:
                summary.replies += 1
            elif outcome.disposition == Disposition.DUPLICATE:
                summary.duplicates += 1
        for p, exc in failed:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("processing %s failed: %s", p.item.id, reason, exc_info=exc)
            if self.spool.failed(p.item, reason, self.config.worker.max_attempts, self.config.worker.retry_delay):
                summary.quarantined += 1
            else:
                summary.retried += 1
        return True

    def _write(self, prepared: list[Prepared], isolate: bool
               ) -> tuple[list[tuple[Prepared, Outcome]], list[tuple[Prepared, Exception]]]:
        """One transaction for the batch. Without ``isolate`` any failure aborts it all (the
        common case pays no savepoints); with it, each message has its own savepoint."""
        done: list[tuple[Prepared, Outcome]] = []
        failed: list[tuple[Prepared, Exception]] = []
        outbox = OutboxBatch()
        context = self.context(self.organisation.policy)
        with self.engine.begin() as conn:
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
        return done, failed

    def actions(self, conn: Connection, outbox: OutboxBatch | None = None) -> Actions:
        """The writer, on ``conn``; ``outbox``: the batch's rows, inserted once by ``_write``."""
        return Actions(conn, self.renderer, self.blobs, self.config.attachments, outbox, self.secret,
                       self.config.notifications, self.config.loop_guard, self.clock)

    # -- one message ----------------------------------------------------------------
    def context(self, policy: Policy) -> dispatch.Context:
        """What deciding needs, for one batch: the rules in force as one snapshot."""
        cfg = self.config
        return dispatch.Context(policy.org, policy.rules, policy.reader, self.renderer, dispatch.Settings(
            cfg.auth, self.secret, cfg.hostname, cfg.tickets.reopen_days, cfg.tickets.max_participants,
            cfg.loop_guard.new_tickets_per_sender_hour))

    def process(self, conn: Connection, p: Prepared, outbox: OutboxBatch | None,
                context: dispatch.Context) -> Outcome:
        """One message, in the caller's transaction: decided (a plan), then written; its
        outgoing mail rows go to ``outbox`` (inserted once for the batch) when given."""
        planner = Planner(conn, self.clock.now(), self.config.notifications, outbox)
        plan = dispatch.decide(dispatch.Message(p.item.id, p.envelope, p.mail, p.verdict, p.key, p.routing),
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
