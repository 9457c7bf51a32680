"""Table-driven: realistic Russian requests (tests/fixtures/requests.toml) through the real
pipeline over SMTP, with the department, category, kind and outcome the policy demands."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from maild.acting import store

from conftest import mail

REQUESTS = tomllib.loads((Path(__file__).parent / "fixtures" / "requests.toml").read_text(encoding="utf-8"))["request"]


def test_the_table_covers_the_policy():
    assert len(REQUESTS) >= 40
    outcomes = {r["expect_outcome"] for r in REQUESTS}
    assert outcomes == {"ticket", "transferred", "not-handled", "uncategorised"}
    for dept in ("OSA", "DAB"):
        from maild.deciding.organisation import load

        from conftest import PROJECT
        names = {c.name for c in load(PROJECT / "rules").department(dept).categories}
        assert names <= {r["expect_category"] for r in REQUESTS}, dept


@pytest.mark.parametrize("case", REQUESTS, ids=lambda r: r["id"])
def test_request(maild, case):
    sender = "e.petrova@torex.ru"
    maild.send(mail(subject=case["subject"], body=case["body"], to=case["to"],
                    sender=f"Петрова Елена <{sender}>"), rcpt=case["to"], sender=sender)
    summary = maild.drain()
    [outcome] = summary.outcomes
    with maild.session() as s:
        [ticket] = store.tickets(s)
        events = [e.body for e in store.ticket_with_entries(s, ticket.number).entries if e.type == "event"]
    why = f"{case['id']}: {outcome.reason}"
    assert ticket.department == case["expect_department"], why
    kind = case["expect_outcome"]
    if case["expect_category"] or kind != "ticket":
        assert (ticket.category or "") == case["expect_category"], why
        assert (ticket.kind or "") == case["expect_kind"], why
    # A request the first keyword rules found no category for may now get one from the reading
    # (these requests are training examples now; rules/examples/requests.tsv): it stays open either way.
    if kind in ("not-handled", "uncategorised"):
        assert ticket.status == "closed" and outcome.disposition == f"closed-{kind}", why
        [answer] = maild.sent_to(sender)
        assert answer.subject.startswith(f"[#{ticket.number}]")
        assert maild.sink.messages == [answer]          # staff are not bothered
    else:
        assert ticket.status == "open", why
        assert any(e.startswith("Передана") for e in events) == (kind == "transferred"), why
        [ack] = maild.sent_to(sender)
        if kind == "transferred":
            assert "передана" in ack.body.lower()
