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


def test_an_idle_sender_sends_as_soon_as_the_worker_says_it_queued_mail(maild, monkeypatch):
    """``serve``'s sender sleeps on a pipe the worker writes to after a round that processed
    mail; without that word it would look only every SENDER_IDLE_SECONDS (here a minute)."""
    import os
    import threading

    from maild.daemon import Wakeup, _kick
    from maild.sending import sender as sender_mod

    from conftest import wait_until
    monkeypatch.setattr(sender_mod, "SENDER_IDLE_SECONDS", 60.0)
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    stop = threading.Event()
    sender = maild.worker().sender
    rounds = []
    real_send = sender.send
    monkeypatch.setattr(sender, "send", lambda: rounds.append(1) or real_send())
    thread = threading.Thread(target=sender.send_forever, args=(stop, Wakeup(read_fd)), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: rounds, 5)                 # its first round, with nothing to send
        maild.send(mail(subject="Не печатает принтер"))
        assert maild.worker().drain(relay=False).created == 1
        before = len(rounds)
        assert not wait_until(lambda: maild.sent_to("ivan@torex.ru"), 0.5)   # idle: not looking
        assert len(rounds) == before
        _kick(write_fd)                                     # the worker's word
        assert wait_until(lambda: maild.sent_to("ivan@torex.ru"), 10)
    finally:
        stop.set()
        _kick(write_fd)
        thread.join(10)
        os.close(read_fd)
        os.close(write_fd)
    assert not thread.is_alive()
