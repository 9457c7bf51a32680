"""Corrections people made by mail, read back as labelled examples (only read: the writes
are the ordinary ticket history, ``ticket_changes``).

A ticket whose category or department was changed, or which was reopened after being closed
without processing, within ``days`` of being opened, and which has a category now, is an
example: its subject and first message, labelled with its department and category today.
The changes written with the opening itself (the rules' own transfer) are not corrections.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from maild.acting.models import Ticket, TicketChange
from maild.acting.store import first_message
from maild.routing.examples import Example

_CHANGES = select(TicketChange.ticket_id, TicketChange.at, TicketChange.field, TicketChange.old).where(
    TicketChange.field.in_(("category", "department", "status")))


def corrections(conn: Connection, days: int, labels: set[str]) -> list[Example]:
    changed: dict[int, list] = {}
    for change in conn.execute(_CHANGES):
        if change.field == "status" and change.old != "closed":
            continue
        changed.setdefault(change.ticket_id, []).append(change.at)
    if not changed:
        return []
    t = Ticket.__table__
    out: list[tuple[datetime, Example]] = []    # with when the ticket was opened, to sort by
    ids = sorted(changed)
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        rows = conn.execute(select(t.c.id, t.c.number, t.c.department, t.c.category, t.c.subject, t.c.created_at)
                            .where(t.c.id.in_(chunk), t.c.category.is_not(None)))
        for row in rows:
            window = row.created_at + timedelta(days=days)
            if not any(row.created_at < at <= window for at in changed[row.id]):
                continue
            label = f"{row.department}|{row.category}"
            if label in labels:
                out.append((row.created_at, Example(label, row.subject, first_message(conn, row.id),
                                                    f"ticket {row.number}", row.created_at)))
    return [example for _, example in sorted(out, key=lambda found: found[0])]
