"""Sends due outbox rows: to the configured SMTP relay, or into a local Maildir.

Queue: ``outbox`` rows with status ``pending`` and ``next_attempt_at`` due; PostgreSQL
claims them ``FOR UPDATE SKIP LOCKED`` so several daemons can share one database.
Strategy: a 4xx answer or a connection failure retries after ``retry_base`` seconds,
doubled each time up to ``retry_max``; a 5xx answer, or still no success after
``lifetime`` seconds, marks the row ``failed`` with the reason.
Guarantee: Maildir delivery is exactly once (the file name is made from the row, and an
existing file is not written again). Relay delivery is at least once: a row is claimed
(``sending``, committed), sent with no database lock held, and marked ``sent`` in its own
commit right after the relay's ``250``; only a crash or a dropped connection between
those two instants sends the mail again, with the same Message-ID, which mail clients fold
together. The opposite choice (mark before sending) would lose mail, which a helpdesk must
not do. Claims older than four relay timeouts (a sender that died; Maildir: ``CLAIM_TIMEOUT``)
are taken again.
Return path: every mail leaves with a VERP envelope sender (verp.py), so a bounce names
the exact row. Failed rows are reported to their department (``failures``).
Security: every recipient was checked when the row was queued (plan.mailable: a plain
address, never the helpdesk's own); the relay's password is read from the config only.
Config: ``[relay]`` host, port, starttls, username, password, timeout, retry_base,
retry_max, lifetime.
"""
from __future__ import annotations

import contextlib
import logging
import os
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import literal_column, select, update
from sqlalchemy.orm import Session, sessionmaker

from maild.acting.models import Outbox
from maild.config import RelayConfig
from maild.sending import verp
from maild.values import Clock, SystemClock

log = logging.getLogger("maild.relay")


@dataclass
class RelayResult:
    sent: int = 0
    deferred: int = 0
    failed: int = 0


