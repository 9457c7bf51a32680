"""The worker's look for missed deadlines (issue 17), every ESCALATE_EVERY seconds of
``maild serve``: the overdue tickets read, who is to be told decided (deciding/escalation.py),
and each ticket's stage claimed and its mail queued in a transaction of its own
(acting/apply.py writes the plan, as it writes a message's)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine

from maild.acting import store
from maild.acting.actions import Actions
from maild.acting.apply import apply
from maild.acting.db import is_unavailable
from maild.config import NotificationsConfig
from maild.deciding import escalation
from maild.deciding.organisation import Organisation
from maild.deciding.plan import Planner
from maild.values import Clock

log = logging.getLogger("maild")
ESCALATE_EVERY = 60.0        # seconds between looks


class Escalator:
    def __init__(self, engine: Callable[[], Engine], organisation: Callable[[], Organisation],
                 actions: Callable[[Connection], Actions], notifications: NotificationsConfig, clock: Clock):
        self.engine, self.organisation, self.actions = engine, organisation, actions
        self.notifications, self.clock = notifications, clock

    def look(self) -> int:
        """Tell of the deadlines missed since the last look; returns how many were due."""
        org = self.organisation()
        if org.deadlines is None or not org.deadlines.departments:
            return 0
        now, engine = self.clock.now(), self.engine()
        with engine.connect() as conn:
            due = escalation.due_now(store.overdue(conn, now, sorted(org.deadlines.departments)),
                                     org.deadlines, now)
        for one in due:
            with engine.begin() as conn:
                if store.claim_escalation(conn, one.ticket, one.stage):
                    planner = Planner(conn, now, self.notifications, None, org.deadlines)
                    apply(self.actions(conn), escalation.plan(planner, one, org), None)
        return len(due)

    def look_quietly(self) -> None:
        """The loop's look: an unreachable database waits for the next look (the drain says
        so in the log); anything else is logged and the loop goes on."""
        try:
            self.look()
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("looking for missed deadlines failed; next look in a minute")
