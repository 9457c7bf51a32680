"""The spool's crash recovery never takes what a live listener or worker is using."""
from __future__ import annotations

import os
import time

import pytest

from maild import values
from maild.intake.spool import TMP_STALE_SECONDS, Spool
from maild.values import Envelope


def test_recover_returns_claimed_files_and_spares_fresh_tmp_files(tmp_path):
    spool = Spool(tmp_path)
    spool.put(Envelope(mail_from="a@torex.ru", rcpt_to=("osticket@torex.ru",)), b"Subject: x\r\n\r\nx")
    [item] = spool.claim(10)
    fresh = spool.tmp / "being-written"
    fresh.write_bytes(b"half")
    stale = spool.tmp / "left-by-a-crash"
    stale.write_bytes(b"half")
    old = time.time() - TMP_STALE_SECONDS - 10
    os.utime(stale, (old, old))

    assert spool.recover(min_age=600) == 0          # just claimed: a live worker's
    assert spool.recover() == 1 and spool.pending() == 1
    assert fresh.exists() and not stale.exists()


def test_a_failed_group_write_leaves_nothing_in_tmp(tmp_path, monkeypatch):
    """A full disk in the middle of a group commit: nothing was acknowledged, so nothing stays."""
    from maild.intake import spool as spool_mod
    s = spool_mod.Spool(tmp_path / "spool")

    def full(*_):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(spool_mod, "_sync_filesystem", full)
    monkeypatch.setattr(spool_mod, "_syncfs", object())
    with pytest.raises(OSError):
        s.put_many([(values.Envelope("a@torex.ru", ("osticket@torex.ru",)), b"x" * 100)] * 3)
    assert list(s.tmp.iterdir()) == [] and list(s.incoming.iterdir()) == []