class Maildir:
    def __init__(self, root: Path):
        self.root = Path(root)
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def deliver(self, row: Outbox, hostname: str, return_path: str = "") -> None:
        """Write one outbox row as a Maildir file, unless an earlier run already did. Maildir
        files use the local line ending (mutt, ``maild``'s own readers): the wire's CRLF is
        for SMTP only."""
        name = f"{int(row.created_at.timestamp())}.M{row.id}.{hostname}"
        if (self.root / "new" / name).exists() or any((self.root / "cur").glob(name + "*")):
            return   # delivered before a crash: do not write it twice
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as fh:
            if return_path:     # what the final MTA would add: where bounces go
                fh.write(f"Return-Path: <{return_path}>\n".encode("ascii"))
            fh.write(row.raw.replace("\r\n", "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.root / "new" / name)


CLAIM_TIMEOUT = timedelta(minutes=10)       # Maildir delivery: writing one file never takes longer
RELAY_CLAIMS = 4            # relay.timeout's: a relay conversation that slow has failed (issue 16)


class Relay:
    def __init__(self, config: RelayConfig, maildir: Path, hostname: str, secret: bytes = b"",
                 clock: Clock | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        self.maildir = Maildir(maildir)
        self.hostname = hostname
        self.secret = secret
        # How long a claimed row may stay ``sending`` before a sender (this node's, restarted, or
        # another node's) takes it again: the sender that claimed it died. Bounded by the relay's
        # own timeout so that mail a dead node had claimed does not wait ten minutes for it.
        self.claim_timeout = (timedelta(seconds=RELAY_CLAIMS * config.timeout) if config.host else CLAIM_TIMEOUT)

    def return_path(self, row: Outbox) -> str:
        return verp.return_path(self.secret, row.sender, row.message_id) if self.secret else row.sender

    def due(self, session: Session, limit: int) -> list[Outbox]:
        stale = self.clock.now() - self.claim_timeout
        query = (select(Outbox).where(
            ((Outbox.status == "pending") & (Outbox.next_attempt_at <= self.clock.now()))
            | ((Outbox.status == "sending") & (Outbox.next_attempt_at <= stale)))
            # "+id", not id: ordered by an expression, SQLite cannot walk the table in id order,
            # which statistics from an ANALYZE (a million rows all 'sent') make it prefer to
            # outbox_due; this query runs every poll (tests/test_schema.py).
            .order_by(literal_column("+outbox.id")).limit(limit).with_for_update(skip_locked=True))
        return list(session.scalars(query))

    def run(self, sessions: sessionmaker[Session], limit: int = 200) -> RelayResult:
        result = RelayResult()
        if not self.config.host:
            # Files are written outside any transaction (no database lock held while we
            # fsync), then marked sent at once; a crash in between rewrites nothing.
            with sessions() as session:
                rows = self.due(session, limit)
                session.expunge_all()       # keep the loaded values; release the read
                session.rollback()
            for due in rows:
                self.maildir.deliver(due, self.hostname, self.return_path(due))
            if rows:
                with sessions.begin() as session:
                    session.execute(update(Outbox).where(Outbox.id.in_([r.id for r in rows]))
                                    .values(status="sent", sent_at=self.clock.now(), attempts=Outbox.attempts + 1))
            result.sent = len(rows)
            return result
        client: smtplib.SMTP | None = None
        try:
            while True:
                row = self._claim(sessions)
                if row is None:
                    break
                if client is None:
                    try:
                        client = self._connect()
                    except (OSError, smtplib.SMTPException) as exc:
                        # Refused login or greeting: the relay's problem, not this mail's.
                        self._record(sessions, row, "defer", f"relay unreachable or refused us: {exc}", result)
                        break
                try:
                    client.sendmail(self.return_path(row), [row.recipient], row.raw.encode("utf-8"))
                except smtplib.SMTPRecipientsRefused as exc:
                    code, reply = next(iter(exc.recipients.values()))
                    self._record(sessions, row, "answer", (code, reply), result)
                except smtplib.SMTPResponseException as exc:
                    self._record(sessions, row, "answer", (exc.smtp_code, exc.smtp_error), result)
                    if exc.smtp_code in (421,):
                        client = None
                except (OSError, smtplib.SMTPException) as exc:
                    self._record(sessions, row, "defer", f"relay unreachable: {exc}", result)
                    client = None
                    break       # try the rest next round
                else:
                    self._record(sessions, row, "sent", None, result)
                    result.sent += 1
        finally:
            if client is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    client.quit()
        return result

    def _claim(self, sessions: sessionmaker[Session]) -> Outbox | None:
        """Take the next due row (``sending``) in a commit of its own: no lock is held while
        we talk to the relay."""
        with sessions.begin() as session:
            rows = self.due(session, 1)
            if not rows:
                return None
            row = rows[0]
            row.status, row.next_attempt_at = "sending", self.clock.now()
            session.flush()
            session.expunge(row)
            return row

    def _record(self, sessions: sessionmaker[Session], row: Outbox, outcome, arg, result: RelayResult) -> None:
        """Write what became of a claimed row (``outcome``: sent, answer or defer)."""
        with sessions.begin() as session:
            current = session.get_one(Outbox, row.id)     # claimed by us: it is there
            current.status = "pending"          # the outcome decides: sent, failed or again later
            if outcome == "answer":
                self._answer(current, arg[0], arg[1], result)
            elif outcome == "defer":
                self._defer(current, arg, result)
            else:
                self._sent(current)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        client = smtplib.SMTP(cfg.host, cfg.port, local_hostname=self.hostname, timeout=cfg.timeout)
        if cfg.starttls:
            client.starttls()
        if cfg.username:
            client.login(cfg.username, cfg.password)
        return client

    def _sent(self, row: Outbox) -> None:
        row.status = "sent"
        row.sent_at = self.clock.now()
        row.attempts += 1

    def _answer(self, row: Outbox, code: int, reply: bytes | str, result: RelayResult) -> None:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        reason = f"{code} {text}".strip()
        if 500 <= code < 600:
            row.status = "failed"
            row.attempts += 1
            row.last_error = f"relay refused: {reason}"
            result.failed += 1
            log.warning("outbox %s to %s failed: %s", row.id, row.recipient, reason)
        else:
            self._defer(row, f"relay deferred: {reason}", result)

    def _defer(self, row: Outbox, reason: str, result: RelayResult) -> None:
        row.attempts += 1
        row.last_error = reason
        if self.clock.now() - row.created_at > timedelta(seconds=self.config.lifetime):
            row.status = "failed"
            row.last_error = f"gave up after {row.attempts} attempts; last: {reason}"
            result.failed += 1
            return
        delay = min(self.config.retry_base * 2 ** (row.attempts - 1), self.config.retry_max)
        row.next_attempt_at = self.clock.now() + timedelta(seconds=delay)
        result.deferred += 1

