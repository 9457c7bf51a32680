"""The only writer of tickets. Everything one message causes — the ticket or entry, the
attachments, the conversation's Message-IDs and the outgoing mail rows — is written in the
caller's transaction, so a crash leaves all of it or none of it.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from . import store
from .blobs import BlobStore
from .models import AttachmentRow, Entry, Inbound, Outbox, Person, ThreadId, Ticket, now
from .organisation import Department
from .parse import Attachment, Mail
from .render import Renderer

MAX_MESSAGE_ID = 900


@dataclass(frozen=True)
class Notice:
    """One mail to queue: which template, to whom, as what kind of automatic mail."""
    kind: str
    template: str
    to_email: str
    to_name: str
    auto_submitted: str


class Actions:
    def __init__(self, session: Session, renderer: Renderer, blobs: BlobStore):
        self.session = session
        self.renderer = renderer
        self.blobs = blobs

    def open_ticket(self, department: Department, mail: Mail, requester: Person | None,
                    inbound: Inbound, source: str = "email") -> Ticket:
        number = store.ticket_number(department.code, store.next_number(self.session, department.code))
        ticket = Ticket(number=number, department=department.code, subject=mail.subject,
                        status="open", requester=requester, source=source)
        self.session.add(ticket)
        self.session.flush()
        self.add_entry(ticket, "message", mail, requester, inbound)
        return ticket

    def add_entry(self, ticket: Ticket, type_: str, mail: Mail, author: Person | None,
                  inbound: Inbound) -> Entry:
        entry = Entry(ticket_id=ticket.id, type=type_, author=author, body=mail.text,
                      inbound_id=inbound.id)
        self.session.add(entry)
        self.session.flush()
        for attachment in mail.attachments:
            self._attach(entry, attachment)
        if mail.message_id:
            self.remember_message_id(ticket, mail.message_id, outbound=False)
        inbound.ticket_id = ticket.id
        ticket.updated_at = now()
        return entry

    def _attach(self, entry: Entry, attachment: Attachment) -> None:
        sha = attachment.sha256
        self.blobs.put(sha, attachment.data)
        self.session.add(AttachmentRow(entry_id=entry.id, filename=attachment.filename,
                                       content_type=attachment.content_type[:200],
                                       size=attachment.size, sha256=sha,
                                       content_id=attachment.content_id[:400],
                                       inline=attachment.inline))

    def remember_message_id(self, ticket: Ticket, message_id: str, outbound: bool) -> None:
        message_id = message_id[:MAX_MESSAGE_ID]
        if self.session.get(ThreadId, message_id) is None:
            self.session.add(ThreadId(message_id=message_id, ticket_id=ticket.id, outbound=outbound))

    def queue(self, ticket: Ticket, department: Department, notice: Notice, mail: Mail | None,
              **context: object) -> Outbox:
        """Render a notice and write it as an outbox row (sent later by the relay step)."""
        rendered = self.renderer.render(notice.template, department.code, ticket=ticket,
                                        department=department, **context)
        references = ()
        if mail is not None and mail.message_id:
            references = tuple(mail.references[-10:]) + (mail.message_id,)
        outgoing = self.renderer.build(
            sender_name=f"{department.short} — {department.name}", sender=department.address,
            recipient_name=notice.to_name, recipient=notice.to_email,
            token=f"[#{ticket.number}]", rendered=rendered,
            message_id=self.renderer.new_message_id(),
            in_reply_to=mail.message_id if mail is not None else None,
            references=references, auto_submitted=notice.auto_submitted)
        row = Outbox(ticket_id=ticket.id, kind=notice.kind, sender=outgoing.sender,
                     recipient=outgoing.recipient, subject=outgoing.subject,
                     message_id=outgoing.message_id, raw=outgoing.raw, status="pending")
        self.session.add(row)
        self.remember_message_id(ticket, outgoing.message_id, outbound=True)
        return row
