"""A probable repeat (issue 17): an employee's second mail about the same problem soon after
the first (same sender, same department, much the same words) is offered to staff in the
new ticket's alert, with the ``#объединить`` line to merge it. Never merged without them.

Similarity is the overlap of the two texts' stems (reading/stems.py, stop words dropped):
the words they share over the words of the shorter one. A short "still broken" mail shares
few words with a long first one, so the bar is a share of the shorter text, and at least
two words in common.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from maild.acting import store
from maild.reading.stems import Stems, stems
from maild.values import TicketRef

WINDOW = timedelta(days=3)      # "soon after"
SHARE = 0.5                     # of the shorter text's words, in common
AT_LEAST = 2                    # words in common


@dataclass(frozen=True)
class Repeat:
    number: str
    subject: str
    created_at: datetime
    share: float


def probable(conn: Connection, ticket: TicketRef, text: str, now: datetime,
             reader: Stems | None = None) -> Repeat | None:
    """The requester's recent ticket in the same department that ``text`` (the new ticket's
    subject and body) most resembles, if it resembles one enough."""
    if ticket.requester_id is None or ticket.requester_id < 0:
        return None                 # a person met for the first time has no earlier ticket
    reader = reader or stems()
    mine = set(reader.query(text))
    best: Repeat | None = None
    for number, subject, opened, first in store.recent_open(conn, ticket.requester_id, ticket.department,
                                                            now - WINDOW):
        if number == ticket.number:
            continue
        theirs = set(reader.query(f"{subject}\n{first}"))
        common = len(mine & theirs)
        share = common / max(1, min(len(mine), len(theirs)))
        if common >= AT_LEAST and share >= SHARE and (best is None or share > best.share):
            best = Repeat(number, subject, opened, round(share, 2))
    return best
