"""What the web pages keep on disk, under ``<data_dir>/web/`` (never in the database, which
only the worker writes):

``pending/ID``   a request typed on the form, waiting for its address to confirm it: a
                 spool-format file (envelope line, then the RFC 5322 message), moved into
                 the spool when the mailed link's button is pressed.
``done/ID``      an empty marker: that request was filed (a second press says so).
``used/NONCE``   an empty marker: that sign-in link was used (a link signs in once).
``generations``  per address, the number that every link and session of it carries;
                 "выйти везде" (or ``maild web --revoke``) counts it up, which ends them all.

Files are written to a temporary name and renamed, so a crash leaves nothing half-written;
a file older than the link's life is removed when the pages next tidy up.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from maild.intake.spool import new_id, read
from maild.values import Envelope


class WebState:
    def __init__(self, root: Path, max_age_seconds: int):
        self.root = Path(root)
        self.pending_dir = self.root / "pending"
        self.done_dir = self.root / "done"
        self.used_dir = self.root / "used"
        self.generations_file = self.root / "generations"
        self.max_age = max_age_seconds
        for d in (self.pending_dir, self.done_dir, self.used_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._tidied = 0.0
        self._recover()

    def _recover(self) -> None:
        """A press the process died in (``.ID.taken``) waits again: pressing once more files it,
        or, if it had reached the spool, makes the worker's duplicate of the same Message-ID."""
        for taken in self.pending_dir.glob(".*.taken"):
            item_id = taken.name[1:].removesuffix(".taken")
            with contextlib.suppress(OSError):
                if (self.done_dir / item_id).exists():
                    taken.unlink()
                else:
                    os.rename(taken, self.pending_dir / item_id)

    # -- requests waiting for their confirmation --------------------------------------
    def hold(self, envelope: Envelope, raw: bytes) -> str:
        """Keep a request until its address confirms it; its id goes into the mailed link."""
        item_id = new_id()
        tmp = self.pending_dir / f".{item_id}.tmp"
        # Only maild may read what someone typed (and attached) before it is a ticket.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            fh.write(envelope.to_json() + b"\n" + raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.pending_dir / item_id)
        self.tidy()
        return item_id

    def waiting(self, item_id: str) -> tuple[Envelope, bytes] | None:
        path = self._path(self.pending_dir, item_id)
        if path is None:
            return None
        try:
            return None if self._old(path) else read(path)
        except FileNotFoundError:       # none, or another press took it between the look and the read
            return None

    def filed(self, item_id: str) -> bool:
        """Filed, or being filed by a press this very moment (the other of two at once)."""
        path = self._path(self.done_dir, item_id)
        return path is not None and (path.exists() or (self.pending_dir / f".{item_id}.taken").exists())

    def file_into(self, item_id: str, put: Callable[[Envelope, bytes], object]) -> bool:
        """Move a waiting request into the spool (True), once: a second press, or two at once,
        find it gone (False). Spooled before the marker: a crash between the two leaves it
        waiting, and pressing again spools the same Message-ID, which the worker takes as
        the duplicate it is."""
        found = self.waiting(item_id)
        if found is None:
            return False
        path = self.pending_dir / item_id
        taken = self.pending_dir / f".{item_id}.taken"
        try:
            os.rename(path, taken)          # the one press that wins
        except FileNotFoundError:
            return False
        try:
            put(*found)
        except BaseException:
            os.rename(taken, path)           # not filed: the button can be pressed again
            raise
        (self.done_dir / item_id).touch()
        taken.unlink()
        return True

    def tidy(self, every: float = 60.0) -> None:
        """Remove what is older than a link's life (at most once a minute)."""
        now = time.time()
        if now - self._tidied < every:
            return
        self._tidied = now
        for d in (self.pending_dir, self.done_dir, self.used_dir):
            for entry in os.scandir(d):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < now - self.max_age - 3600:
                        os.unlink(entry.path)

    def use_once(self, nonce: str) -> bool:
        """True the first time ``nonce`` (a sign-in link's) is used, False ever after."""
        if not (8 <= len(nonce) <= 64 and all(c in "0123456789abcdef" for c in nonce)):
            return False
        try:
            os.close(os.open(self.used_dir / nonce, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        self.tidy()
        return True

    def _old(self, path: Path) -> bool:
        return path.stat().st_mtime < time.time() - self.max_age

    @staticmethod
    def _path(directory: Path, item_id: str) -> Path | None:
        """Only ids we make ("<digits>-<hex>"): a signed link still never names another file."""
        stamp, _, tail = item_id.partition("-")
        if not (stamp.isdigit() and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail)):
            return None
        return directory / item_id

    # -- revoking every link and session of an address ------------------------------------
    def generation(self, address: str) -> int:
        return int(self._generations().get(address.lower(), 0))

    def revoke(self, address: str) -> int:
        """End every link and session of ``address``; returns its new generation."""
        with open(self.root / ".generations.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = self._generations()
            table[address.lower()] = int(table.get(address.lower(), 0)) + 1
            tmp = self.root / f".generations.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(table, ensure_ascii=False, sort_keys=True))
            os.replace(tmp, self.generations_file)
            return table[address.lower()]

    def _generations(self) -> dict[str, int]:
        try:
            return json.loads(self.generations_file.read_text())
        except FileNotFoundError:
            return {}
