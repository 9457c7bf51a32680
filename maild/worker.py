"""The pipeline: one message's path from the spool to a ticket, readable top to bottom.

    claim (spool) -> parse -> classify -> match -> act (one transaction) -> archive
    then: relay due outgoing mail

Queues: takes files from ``spool/incoming`` (claim = rename into ``active``), writes the
database, moves each processed file into the archive ``mail/YYYY/MM/``.
Strategy: messages are processed in batches, one transaction per batch and a savepoint per
message, so one bad message never takes its neighbours down and the durable commit is
paid once per batch. Processing twice is a no-op: the spool id and the Message-ID are
unique in ``inbound``.
Failure: mail that cannot be parsed is quarantined at once with the reason; a message
whose processing raises is retried ``worker.max_attempts`` times, then quarantined; if
the database is unreachable the whole batch goes back to ``incoming`` untouched and is
retried later (not counted against the messages).
Config: ``worker.batch_size``, ``worker.poll_interval``, ``worker.max_attempts``.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from . import match, spool as spool_mod, store
from .actions import Actions, Notice
from .blobs import BlobStore
from .classify import Verdict, classify
from .config import Config
from .db import is_unavailable
from .models import Inbound, Ticket
from .organisation import Organisation
from .parse import Mail, ParseError, parse
from .relay import Relay
from .render import Renderer
from .spool import Envelope, Spool, SpoolItem

log = logging.getLogger("maild.worker")


class Unroutable(Exception):
    """No department address among the recipients (the rules changed since intake)."""


@dataclass(frozen=True)
class Outcome:
    disposition: str          # ticket-created, reply-added, duplicate
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
    outcomes: list[Outcome] = field(default_factory=list)

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


class Worker:
    def __init__(self, config: Config, organisation: Callable[[], Organisation],
                 sessions: sessionmaker[Session], spool: Spool, renderer: Renderer,
                 blobs: BlobStore, relay: Relay):
        self.config = config
        self.organisation = organisation
        self.sessions = sessions
        self.spool = spool
        self.renderer = renderer
        self.blobs = blobs
        self.relay = relay

    # -- the loop -------------------------------------------------------------------
    def drain(self, relay: bool = True) -> DrainSummary:
        """Process everything waiting, then send due mail. Returns what happened."""
        summary = DrainSummary()
        while True:
            items = self.spool.claim(self.config.worker.batch_size)
            if not items:
                break
            if not self.process_batch(items, summary):
                break   # database unavailable: stop and leave the rest for later
        if relay:
            try:
                sent = self.relay.run(self.sessions)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.warning("outgoing mail waits: database unavailable: %s", exc)
            else:
                summary.sent, summary.send_deferred, summary.send_failed = sent.sent, sent.deferred, sent.failed
        return summary

    def run_forever(self, stop: threading.Event | None = None, wakeup=None) -> None:
        """Drain, then wait for a wake-up (an object with ``wait(timeout)``) or the poll interval."""
        stop = stop or threading.Event()
        self.spool.recover()
        while not stop.is_set():
            try:
                summary = self.drain()
                if summary.processed or summary.sent:
                    log.info(summary.line())
            except Exception:
                log.exception("worker round failed; next round in a moment")
            (wakeup or stop).wait(self.config.worker.poll_interval)

    # -- one batch ------------------------------------------------------------------
    def process_batch(self, items: list[SpoolItem], summary: DrainSummary) -> bool:
        prepared: list[Prepared] = []
        for item in items:
            envelope, raw = spool_mod.read(item.path)
            try:
                mail = parse(raw)
            except ParseError as exc:
                self.spool.to_quarantine(item, f"cannot parse: {exc}")
                summary.quarantined += 1
                log.warning("quarantined %s: cannot parse: %s", item.id, exc)
                continue
            key = mail.message_id[:900] if mail.message_id else "sha256:" + hashlib.sha256(raw).hexdigest()
            prepared.append(Prepared(item, envelope, len(raw), mail, classify(mail, envelope), key))

        done: list[tuple[Prepared, Outcome]] = []
        failed: list[tuple[Prepared, Exception]] = []
        try:
            with self.sessions.begin() as session:
                for p in prepared:
                    try:
                        with session.begin_nested():
                            done.append((p, self.process(session, p)))
                    except Exception as exc:
                        if is_unavailable(exc):
                            raise
                        failed.append((p, exc))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("database unavailable, %d messages wait in the spool: %s", len(prepared), exc)
            for p in prepared:
                self.spool.release(p.item)
            summary.deferred_db += len(prepared)
            return False

        for p, outcome in done:
            self.spool.archive(p.item, self.config.mail_dir, p.envelope.received)
            summary.processed += 1
            summary.outcomes.append(outcome)
            if outcome.disposition == "ticket-created":
                summary.created += 1
            elif outcome.disposition == "reply-added":
                summary.replies += 1
            elif outcome.disposition == "duplicate":
                summary.duplicates += 1
        for p, exc in failed:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("processing %s failed: %s", p.item.id, reason, exc_info=exc)
            if self.spool.failed(p.item, reason, self.config.worker.max_attempts):
                summary.quarantined += 1
            else:
                summary.retried += 1
        return True

    # -- one message ----------------------------------------------------------------
    def process(self, session: Session, p: Prepared) -> Outcome:
        if store.inbound_by_spool_id(session, p.item.id) is not None:
            return Outcome("duplicate", "already processed (before a restart)")
        seen = store.inbound_by_key(session, p.key)
        if seen is not None:
            number = seen.ticket_id and session.get(Ticket, seen.ticket_id).number
            return Outcome("duplicate", f"same Message-ID as inbound #{seen.id}", number)

        org = self.organisation()
        mail, envelope = p.mail, p.envelope
        inbound = Inbound(
            spool_id=p.item.id, message_key=p.key, mail_from=envelope.mail_from[:320],
            rcpt_to=", ".join(envelope.rcpt_to), peer=envelope.peer[:100],
            received_at=envelope.received, size=p.size, subject=mail.subject,
            archive_path=str(spool_mod.archive_path(self.config.mail_dir, p.item.id, envelope.received)
                             .relative_to(self.config.data_dir)),
            disposition="", reason="")
        session.add(inbound)
        session.flush()

        sender = mail.sender.email if mail.sender else envelope.mail_from
        author = store.person(session, sender, mail.sender.name if mail.sender else "") if sender else None
        actions = Actions(session, self.renderer, self.blobs)

        found = match.find(session, mail, {d.code for d in org.departments})
        if found is not None:
            actions.add_entry(found.ticket, "message", mail, author, inbound)
            inbound.disposition, inbound.reason = "reply-added", found.how
            return Outcome("reply-added", found.how, found.ticket.number)

        department = next(filter(None, map(org.department_for_address, envelope.rcpt_to)), None)
        if department is None:
            raise Unroutable(f"no department address among {', '.join(envelope.rcpt_to)}")
        ticket = actions.open_ticket(department, mail, author, inbound)
        reason = f"new request to {department.address}"
        if p.verdict.automatic:
            reason += f"; automatic mail ({p.verdict.reason}): no acknowledgement, no alert"
        else:
            self._notify_new(actions, ticket, department, mail, author)
        inbound.disposition, inbound.reason = "ticket-created", reason
        return Outcome("ticket-created", reason, ticket.number)

    def _notify_new(self, actions: Actions, ticket, department, mail: Mail, author) -> None:
        requester = {"email": author.email if author else "", "name": author.name if author else ""}
        # An address that is not ASCII (RFC 6531) cannot be answered through an ordinary relay.
        if author is not None and author.email.isascii():
            actions.queue(ticket, department,
                          Notice("ack", "ack", author.email, author.name, "auto-replied"),
                          mail, requester=requester)
        for member in department.staff:
            actions.queue(ticket, department,
                          Notice("alert", "new_ticket_alert", member.email, member.name, "auto-generated"),
                          mail, requester=requester, body=mail.text, attachments=mail.attachments)
