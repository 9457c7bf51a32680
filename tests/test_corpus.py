"""Every file of the shared real-world corpus goes through intake (the spool entry point
that SMTP and `maild inject` share) and the worker, without an exception: it becomes a
ticket or an entry, or is quarantined with a reason. Robots never get an acknowledgement."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from maild.acting.models import Entry, Inbound, Outbox
from maild.values import Envelope

from conftest import require_corpus


def test_whole_corpus_through_intake(harness_factory, corpus_rules):
    corpus = require_corpus()
    maild = harness_factory(rules=corpus_rules)
    files = sorted(corpus.glob("*/*.eml"))
    assert len(files) > 300
    spool_ids = {}
    for path in files:
        item = maild.app.spool.put(Envelope(mail_from="sender@example.com",
                                            rcpt_to=("osticket@torex.ru",), peer="corpus"),
                                   path.read_bytes())
        spool_ids[item] = path
    summary = maild.worker().drain(relay=False)

    quarantined = dict(maild.app.spool.quarantined())
    with maild.session() as s:
        inbound = {row.spool_id: row for row in s.scalars(select(Inbound))}
    outcome = Counter()
    for item, path in spool_ids.items():
        where = f"{path.parent.name}/{path.name}"
        if item in quarantined:
            assert quarantined[item], f"{where}: quarantined without a reason"
            outcome["quarantined"] += 1
            continue
        row = inbound[item]          # every message has its record
        if row.disposition == "duplicate":      # the same Message-ID as an earlier corpus file
            assert "same Message-ID" in row.reason, where
            outcome["duplicate"] += 1
            continue
        if path.parent.name in ("auto-replies", "bounces"):
            # Robots: recorded with the reason, no ticket, no entry, no mail (loop guard).
            assert row.disposition in ("auto-reply-ignored", "bounce-recorded"), f"{where}: {row.disposition}"
            assert row.ticket_id is None and row.reason, where
            outcome[row.disposition] += 1
            continue
        if row.disposition in ("refused-domain", "auto-reply-ignored", "bounce-recorded"):
            # No corporate sender at all (policy), or list mail and robots: no ticket.
            assert row.reason and row.ticket_id is None, where
            outcome[row.disposition] += 1
            continue
        assert row.ticket_id and (row.disposition in ("ticket-created", "reply-added", "response-added",
                                                      "auto-reply-recorded")
                                  or row.disposition.startswith("closed-")), where
        outcome[row.disposition] += 1
    assert summary.retried == 0
    assert maild.app.spool.pending() == 0
    assert outcome["ticket-created"] + sum(v for k, v in outcome.items() if k.startswith("closed-")) > 150, outcome


def test_robots_get_no_mail_and_make_no_entry(harness_factory, corpus_rules):
    """Every file of auto-replies/ and bounces/: no outgoing mail, no entry, no ticket; each
    recorded with what gave it away."""
    corpus = require_corpus()
    maild = harness_factory(rules=corpus_rules)
    files = sorted(corpus.glob("auto-replies/*.eml")) + sorted(corpus.glob("bounces/*.eml"))
    assert len(files) > 100
    for path in files:
        # As a robot writes: to the department, from the address it answers for.
        maild.app.spool.put(Envelope(mail_from="ivan@torex.ru", rcpt_to=("osticket@torex.ru",), peer="corpus"),
                            path.read_bytes())
    summary = maild.drain()
    with maild.session() as s:
        assert s.scalars(select(Outbox)).all() == [] and s.scalars(select(Entry)).all() == []
        rows = s.scalars(select(Inbound)).all()
    assert summary.quarantined == 0 and maild.sink.messages == []
    assert {r.disposition for r in rows} <= {"auto-reply-ignored", "bounce-recorded", "duplicate"}
    assert all(r.reason and r.ticket_id is None for r in rows)
