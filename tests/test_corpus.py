"""Every file of the shared real-world corpus goes through intake (the spool entry point
that SMTP and `maild inject` share) and the worker, without an exception: it becomes a
ticket or an entry, or is quarantined with a reason. Robots never get an acknowledgement."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from maild.models import Inbound, Outbox
from maild.spool import Envelope

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
        answered = {row.ticket_id for row in s.scalars(select(Outbox))}
    outcome = Counter()
    for item, path in spool_ids.items():
        where = f"{path.parent.name}/{path.name}"
        if item in quarantined:
            assert quarantined[item], f"{where}: quarantined without a reason"
            outcome["quarantined"] += 1
            continue
        if item not in inbound:
            # The only other fate: the same Message-ID as an earlier corpus file.
            assert any(o.disposition == "duplicate" for o in summary.outcomes), where
            outcome["duplicate"] += 1
            continue
        row = inbound[item]
        if row.disposition == "refused-domain":      # no corporate sender at all (policy)
            assert row.reason and row.ticket_id is None, where
            outcome["refused-domain"] += 1
            continue
        assert row.ticket_id and (row.disposition in ("ticket-created", "reply-added", "response-added",
                                                      "auto-reply-recorded")
                                  or row.disposition.startswith("closed-")), where
        outcome[row.disposition] += 1
        if path.parent.name in ("auto-replies", "bounces"):
            assert row.ticket_id not in answered, f"{where}: a robot got mail from us ({row.reason})"
    assert summary.retried == 0
    assert maild.app.spool.pending() == 0
    assert outcome["ticket-created"] + sum(v for k, v in outcome.items() if k.startswith("closed-")) > 250, outcome
