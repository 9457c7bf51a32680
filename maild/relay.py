"""Sends due outbox rows: to the configured SMTP relay, or into a local Maildir.

Queue: ``outbox`` rows with status ``pending`` and ``next_attempt_at`` due; PostgreSQL
claims them ``FOR UPDATE SKIP LOCKED`` so several daemons can share one database.
Strategy: a 4xx answer or a connection failure retries after ``retry_base`` seconds,
doubled each time up to ``retry_max``; a 5xx answer, or still no success after
``lifetime`` seconds, marks the row ``failed`` with the reason.
Guarantee: Maildir delivery is exactly once (the file name is made from the row, and an
existing file is not written again). Relay delivery is at least once: the row is marked
``sent`` in its own commit right after the relay's ``250``; only a crash between those two
instants sends the mail again, with the same Message-ID, which mail clients fold together.
The opposite choice (mark before sending) would lose mail, which a helpdesk must not do.
Config: ``[relay]`` host, port, starttls, username, password, timeout, retry_base,
retry_max, lifetime.
"""
from __future__ import annotations

import logging
import os
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from .config import RelayConfig
from .models import Outbox, now

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

    def deliver(self, row: Outbox, hostname: str) -> None:
        """Write one outbox row as a Maildir file, unless an earlier run already did."""
        name = f"{int(row.created_at.timestamp())}.M{row.id}.{hostname}"
        if (self.root / "new" / name).exists() or any((self.root / "cur").glob(name + "*")):
            return   # delivered before a crash: do not write it twice
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(row.raw.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.root / "new" / name)


class Relay:
    def __init__(self, config: RelayConfig, maildir: Path, hostname: str):
        self.config = config
        self.maildir = Maildir(maildir)
        self.hostname = hostname

    def due(self, session: Session, limit: int) -> list[Outbox]:
        query = (select(Outbox).where(Outbox.status == "pending", Outbox.next_attempt_at <= now())
                 .order_by(Outbox.id).limit(limit).with_for_update(skip_locked=True))
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
            for row in rows:
                self.maildir.deliver(row, self.hostname)
            if rows:
                with sessions.begin() as session:
                    session.execute(update(Outbox).where(Outbox.id.in_([r.id for r in rows]))
                                    .values(status="sent", sent_at=now(), attempts=Outbox.attempts + 1))
            result.sent = len(rows)
            return result
        client: smtplib.SMTP | None = None
        try:
            relay_down = False
            while not relay_down:
                with sessions.begin() as session:
                    rows = self.due(session, 1)
                    if not rows:
                        break
                    row = rows[0]
                    if client is None:
                        try:
                            client = self._connect()
                        except (OSError, smtplib.SMTPException) as exc:
                            # Refused login or greeting: the relay's problem, not this mail's.
                            self._defer(row, f"relay unreachable or refused us: {exc}", result)
                            relay_down = True
                            continue
                    try:
                        client.sendmail(row.sender, [row.recipient], row.raw.encode("utf-8"))
                    except smtplib.SMTPRecipientsRefused as exc:
                        code, reply = next(iter(exc.recipients.values()))
                        self._answer(row, code, reply, result)
                    except smtplib.SMTPResponseException as exc:
                        self._answer(row, exc.smtp_code, exc.smtp_error, result)
                        if exc.smtp_code in (421,):
                            client = None
                    except (OSError, smtplib.SMTPException) as exc:
                        self._defer(row, f"relay unreachable: {exc}", result)
                        client = None
                        relay_down = True   # try the rest next round
                    else:
                        self._sent(row)
                        result.sent += 1
        finally:
            if client is not None:
                try:
                    client.quit()
                except (OSError, smtplib.SMTPException):
                    pass
        return result

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
        row.sent_at = now()
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
        if now() - row.created_at > timedelta(seconds=self.config.lifetime):
            row.status = "failed"
            row.last_error = f"gave up after {row.attempts} attempts; last: {reason}"
            result.failed += 1
            return
        delay = min(self.config.retry_base * 2 ** (row.attempts - 1), self.config.retry_max)
        row.next_attempt_at = now() + timedelta(seconds=delay)
        result.deferred += 1

