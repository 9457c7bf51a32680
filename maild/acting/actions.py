"""The only writer of tickets. Everything one message causes — the inbound record, the
ticket or entry, the attachments, the conversation's Message-IDs and the outgoing mail
rows — is written in the caller's transaction, so a crash leaves all of it or none of it.

Writes are SQLAlchemy Core statements on the session's connection (one INSERT per table,
many rows at once where there are several): the ORM's per-object bookkeeping cost more
than all the rest of the pipeline. The tables are the ORM models' own, so there is still
one definition of each. Conversation Message-IDs are collected and written once, by
``flush_thread_ids``, with ON CONFLICT DO NOTHING (a Message-ID we already know stays
with its ticket).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import Connection

from maild.acting import search, store
from maild.acting.batch import OutboxBatch
from maild.acting.blobs import BlobStore
from maild.acting.models import AttachmentRow, Entry, Inbound, Outbox, Ticket, TicketChange
from maild.config import AttachmentsConfig, LoopGuardConfig, NotificationsConfig
from maild.deciding import auth
from maild.deciding.organisation import Department
from maild.deciding.plan import mailable
from maild.reading.mail import Mail
from maild.sending.render import File, Renderer
from maild.values import Clock, Notice, OutboxKind, PersonRef, Recipient, Status, SystemClock, TicketRef

log = logging.getLogger("maild.actions")

MAX_MESSAGE_ID = 900
NO_TEXT = "(письмо без текста)"     # what an entry shows for mail with attachments only
_INSERT_THREAD_ID = text("INSERT INTO thread_ids (message_id, ticket_id, outbound) "
                         "VALUES (:message_id, :ticket_id, :outbound) ON CONFLICT (message_id) DO NOTHING")
_T_TICKET, _T_ENTRY = Ticket.__table__, Entry.__table__
_INSERT_TICKET = insert(_T_TICKET).returning(_T_TICKET.c.id)
_INSERT_INBOUND = insert(Inbound.__table__).returning(Inbound.__table__.c.id)
_INSERT_ENTRY = insert(_T_ENTRY).returning(_T_ENTRY.c.id)
_INSERT_ATTACHMENTS = insert(AttachmentRow.__table__)
INSERT_OUTBOX = insert(Outbox.__table__)
_TOUCH_TICKET = update(_T_TICKET).where(_T_TICKET.c.id == bindparam("tid")).values(updated_at=bindparam("ts"))
_SET_STATUS = update(_T_TICKET).where(_T_TICKET.c.id == bindparam("tid")).values(
    status=bindparam("new_status"), updated_at=bindparam("ts"), closed_at=bindparam("closed"),
    resolution=bindparam("resolution"))
_SET_CATEGORY = update(_T_TICKET).where(_T_TICKET.c.id == bindparam("tid")).values(
    category=bindparam("category"), kind=bindparam("kind"), updated_at=bindparam("ts"))
_ADD_PARTICIPANT = text("INSERT INTO participants (ticket_id, person_id, created_at) "
                        "VALUES (:tid, :pid, :ts) ON CONFLICT (ticket_id, person_id) DO NOTHING")
_SET_FIELDS = update(_T_TICKET).where(_T_TICKET.c.id == bindparam("tid"))
# A merge (Actions.merge): what belongs to the conversation follows it; the outbox keeps
# what was sent about the old ticket.
_MERGE = [text("UPDATE entries SET ticket_id = :new WHERE ticket_id = :old"),
          text("UPDATE thread_ids SET ticket_id = :new WHERE ticket_id = :old"),
          text("UPDATE inbound SET ticket_id = :new WHERE ticket_id = :old"),
          text("INSERT INTO participants (ticket_id, person_id, created_at) SELECT :new, person_id, :ts "
               "FROM participants WHERE ticket_id = :old ON CONFLICT (ticket_id, person_id) DO NOTHING"),
          text("UPDATE tickets SET merged_into = :new, updated_at = :ts WHERE id = :old"),
          text("UPDATE tickets SET updated_at = :ts WHERE id = :new")]
_REMOVE_PARTICIPANT = text("DELETE FROM participants WHERE ticket_id = :tid AND person_id = :pid")
_UPDATE_INBOUND = update(Inbound.__table__).where(Inbound.__table__.c.id == bindparam("iid")).values(
    ticket_id=bindparam("tid"), disposition=bindparam("disp"), reason=bindparam("why"))
INSERT_CHANGES = insert(TicketChange.__table__)
_ADD_LINK = text("INSERT INTO ticket_links (ticket_id, linked_id, reason, created_at) "
                 "VALUES (:a, :b, :reason, :ts) ON CONFLICT (ticket_id, linked_id) DO NOTHING")


class Actions:
    def __init__(self, conn: Connection, renderer: Renderer, blobs: BlobStore,
                 limits: AttachmentsConfig = AttachmentsConfig(), outbox_sink: OutboxBatch | None = None,
                 secret: bytes = b"", notifications: NotificationsConfig = NotificationsConfig(),
                 budget: LoopGuardConfig = LoopGuardConfig(), clock: Clock | None = None):
        """``outbox_sink``: collect outbox rows there for the caller to insert once per batch
        (they are never looked up while the batch is processed)."""
        self.conn = conn
        self.clock = clock or SystemClock()
        self.outbox_sink = outbox_sink
        self.secret = secret
        self.notifications = notifications
        self.budget = budget
        self.limits = limits
        self.renderer = renderer
        self.blobs = blobs
        self.index = search.Index(conn)
        self._thread_ids: list[dict] = []
        self._outbox: list[dict] = []
        self._changes: list[dict] = []
        self._opened: set[int] = set()      # tickets this message opened: no mail about them yet

    def finish(self) -> None:
        """Write what was collected: outgoing mail rows, the conversation's Message-IDs and
        the tickets' history."""
        if self._changes:
            if self.outbox_sink is not None:
                self.outbox_sink.changes.extend(self._changes)
            else:
                self.conn.execute(INSERT_CHANGES, self._changes)
            self._changes = []
        if self._outbox:
            if self.outbox_sink is not None:
                self.outbox_sink.extend(self._outbox)
            else:
                self.conn.execute(INSERT_OUTBOX, self._outbox)
            self._outbox = []
        if self._thread_ids:
            self.conn.execute(_INSERT_THREAD_ID, self._thread_ids)
            self._thread_ids = []

    def open_ticket(self, planned: TicketRef, requester_id: int | None, transferred_from: str | None,
                    source: str = "email", filed_by: str | None = None) -> TicketRef:
        """The ticket a plan opens, numbered now from the department's counter."""
        code = planned.department
        number = store.ticket_number(code, store.next_number(self.conn, code))
        created = self.clock.now()
        ticket_id = self.conn.execute(_INSERT_TICKET, dict(
            number=number, department=code, subject=planned.subject, status=Status.OPEN,
            priority=planned.priority, requester_id=requester_id, source=source,
            assignee=planned.assignee, category=planned.category, kind=planned.kind, created_at=created,
            updated_at=created, closed_at=None, resolution=None, filed_by=filed_by,
            transferred_from=transferred_from, respond_by=planned.respond_by, resolve_by=planned.resolve_by,
            escalated=0)).scalar_one()
        self.index.ticket(ticket_id, planned.subject)
        if transferred_from:
            self._change(ticket_id, created, "department", transferred_from, code, code)
        self._change(ticket_id, created, "opened", None, code, code)
        self._opened.add(ticket_id)
        return replace(planned, id=ticket_id, number=number, created_at=created, requester_id=requester_id)

    def _change(self, ticket_id: int, at, field: str, old: str | None, new: str | None, department: str,
                detail: str | None = None) -> None:
        self._changes.append({"ticket_id": ticket_id, "at": at, "field": field, "old": old, "new": new,
                              "detail": detail, "department": department})

    def record_inbound(self, **values: object) -> int:
        """The row that says what became of an inbound message (see worker.py)."""
        return self.conn.execute(_INSERT_INBOUND, values).scalar_one()

    def add_entry(self, ticket: TicketRef, type_: str, mail: Mail, author: PersonRef | None,
                  inbound_id: int | None, touch: bool = True, body: str | None = None,
                  unauthenticated: bool = False) -> int:
        """An entry for a received message: ``body`` is what the person wrote (default: the
        whole text); the whole text is kept as ``full_body`` either way."""
        body = mail.text if body is None else body
        if not body.strip():
            body = NO_TEXT
        entry_id = self.conn.execute(_INSERT_ENTRY, dict(
            ticket_id=ticket.id, type=type_, author_id=author.id if author else None,
            created_at=self.clock.now(), body=body, full_body=mail.text, inbound_id=inbound_id,
            unauthenticated=unauthenticated)).scalar_one()
        self.index.entry(entry_id, type_, body)
        if mail.attachments:
            rows, total = [], 0
            for attachment in mail.attachments:
                sha = attachment.sha256
                total += attachment.size
                # Over a limit: listed with its hash, not stored apart (the archived raw
                # message still holds it).
                stored = self.limits.keeps(attachment.size, total)
                if stored and attachment.data:      # empty: the parser process stored it
                    self.blobs.put(sha, attachment.data)
                rows.append({"entry_id": entry_id, "filename": attachment.filename,
                             "content_type": attachment.content_type[:200], "size": attachment.size,
                             "sha256": sha, "content_id": attachment.content_id[:400],
                             "inline": attachment.inline, "stored": stored})
            self.conn.execute(_INSERT_ATTACHMENTS, rows)
        if mail.message_id:
            self._thread_ids.append({"message_id": mail.message_id[:MAX_MESSAGE_ID],
                                     "ticket_id": ticket.id, "outbound": False})
        if touch:
            self.conn.execute(_TOUCH_TICKET, {"tid": ticket.id, "ts": self.clock.now()})
        return entry_id

    def event(self, ticket: TicketRef, text_: str, author: PersonRef | None = None) -> None:
        """A line in the conversation that records what happened (status, links...)."""
        self.conn.execute(_INSERT_ENTRY, dict(ticket_id=ticket.id, type="event",
                                              author_id=author.id if author else None,
                                              created_at=self.clock.now(), body=text_, full_body=text_,
                                              inbound_id=None, unauthenticated=False))

    def set_status(self, ticket: TicketRef, status: str, resolution: str | None = None) -> TicketRef:
        stamp = self.clock.now()
        closed = stamp if status == Status.CLOSED else None
        self.conn.execute(_SET_STATUS, {"tid": ticket.id, "new_status": status, "ts": stamp,
                                        "closed": closed, "resolution": resolution})
        self._change(ticket.id, stamp, "status", ticket.status, status, ticket.department, resolution)
        return replace(ticket, status=status, closed_at=closed, resolution=resolution)

    def set_category(self, ticket: TicketRef, category: str, kind: str) -> TicketRef:
        stamp = self.clock.now()
        self.conn.execute(_SET_CATEGORY, {"tid": ticket.id, "category": category, "kind": kind, "ts": stamp})
        if category != ticket.category:
            # A correction in the ticket's first days is a labelled example for the routing
            # model (routing/learned.py); the history keeps when it happened.
            self._change(ticket.id, stamp, "category", (ticket.category or "")[:30] or None, category[:30],
                         ticket.department)
        return replace(ticket, category=category, kind=kind)

    def set_fields(self, ticket: TicketRef, **fields: object) -> TicketRef:
        """Change ticket fields the staff steer (assignee, priority, department)."""
        self.conn.execute(_SET_FIELDS.values(updated_at=self.clock.now(), **fields), {"tid": ticket.id})
        if "department" in fields and fields["department"] != ticket.department:
            self._change(ticket.id, self.clock.now(), "department", ticket.department, str(fields["department"]),
                         str(fields["department"]))
        changed: dict[str, Any] = {k: v for k, v in fields.items() if k in TicketRef.__dataclass_fields__}
        return replace(ticket, **changed)

    def _pending(self, recipient: str, kind: str) -> bool:
        """Whether mail of this kind to this address waits in this batch, not yet written."""
        rows = self._outbox + (self.outbox_sink or [])
        return any(r["recipient"].lower() == recipient.lower() and r["kind"] == kind for r in rows)

    def update_inbound(self, inbound_id: int, ticket: TicketRef | None, disposition: str, reason: str) -> None:
        """The outcome, once known (a command mail is recorded before its commands run)."""
        self.conn.execute(_UPDATE_INBOUND, {"iid": inbound_id, "tid": ticket.id if ticket else None,
                                            "disp": disposition, "why": reason})

    def remember_message_id(self, ticket: TicketRef, mail: Mail) -> None:
        """The mail belongs to the ticket's conversation even without an entry of its own."""
        if mail.message_id:
            self._thread_ids.append({"message_id": mail.message_id[:MAX_MESSAGE_ID],
                                     "ticket_id": ticket.id, "outbound": False})

    def remove_participant(self, ticket: TicketRef, person: PersonRef) -> None:
        self.conn.execute(_REMOVE_PARTICIPANT, {"tid": ticket.id, "pid": person.id})

    def add_participants(self, ticket: TicketRef, people: list[PersonRef]) -> None:
        if people:
            self.conn.execute(_ADD_PARTICIPANT, [{"tid": ticket.id, "pid": p.id, "ts": self.clock.now()}
                                                 for p in people])

    def link(self, a: TicketRef, b: TicketRef, reason: str) -> None:
        """Link two tickets both ways, with an event on each, so each shows the other."""
        stamp = self.clock.now()
        self.conn.execute(_ADD_LINK, [{"a": a.id, "b": b.id, "reason": reason, "ts": stamp},
                                      {"a": b.id, "b": a.id, "reason": reason, "ts": stamp}])
        self.event(a, f"Связана с заявкой {b.number}: {reason}")
        self.event(b, f"Связана с заявкой {a.number}: {reason}")

    def merge(self, ticket: TicketRef, into: TicketRef) -> None:
        """Move ``ticket``'s entries (attachments are the entries'), the Message-IDs and
        records of its conversation and its people (its requester among them) to ``into``;
        ``ticket`` points to ``into``. The FTS rows are keyed by entry id: nothing to index."""
        moved = {"old": ticket.id, "new": into.id, "ts": self.clock.now()}
        for statement in _MERGE:
            self.conn.execute(statement, moved)
        if ticket.requester_id is not None and ticket.requester_id != into.requester_id:
            self.conn.execute(_ADD_PARTICIPANT, {"tid": into.id, "pid": ticket.requester_id, "ts": moved["ts"]})
        self._change(ticket.id, moved["ts"], "merged", ticket.number, into.number, into.department)

    def queue(self, ticket: TicketRef | None, department: Department, notice: Notice,
              recipients: list[Recipient], reply_to: Mail | None,
              thread: list[str] | None = None, files: tuple[File, ...] = (), signed_for: str | None = None,
              **context: object) -> list[str]:
        """Render a notice once and collect an outbox row per recipient (written by
        ``finish``, sent later by the relay step). It answers ``reply_to``, or, given a
        ``thread`` (Message-IDs, oldest first), the last message of that conversation.
        Returns the queued Message-IDs (none when the department switched this kind off)."""
        if not recipients or not self.notifications.allows(department.code, notice.template):
            return []
        rendered = self.renderer.render(notice.template, department.code, ticket=ticket,
                                        department=department, **context)
        token = f"[#{ticket.number}]" if ticket is not None else ""
        references: tuple[str, ...] = ()
        if thread:
            references = tuple(dict.fromkeys(thread[:1] + thread[-9:]))
        elif reply_to is not None and reply_to.message_id:
            references = tuple(reply_to.references[-10:]) + (reply_to.message_id,)
        created = self.clock.now()
        ids = []
        for recipient in recipients:
            if not mailable(recipient.email, department):
                log.warning("not mailing %r (%s): not an address maild writes to", recipient.email, notice.template)
                continue
            held = self._over_budget(ticket, recipient.email, notice.kind)
            reply_address = None       # the Reply-To header (``reply_to`` is the mail answered)
            number = signed_for or (ticket.number if ticket is not None else None)
            if notice.signed_reply and number and self.secret:
                reply_address = auth.signed_address(self.secret, department.address, number, recipient.email)
            outgoing = self.renderer.build(
                sender_name=f"{department.short} — {department.name}", sender=department.address,
                recipient_name=recipient.name, recipient=recipient.email,
                token=token, rendered=rendered,
                message_id=self.renderer.new_message_id(),
                in_reply_to=references[-1] if references else None,
                references=references, auto_submitted=notice.auto_submitted, reply_to=reply_address,
                files=files)
            self._outbox.append({"ticket_id": ticket.id if ticket is not None else None, "kind": notice.kind,
                                 "sender": outgoing.sender, "recipient": outgoing.recipient,
                                 "subject": outgoing.subject, "message_id": outgoing.message_id, "raw": outgoing.raw,
                                 "status": "held" if held else "pending", "last_error": held,
                                 "attempts": 0, "next_attempt_at": created, "created_at": created})
            if ticket is not None:
                self._thread_ids.append({"message_id": outgoing.message_id, "ticket_id": ticket.id,
                                         "outbound": True})
            ids.append(outgoing.message_id)
            if held:
                self._tell_held(ticket, department, recipient.email, held)
        return ids

    def _over_budget(self, ticket: TicketRef | None, recipient: str, kind: str) -> str | None:
        """Why this mail must wait (the loop guard), or None. Staff mail is not counted: a
        loop needs a robot on the other side, and our staff are not that."""
        if kind in store.STAFF_KINDS:
            return None
        since = self.clock.now() - timedelta(hours=1)
        batch = self.outbox_sink if self.outbox_sink is not None else OutboxBatch()
        mine = [r for r in self._outbox if r["kind"] not in store.STAFF_KINDS]   # this message's, a few
        recipient = recipient.lower()
        earlier = batch.earlier.get(recipient)
        if earlier is None:
            earlier = store.count_budgeted(self.conn, since, recipient=recipient)
        to_them = earlier + batch.to[recipient] + sum(
            1 for r in mine if r["recipient"].lower() == recipient)
        if to_them >= self.budget.per_recipient_hour:
            return f"held by the loop guard: {to_them} automatic mails to {recipient} in the last hour"
        if ticket is not None:
            earlier = 0 if ticket.id in self._opened else store.count_budgeted(self.conn, since, ticket_id=ticket.id)
            about = earlier + batch.about[ticket.id] + sum(
                1 for r in mine if r["ticket_id"] == ticket.id)
            if about >= self.budget.per_ticket_hour:
                return f"held by the loop guard: {about} automatic mails about {ticket.number} in the last hour"
        return None

    def _tell_held(self, ticket: TicketRef | None, department: Department, recipient: str, why: str) -> None:
        """The department hears of held mail, at most once an hour per recipient."""
        key = f"loop:{recipient}"[:320]
        since = self.clock.now() - timedelta(hours=1)
        if self._pending(key, "loop") or store.noticed_since(self.conn, key, "loop", since):
            return
        # A marker row (never sent) keeps the hour's count of notices; the notice itself
        # goes to the staff.
        self._outbox.append({"ticket_id": None, "kind": "loop", "sender": department.address, "recipient": key,
                             "subject": why, "message_id": self.renderer.new_message_id(), "raw": "",
                             "status": "held", "last_error": why, "attempts": 0,
                             "next_attempt_at": self.clock.now(), "created_at": self.clock.now()})
        self.queue(ticket, department, Notice(OutboxKind.LOOP_NOTICE, "loop_held", "auto-generated"),
                   [Recipient(m.email, m.name) for m in department.staff], None, recipient=recipient, why=why)
