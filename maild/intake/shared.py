"""The cluster's spool: accepted mail in PostgreSQL, where every node can claim it.

With several ``maild serve`` nodes on one PostgreSQL (issue 16) a message one node accepted
must not wait for that node: intake writes it into the ``spool`` table before its ``250``,
and any node's worker may process it.

Queues: the ``spool`` table (incoming -> done, or quarantined); the node's own directories
(``spool/`` under data_dir) stay for what the table cannot take at the moment: while the
database is unreachable, intake falls back to the local ``incoming/`` (durable, ``250`` as
always) and the worker moves those files into the table as soon as it is back (``uplink``).
A claimed row is copied to ``active/`` so that the parser processes read a file as before.
Strategy: a claim is ``UPDATE … FOR UPDATE SKIP LOCKED`` with a token and a lease in the
database's clock (no two nodes' clocks are compared). The worker marks its rows ``done``
where the token is still its own, first thing in the transaction that writes their tickets
(``fence``): a node that stalled past its lease and wakes finds its claim taken and writes
nothing, and the row lock keeps the others off while its transaction is open. The sessions
of a stopped node are ended by PostgreSQL (``idle_in_transaction_session_timeout``, half the
lease), so its locks do not outlive it either. Effects are idempotent twice over: the fence,
and the unique Message-ID of ``inbound``.
Failure: a database error while accepting falls back to the local spool (logged once); while
claiming, nothing is claimed this round; a lost claim is dropped without a word to anyone.
Quarantined mail is kept in the table and, with its reason, in this node's ``quarantine/``
(the ``maild quarantine`` commands of the node that quarantined it work on it).
Security: ids are made here, never from the mail; the table is written with bound parameters.
Config: ``[cluster]`` node, lease; ``worker.max_attempts``, ``worker.retry_delay``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from maild.intake.spool import Spool, SpoolItem, fsync_dir, new_id
from maild.values import Envelope

log = logging.getLogger("maild.spool")

INSERT = text("INSERT INTO spool (id, envelope, raw, received_at, state, attempts, not_before, node) "
              "VALUES (:id, :envelope, :raw, :received_at, 'incoming', :attempts, now(), :node) "
              # a file `maild quarantine retry` put back: the row comes back to life; a copy already
              # in the table is left as it is (the uplink of a file twice).
              "ON CONFLICT (id) DO UPDATE SET state = 'incoming', attempts = 0, not_before = now(), "
              "claim = NULL, lease_until = NULL, reason = '' WHERE spool.state = 'quarantined'")
CLAIM = text("UPDATE spool SET claim = :claim, node = :node, lease_until = now() + make_interval(secs => :lease) "
             "WHERE id IN (SELECT id FROM spool WHERE state = 'incoming' AND not_before <= now() "
             "AND (lease_until IS NULL OR lease_until < now()) ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) "
             "RETURNING id, envelope, raw, attempts")
RENEW = text("UPDATE spool SET lease_until = now() + make_interval(secs => :lease) "
             "WHERE claim = ANY(:claims) AND state = 'incoming'")
FENCE = text("UPDATE spool SET state = 'done', done_at = now() "
             "WHERE id = ANY(:ids) AND claim = ANY(:claims) AND state = 'incoming' RETURNING id")
UNFENCE = text("UPDATE spool SET state = 'incoming', done_at = NULL WHERE id = ANY(:ids) AND claim = ANY(:claims)")
RELEASE = text("UPDATE spool SET claim = NULL, lease_until = NULL "
               "WHERE id = :id AND claim = :claim AND state = 'incoming'")
RETRY = text("UPDATE spool SET attempts = :attempts, not_before = now() + make_interval(secs => :wait), "
             "claim = NULL, lease_until = NULL, reason = :reason WHERE id = :id AND claim = :claim "
             "AND state = 'incoming'")
QUARANTINE = text("UPDATE spool SET state = 'quarantined', reason = :reason, claim = NULL, lease_until = NULL "
                  "WHERE id = :id AND claim = :claim AND state = 'incoming'")
PENDING = text("SELECT count(*) FROM spool WHERE state = 'incoming' AND not_before <= now()")
QUARANTINED = text("SELECT id, reason FROM spool WHERE state = 'quarantined' ORDER BY id")
KNOWN = text("SELECT id FROM spool WHERE id = ANY(:ids)")
KEPT = text("SELECT envelope, raw FROM spool WHERE id = :id")
REQUEUE = text("UPDATE spool SET state = 'incoming', attempts = 0, not_before = now(), claim = NULL, "
               "lease_until = NULL, reason = '' WHERE id = :id AND state = 'quarantined'")
# Only what is done: mail waiting or quarantined is never pruned, whatever its age.
PRUNE = text("DELETE FROM spool WHERE state = 'done' AND done_at < now() - make_interval(days => :days)")
FORGET_MINE = text("UPDATE spool SET claim = NULL, lease_until = NULL "
                   "WHERE node = :node AND state = 'incoming' AND claim IS NOT NULL")


class SharedSpool(Spool):
    """The ``Spool`` the worker and intake use when the database is PostgreSQL."""

    def __init__(self, root: Path, engine: Callable[[], Engine], node: str, lease: int):
        super().__init__(root)
        self._make_engine = engine
        self._engine: Engine | None = None
        self._pid = os.getpid()
        self.node = node
        self.lease = lease
        self._database_up = True

    @property
    def engine(self) -> Engine:
        # Made on first use, and again in a forked child (a pool's connections belong to the
        # process that opened them).
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._engine, self._pid = self._make_engine(), os.getpid()
        return self._engine

    def close(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None

    def _state(self, up: bool, exc: BaseException | None = None) -> None:
        if up != self._database_up:
            self._database_up = up
            if up:
                log.warning("the database is back: the shared spool takes mail again")
            else:
                log.error("the database is unreachable: mail is accepted into this node's own spool (%s) and "
                          "goes to the shared one when the database is back: %s",
                          self.incoming, str(exc).splitlines()[0] if exc else "")

    # -- intake ------------------------------------------------------------------
    def put_many(self, messages: list[tuple[Envelope, bytes]]) -> list[str]:
        """Durable in the database before this returns (its commit), else in the local spool."""
        ids = [new_id() for _ in messages]
        rows = [{"id": item_id, "envelope": envelope.to_json().decode("ascii"), "raw": raw,
                 "received_at": envelope.received, "attempts": 0, "node": self.node}
                for item_id, (envelope, raw) in zip(ids, messages, strict=True)]
        try:
            with self.engine.begin() as conn:
                conn.execute(INSERT, rows)
        except SQLAlchemyError as exc:
            self._state(False, exc)
            return super().put_many(messages)
        self._state(True)
        return ids

    def uplink(self, limit: int = 500) -> int:
        """Move what the local ``incoming/`` holds (accepted while the database was away, or
        put back by ``maild quarantine retry``) into the table; the files go once it is there."""
        names = sorted(e.name for e in os.scandir(self.incoming))[:limit]
        if not names:
            return 0
        rows, paths = [], []
        for name in names:
            path = self.incoming / name
            try:
                line, _, raw = path.read_bytes().partition(b"\n")
                envelope = Envelope.from_json(line)
            except (OSError, ValueError, TypeError):
                continue        # not a spool file: claim() takes it locally, to be quarantined
            item_id, _, rest = name.partition("~")
            rows.append({"id": item_id, "envelope": line.decode("ascii", "replace"), "raw": raw,
                         "received_at": envelope.received, "attempts": int(rest.partition("~")[0] or 0),
                         "node": self.node})
            paths.append(path)
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(INSERT, rows)
        for path in paths:
            path.unlink(missing_ok=True)
        fsync_dir(self.incoming)
        return len(rows)

    # -- processing --------------------------------------------------------------
    def pending(self) -> int:
        local = self.local_pending()
        try:
            with self.engine.connect() as conn:
                return local + int(conn.execute(PENDING).scalar_one())
        except SQLAlchemyError:
            return local

    def claim(self, limit: int) -> list[SpoolItem]:
        """Claim up to ``limit`` due rows (after moving local files up); each is copied to
        ``active/`` for the parser. Nothing while the database is away."""
        token = secrets.token_hex(8)
        try:
            self.uplink()
            with self.engine.begin() as conn:
                rows = conn.execute(CLAIM, {"claim": token, "node": self.node, "lease": self.lease,
                                            "limit": limit}).all()
        except SQLAlchemyError as exc:
            self._state(False, exc)
            return []
        self._state(True)
        items = []
        for row in sorted(rows, key=lambda r: r.id):      # RETURNING has no order: arrival order here
            path = self.active / row.id
            with open(path, "wb") as fh:     # a copy, not the record: no fsync
                fh.write(row.envelope.encode("ascii") + b"\n")
                fh.write(bytes(row.raw))
            items.append(SpoolItem(row.id, row.attempts, path, token))
        # What the uplink could not read stays local: claimed from the directory (no token), so
        # that the worker quarantines it with its reason as it would on one node.
        return items + super().claim(max(0, limit - len(items)))

    @property
    def database_down(self) -> bool:
        return not self._database_up

    def renew(self, items: list[SpoolItem]) -> None:
        claims = sorted({i.claim for i in items if i.claim})
        if claims:
            # The database away: the batch's own write meets it and puts the batch back; a lease
            # that ends meanwhile only lets another node take what this one then cannot write.
            with contextlib.suppress(SQLAlchemyError), self.engine.begin() as conn:
                conn.execute(RENEW, {"claims": claims, "lease": self.lease})

    def fence(self, conn: Connection, items: list[SpoolItem]) -> set[str]:
        """In the worker's transaction, before anything else: the ids still ours, now ``done``
        (undone if the transaction rolls back) and locked until it ends."""
        local = {i.id for i in items if not i.claim}    # claimed by rename: ours
        shared = [i for i in items if i.claim]
        if not shared:
            return local
        rows = conn.execute(FENCE, {"ids": [i.id for i in shared],
                                    "claims": sorted({i.claim for i in shared})}).scalars()
        return local | set(rows)

    def unfence(self, conn: Connection, items: list[SpoolItem]) -> None:
        """Messages of the batch whose processing failed are not done after all."""
        shared = [i for i in items if i.claim]
        if shared:
            conn.execute(UNFENCE, {"ids": [i.id for i in shared], "claims": sorted({i.claim for i in shared})})

    def drop(self, item: SpoolItem) -> None:
        """A claim that another node took over: forget the local copy."""
        item.path.unlink(missing_ok=True)

    def release(self, item: SpoolItem) -> None:
        if not item.claim:      # a local file (see claim)
            return super().release(item)
        with contextlib.suppress(SQLAlchemyError), self.engine.begin() as conn:   # else the lease ends it
            conn.execute(RELEASE, {"id": item.id, "claim": item.claim})
        item.path.unlink(missing_ok=True)

    def failed(self, item: SpoolItem, reason: str, max_attempts: int, delay: float = 0.0) -> bool:
        if not item.claim:      # a local file (see claim)
            return super().failed(item, reason, max_attempts, delay)
        attempts = item.attempts + 1
        if attempts >= max_attempts:
            self.to_quarantine(item, f"failed {attempts} times; last error: {reason}")
            return True
        with self.engine.begin() as conn:
            conn.execute(RETRY, {"id": item.id, "claim": item.claim, "attempts": attempts,
                                 "wait": delay * 2 ** (attempts - 1), "reason": reason[:2000]})
        item.path.unlink(missing_ok=True)
        return False

    def to_quarantine(self, item: SpoolItem, reason: str) -> Path:
        if not item.claim:      # a local file (see claim)
            return super().to_quarantine(item, reason)
        with self.engine.begin() as conn:
            conn.execute(QUARANTINE, {"id": item.id, "claim": item.claim, "reason": reason})
        return super().to_quarantine(item, reason)

    def recover(self, min_age: float = 0.0) -> int:
        """The copies in ``active/`` are only copies: removed (those older than ``min_age``).
        The worker starting (``min_age`` 0) gives back what this node still claims: a restart
        need not wait for its own leases."""
        now = datetime.now(UTC).timestamp()
        for entry in os.scandir(self.active):
            if now - entry.stat().st_ctime >= min_age:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        self.remove_stale_tmp()
        if min_age > 0:
            return 0
        try:
            with self.engine.begin() as conn:
                return conn.execute(FORGET_MINE, {"node": self.node}).rowcount
        except SQLAlchemyError:
            return 0

    # -- the cluster's view, for the admin's commands ----------------------------
    def quarantined(self) -> list[tuple[str, str]]:
        """Quarantined on any node (the table), and what only this node's directory holds."""
        local = dict(super().quarantined())
        with self.engine.connect() as conn:
            rows = {row.id: row.reason for row in conn.execute(QUARANTINED)}
            in_table = set(conn.execute(KNOWN, {"ids": list(local)}).scalars()) if local else set()
        # A local file whose row is in the table but no longer quarantined was put back from
        # another node: a stale copy, not shown.
        rows.update((i, reason) for i, reason in local.items() if i not in in_table)
        return sorted(rows.items())

    def is_quarantined(self, item_id: str) -> bool:
        return item_id in dict(self.quarantined())     # a stale local copy is not

    def kept(self, item_id: str) -> tuple[Envelope, bytes] | None:
        with self.engine.connect() as conn:
            row = conn.execute(KEPT, {"id": item_id}).first()
        return None if row is None else (Envelope.from_json(row.envelope.encode("ascii")), bytes(row.raw))

    def requeue(self, item_id: str) -> bool:
        """Put back in the table, whichever node quarantined it; this node's copy goes. A
        message only this node's directory holds goes up through ``incoming/`` (uplink)."""
        with self.engine.begin() as conn:
            in_table = conn.execute(REQUEUE, {"id": item_id}).rowcount == 1
        if not in_table:
            return super().requeue(item_id)
        if self.quarantine_file(item_id) is not None:
            (self.quarantine / item_id).unlink(missing_ok=True)
            (self.quarantine / f"{item_id}.reason").unlink(missing_ok=True)
        return True

    def prune(self, days: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(PRUNE, {"days": days}).rowcount
