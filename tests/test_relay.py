"""Outgoing mail without a relay: the local Maildir, delivered exactly once."""
from __future__ import annotations

from maild.app import App
from maild.sending.relay import Maildir
from maild.values import Envelope

from conftest import mail, make_config


def test_maildir_delivery_survives_a_crash_before_commit(tmp_path, db_url):
    app = App.create(make_config(tmp_path, db_url, sink_port=None))
    app.init_db(create=True)
    app.spool.put(Envelope(mail_from="ivan@torex.ru", rcpt_to=("osticket@torex.ru",)), mail())
    worker = app.worker()
    worker.drain(relay=False)
    maildir = Maildir(app.config.outbox_maildir)
    with app.sessions.begin() as session:
        rows = worker.relay.due(session, 10)
        assert len(rows) == 3
        for row in rows:
            maildir.deliver(row, app.config.hostname)
        session.rollback()                      # the crash: delivered, but not recorded
    summary = worker.drain()                   # after the restart the rows are still due
    assert summary.sent == 3
    files = list((app.config.outbox_maildir / "new").iterdir())
    assert len(files) == 3                      # and nothing was written twice
    assert any(b"Auto-Submitted: auto-replied" in f.read_bytes() for f in files)
    # Maildir files have the local line ending (mutt shows no ^M); the mail parses the same.
    assert all(b"\r" not in f.read_bytes() and b"\nSubject: " in f.read_bytes() for f in files)
    assert worker.drain().sent == 0
    app.close()
