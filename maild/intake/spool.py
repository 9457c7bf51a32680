"""The durable hand-off between intake and processing: a queue of files.

Directories (under ``<data_dir>/spool``), each with a meaning, as in Postfix:

``tmp/``         being written; never read. Leftovers after a crash are garbage.
``incoming/``    accepted (``250`` was or will be said only after the rename into here).
``active/``      claimed by a worker (claim = rename, so two workers never take one file).
``quarantine/``  could not be processed; kept with a ``.reason`` file, never deleted.

A spool file is one JSON line with the SMTP envelope followed by the message bytes exactly
as received. Writing is tmp + fsync + rename + fsync of the directory; after the rename the
message survives a crash or power loss. Messages that arrive together are written as a
group (see ``put_many``), so a busy intake pays for one sync per group, not per message.
Processed files move (rename again) into the message archive, ``<data_dir>/mail/YYYY/MM/``,
where every inbound message is kept.

Failure: a write that fails (disk full, read-only) removes its tmp file and raises, so intake
answers ``451`` and the sender retries; a file in ``incoming/`` that is not a spool file is
quarantined by the worker with the reason, never deleted and never a stalled queue.
Security: file names are made here (time and random), never from the mail.
Config: ``worker.max_attempts``, ``worker.retry_delay``; the directory is ``<data_dir>/spool``.

A failed processing attempt is counted in the file name (``ID~N~T``: N attempts, not to
be taken again before the time T), the wait doubling each time; after ``max_attempts``
the file goes to quarantine with the reason.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from maild.values import Envelope

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TMP_STALE_SECONDS = 3600


@dataclass(frozen=True)
class SpoolItem:
    id: str          # stable across retries: "<time>-<random>"
    attempts: int
    path: Path       # where the file is now (active/ once claimed)
    claim: str = ""  # the shared spool's claim token (shared.py); the directory needs none


def new_id() -> str:
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()   # Linux: flush one filesystem (all files of a group) in one call


def _sync_filesystem(path: Path, syncfs: Callable[[int], int]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> tuple[Envelope, bytes]:
    """Read a spool or archive file: (envelope, raw message bytes)."""
    data = Path(path).read_bytes()
    line, _, raw = data.partition(b"\n")
    return Envelope.from_json(line), raw


class Spool:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.incoming = self.root / "incoming"
        self.active = self.root / "active"
        self.quarantine = self.root / "quarantine"
        for d in (self.tmp, self.incoming, self.active, self.quarantine):
            d.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Nothing to let go of (the shared spool has its database connections)."""

    def check_writable(self) -> None:
        """Raise the OSError a message's write would meet (``serve`` says it once at start
        rather than answer 451 to every message of a read-only spool)."""
        probe = self.tmp / f".probe-{new_id()}"
        probe.write_bytes(b"")
        probe.unlink()

    # -- intake ------------------------------------------------------------------
    def put(self, envelope: Envelope, raw: bytes) -> str:
        """Store durably and return the id. Only after this returns may we say 250."""
        return self.put_many([(envelope, raw)])[0]

    def put_many(self, messages: list[tuple[Envelope, bytes]]) -> list[str]:
        """Store several messages durably (a group commit): write them all to ``tmp/``,
        make the data durable with one ``syncfs`` (per-file fsync where there is none),
        then rename them into ``incoming/`` and fsync that directory once. A file appears
        in ``incoming/`` only when its bytes are on disk."""
        ids: list[str] = []
        try:
            for envelope, raw in messages:
                item_id = new_id()
                ids.append(item_id)
                with open(self.tmp / item_id, "wb") as fh:
                    fh.write(envelope.to_json() + b"\n")
                    fh.write(raw)
                    if _syncfs is None:
                        fh.flush()
                        os.fsync(fh.fileno())
            if _syncfs is not None:
                _sync_filesystem(self.tmp, _syncfs)
        except BaseException:
            # A full disk, a vanished directory: nothing of this group was acknowledged, so
            # nothing of it may stay behind (the clients retry).
            for item_id in ids:
                with contextlib.suppress(OSError):
                    os.unlink(self.tmp / item_id)
            raise
        for item_id in ids:
            os.rename(self.tmp / item_id, self.incoming / item_id)
        fsync_dir(self.incoming)
        return ids

    # -- processing --------------------------------------------------------------
    def pending(self) -> int:
        """Files waiting that may be taken now (a failed one waits for its time)."""
        return self.local_pending()

    def local_pending(self) -> int:
        """What waits in this node's directory (the shared spool's fallback, shared.py)."""
        now = time.time()
        return sum(1 for e in os.scandir(self.incoming) if _due(e.name, now))

    def claim(self, limit: int) -> list[SpoolItem]:
        """Claim up to ``limit`` due files, oldest first (ids sort by arrival time)."""
        now = time.time()
        names = sorted(e.name for e in os.scandir(self.incoming) if _due(e.name, now))[:limit]
        items = []
        for name in names:
            try:
                os.rename(self.incoming / name, self.active / name)
            except FileNotFoundError:
                continue  # another worker took it
            item_id, _, rest = name.partition("~")
            items.append(SpoolItem(item_id, int(rest.partition("~")[0] or 0), self.active / name))
        return items

    # The shared spool's claims (shared.py); a directory's claim is the rename, so these are
    # trivial here: every claimed file stays ours.
    def renew(self, items: list[SpoolItem]) -> None:
        """Keep the claims of items waiting to be written."""

    def fence(self, conn: Connection, items: list[SpoolItem]) -> set[str]:
        """The ids of ``items`` still ours, marked done in the transaction ``conn``."""
        return {item.id for item in items}

    def unfence(self, conn: Connection, items: list[SpoolItem]) -> None:
        """``items`` failed in the transaction after all."""

    @property
    def database_down(self) -> bool:
        """The shared spool could not reach its database (a directory never needs one)."""
        return False

    def drop(self, item: SpoolItem) -> None:
        """Forget an item whose claim was lost (never, for a directory)."""

    def requeue(self, item_id: str) -> bool:
        """A quarantined file back into ``incoming`` with its attempts forgotten (the
        admin's ``maild quarantine retry``); False when there is no such file."""
        path = self.quarantine_file(item_id)
        if path is None:
            return False
        os.rename(path, self.incoming / item_id)
        (self.quarantine / f"{item_id}.reason").unlink(missing_ok=True)
        return True

    def release(self, item: SpoolItem) -> None:
        """Give a claimed file back untouched (e.g. the database is down)."""
        os.rename(item.path, self.incoming / item.path.name)

    def failed(self, item: SpoolItem, reason: str, max_attempts: int, delay: float = 0.0) -> bool:
        """Count a failed attempt; quarantine after ``max_attempts``. True if quarantined.
        Otherwise the file waits ``delay`` seconds, doubled for each earlier attempt."""
        attempts = item.attempts + 1
        if attempts >= max_attempts:
            self.to_quarantine(item, f"failed {attempts} times; last error: {reason}")
            return True
        not_before = int(time.time() + delay * 2 ** (attempts - 1))
        os.rename(item.path, self.incoming / f"{item.id}~{attempts}~{not_before}")
        return False

    def to_quarantine(self, item: SpoolItem, reason: str) -> Path:
        target = self.quarantine / item.id
        (self.quarantine / f"{item.id}.reason").write_text(reason + "\n", encoding="utf-8")
        os.rename(item.path, target)
        return target

    def archive(self, item: SpoolItem, archive_root: Path, received: datetime) -> Path:
        """Move a processed file into the archive, where it stays (re-readable later)."""
        target = archive_path(archive_root, item.id, received)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(item.path, target)
        return target

    def recover(self, min_age: float = 0.0) -> int:
        """Files left in ``active/`` by a crashed worker go back to ``incoming/`` (only those
        older than ``min_age`` seconds: a ``maild drain`` beside a running daemon must not
        take what the daemon's worker is processing). Stale ``tmp/`` files are deleted:
        they were never acknowledged, and the client retries. Fresh ones may be a group
        the listener is writing right now, so they are left alone."""
        now = time.time()
        count = 0
        for entry in os.scandir(self.active):
            if now - entry.stat().st_ctime >= min_age:   # ctime: when it was claimed (renamed)
                try:
                    os.rename(entry.path, self.incoming / entry.name)
                    count += 1
                except FileNotFoundError:
                    pass
        self.remove_stale_tmp()
        return count

    def remove_stale_tmp(self) -> None:
        """``tmp/`` files older than TMP_STALE_SECONDS: never acknowledged, the client retried."""
        now = time.time()
        for entry in os.scandir(self.tmp):
            if now - entry.stat().st_mtime > TMP_STALE_SECONDS:
                os.unlink(entry.path)

    def is_quarantined(self, item_id: str) -> bool:
        """A quarantined message (not its .reason file, not a path)."""
        return self.quarantine_file(item_id) is not None

    def quarantine_file(self, item_id: str) -> Path | None:
        """This node's file of a quarantined message (None: no such file, or not an id)."""
        path = self.quarantine / item_id
        safe = "/" not in item_id and not item_id.startswith(".") and not item_id.endswith(".reason")
        return path if safe and path.is_file() else None

    def quarantined(self) -> list[tuple[str, str]]:
        out = []
        for path in sorted(self.quarantine.glob("*.reason")):
            out.append((path.stem, path.read_text(encoding="utf-8").strip()))
        return out

    def kept(self, item_id: str) -> tuple[Envelope, bytes] | None:
        """A message by spool id from the copy every node shares (only the shared spool has
        one; here: None). Raises OSError/ValueError for a copy that cannot be read."""
        return None

    def prune(self, days: int) -> int:
        """Forget processed messages older than ``days`` from the shared copy (none here: a
        node's processed mail is its archive of files)."""
        return 0


def _due(name: str, now: float) -> bool:
    parts = name.split("~")
    return len(parts) < 3 or not parts[2].isdigit() or int(parts[2]) <= now


def archive_path(root: Path, item_id: str, received: datetime) -> Path:
    return Path(root) / f"{received:%Y}" / f"{received:%m}" / f"{item_id}.msg"
