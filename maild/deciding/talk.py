"""What a conversation decision (conversation.py) does to the ticket, planned (plan.py):
the entry, the people copied who join, the status, and who hears — the requester and
participants by the department's mail, the assignee or the department by an alert.
Nothing is written here; the worker has the plan written.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from maild import values
from maild.acting import store
from maild.deciding import repeats, rules
from maild.deciding.conversation import UNCATEGORISED, Decision, Effect, sender_warning
from maild.deciding.organisation import Department, Organisation, Staff
from maild.deciding.plan import Planner
from maild.deciding.rules import Routing
from maild.reading import quotes
from maild.reading.mail import Address, Mail
from maild.values import Notice, OutboxKind, PersonRef, Recipient, Status, TicketRef

Hints = Callable[[Department], list[tuple[str, str]]]


class Conversation:
    def __init__(self, plan: Planner, org: Organisation, max_participants: int = 10,
                 hints: Hints | None = None):
        """``hints``: the commands a new-ticket alert lists for its department (from the
        command classes, as #помощь; commands/registry.alert_hints)."""
        self.plan = plan
        self.org = org
        self.max_participants = max_participants
        self.hints = hints or (lambda department: [])
        self.copies_proven = False      # set per message by ``apply``

    def apply(self, decision: Decision, ticket: TicketRef, department: Department, mail: Mail,
              author: PersonRef | None, routing: Routing | None = None,
              copies_proven: bool = False) -> None:
        """``ticket`` is the one the message lands on (new for NEW and NEW_LINKED, where
        ``routing`` says what the admin's rules decided). ``copies_proven``: the mail proved
        its sender (auth.check), so the people it copies may join the ticket; an unproven
        mail adds its text and never widens who receives the ticket's mail."""
        self.copies_proven = copies_proven
        a = self.plan
        if decision.effect is Effect.AUTOMATIC:
            # Recorded, but a robot's answer is no activity: the ticket does not look touched.
            a.add_entry(ticket, "event", mail, author, touch=False)
            return
        if decision.effect is Effect.UNAUTHENTICATED:
            proof = decision.proof
            self.refuse_unauthenticated(proof.how if proof else "not checked", ticket,
                                        department, mail, author, said=proof.said if proof else "")
            return
        if decision.effect in (Effect.NEW, Effect.NEW_LINKED):
            self._new(decision, ticket, department, mail, author, routing)
            return
        if decision.effect is Effect.RESPONSE:
            body = quotes.reply_text(mail.text, mail.html if mail.text_from_html else "", fallback=False)
            if not body.strip():
                # Nothing of their own (an attachment, a signature): never answer the requester
                # with the quoted alert, which may hold a colleague's internal note.
                a.add_entry(ticket, "note", mail, author, body="")
                return
            a.add_entry(ticket, "response", mail, author, body=body)
            self.participants_from_copies(ticket, mail, author)
            if ticket.status != Status.ANSWERED:
                ticket = a.set_status(ticket, Status.ANSWERED)
            self._send_response(ticket, department, mail, author, body)
            return
        body = quotes.reply_text(mail.text, mail.html if mail.text_from_html else "")
        a.add_entry(ticket, "message", mail, author, body=body)
        self.participants_from_copies(ticket, mail, author)
        if ticket.status == Status.CLOSED and ticket.resolution == UNCATEGORISED:
            self._categorised_again(ticket, department, mail, author)
            return
        if ticket.status == Status.CLOSED:
            ticket = a.set_status(ticket, Status.OPEN)
            a.event(ticket, "Заявка снова открыта: заявитель ответил после закрытия", author)
        elif ticket.status == Status.ANSWERED:
            # The requester answered: the ticket waits for the department again (and its
            # deadline's clock runs again).
            ticket = a.set_status(ticket, Status.OPEN)
        self._alert_reply(ticket, department, mail, author, body)

    def _new(self, decision: Decision, ticket: TicketRef, department: Department, mail: Mail,
             author: PersonRef | None, routing: Routing | None) -> None:
        a = self.plan
        a.add_entry(ticket, "message", mail, author, touch=False)
        self.participants_from_copies(ticket, mail, author)
        previous = decision.ticket
        if previous is not None:
            a.link(ticket, previous, decision.reason.split(", ", 1)[-1])
        if routing is not None and routing.transferred_from is not None:
            a.event(ticket, f"Передана из {routing.transferred_from.short} в {department.short}: "
                            f"{routing.transfer_reason}")
        if routing is not None and routing.close:
            # Closed at once (policy): the requester gets the rule's answer, staff nothing.
            a.set_status(ticket, Status.CLOSED, resolution=routing.close)
            a.event(ticket, f"Закрыта без обработки: {routing.hits[-1].description or routing.hits[-1].rule}")
            if author is not None and author.email.isascii():
                a.send(ticket, department, Notice(routing.close, routing.close, "auto-replied"),
                        [Recipient(author.email, author.name)], mail,
                        requester=values.card(author),
                        reason=routing.hits[-1].description or routing.hits[-1].rule)
            return
        self.notify_new(ticket, department, mail, author, previous, routing)
        if routing is not None and routing.reply and author is not None and author.email.isascii():
            a.send(ticket, department, Notice(routing.reply, routing.reply, "auto-replied"),
                    [Recipient(author.email, author.name)], mail,
                    requester=values.card(author),
                    reason=routing.hits[-1].description if routing.hits else "")

    def refuse_unauthenticated(self, why: str, ticket: TicketRef | None, department: Department,
                               mail: Mail, author: PersonRef | None,
                               commands: tuple[str, ...] = (), said: str = "") -> None:
        """A staff From without proof: stored (on ``ticket``, flagged), sent to nobody, no
        command applied; the real staff member hears that a mail in their name was refused.
        ``why`` is for the log; ``said``, the same in Russian, for the staff member's mail."""
        if ticket is not None:
            body = quotes.reply_text(mail.text, mail.html if mail.text_from_html else "")
            self.plan.add_entry(ticket, "message", mail, author, body=body, unauthenticated=True, touch=False)
        self.plan.warn(f"refused unauthenticated mail in the name of {author.email if author else '?'} on "
                       f"{ticket.number if ticket else 'no ticket'}: {why}")
        member = self.org.staff_by_email(author.email) if author else None
        if member is not None and not self._warned_lately(member.email):
            self.plan.send(ticket, department, Notice(OutboxKind.SECURITY, "forged_staff", "auto-generated"),
                               [Recipient(member.email, member.name)], mail, staff={"name": member.name},
                               reason=said or why, subject=mail.subject, commands=commands,
                               sender=mail.sender.email if mail.sender else "")

    def _warned_lately(self, email: str) -> bool:
        """One warning an hour is enough: a flood of forged mail must not become a flood of
        warnings (each is logged on maild.security all the same)."""
        pending = self.plan.pending_to(email, "security")
        return pending or store.noticed_since(self.plan.conn, email.lower(), "security",
                                              self.plan.now - timedelta(hours=1))

    def _categorised_again(self, ticket: TicketRef, department: Department, mail: Mail,
                           author: PersonRef | None) -> None:
        """A reply to "closed without processing": with a category named, the ticket opens
        again with it; without one, the notice with the list of categories comes again."""
        a = self.plan
        found = rules.explicit_category(mail, (), self.org, department)
        requester = values.card(author)
        if found is None or found[0].department != department.code:
            if author is not None and author.email.isascii():
                a.send(ticket, department, Notice(UNCATEGORISED, UNCATEGORISED, "auto-replied"),
                        [Recipient(author.email, author.name)], mail, requester=requester,
                        reason="категория не указана")
            return
        category, how = found
        ticket = a.set_category(ticket, category.name, category.kind)
        ticket = a.restart_clock(a.set_status(ticket, Status.OPEN))
        a.event(ticket, f"Заявка открыта снова с категорией «{category.name}» ({how})", author)
        self.notify_new(ticket, department, mail, author)

    # -- who hears about it -----------------------------------------------------------------
    def participants_from_copies(self, ticket: TicketRef, mail: Mail, author: PersonRef | None) -> None:
        """Corporate addresses copied on a proven mail join the ticket (never our own
        addresses, never staff: they hear as staff, and only about their own department's
        tickets). Anyone can write ``From: ivan@`` with a ``Cc``: an unproven mail's copies are
        only recorded as an event, so a forgery cannot recruit an eavesdropper."""
        sender = author.email if author else ""
        copied: list[Address] = []
        for address in mail.to + mail.cc:
            email = address.email.lower()
            if (email == sender or self.org.is_department_address(email) or not self.org.is_corporate(email)
                    or not email.isascii() or self.org.staff_by_email(email) is not None
                    or any(email == c.email.lower() for c in copied)):
                continue
            copied.append(address)
        if not copied:
            return
        if not self.copies_proven:
            self.plan.event(ticket, "В копию не добавлены: " + ", ".join(c.email for c in copied[:10])
                               + (" и другие" if len(copied) > 10 else "")
                               + " — отправитель письма не подтверждён, а такое письмо не расширяет круг "
                                 "получателей заявки (добавить может сотрудник: #копия добавить)", author)
            return
        # Someone else's address book names them: a new person gets it, nobody is renamed.
        people = [self.plan.person(c.email, c.name, rename=False)
                  for c in copied[:self.max_participants + 1]]
        self.add_participants(ticket, people, author)

    def add_participants(self, ticket: TicketRef, people: list[PersonRef], by: PersonRef | None) -> list[PersonRef]:
        """Join ``people`` to the ticket, up to ``max_participants``; the requester is told
        when anyone but themselves added someone."""
        a = self.plan
        present = {p.id for p in a.participants(ticket)}
        new = [p for p in people if p.id not in present and p.id != ticket.requester_id]
        room = max(0, self.max_participants - len(present))
        added, over = new[:room], new[room:]
        if over:
            a.event(ticket, f"В копию не добавлены (не больше {self.max_participants} человек на заявку): "
                            + ", ".join(p.email for p in over[:10]), by)
        if not added:
            return []
        a.add_participants(ticket, added)
        a.event(ticket, "В копию добавлены: " + ", ".join(p.email for p in added), by)
        requester = a.person_by_id(ticket.requester_id)
        if requester is not None and (by is None or by.id != requester.id) and requester.email.isascii():
            department = self.org.department(ticket.department)
            if department is not None:
                a.send(ticket, department, Notice(OutboxKind.PARTICIPANTS, "participants_added", "auto-generated"),
                        [Recipient(requester.email, requester.name)], None,
                        added=[{"email": p.email, "name": p.name} for p in added],
                        by={"email": by.email, "name": by.name} if by else None)
        return added

    def notify_new(self, ticket: TicketRef, department: Department, mail: Mail,
                   author: PersonRef | None, previous: TicketRef | None = None,
                   routing: Routing | None = None, body: str | None = None,
                   filed_by: Staff | None = None, forwarded_by: dict | None = None) -> None:
        """The acknowledgement to the requester and the alert to the department (not to
        ``filed_by``, the staff member who filed it on the requester's behalf)."""
        requester = values.card(author)
        transfer = None
        if routing is not None and routing.transferred_from is not None:
            transfer = {"from": routing.transferred_from, "reason": routing.transfer_reason}
        # An address that is not ASCII (RFC 6531) cannot be answered through an ordinary relay.
        if author is not None and author.email.isascii():
            # A phone ticket's ack starts a conversation: the staff member's mail is not theirs.
            self.plan.send(ticket, department, Notice(OutboxKind.ACK, "ack", "auto-replied"),
                               [Recipient(author.email, author.name)], None if filed_by else mail,
                               requester=requester, previous=previous, transfer=transfer,
                               filed_by=filed_by, forwarded_by=forwarded_by)
        to_all = self.plan.notifications.new_tickets_to_all(department.code)
        repeat = repeats.probable(self.plan.conn, ticket, f"{ticket.subject}\n{mail.text if body is None else body}",
                                  self.plan.now)
        self.plan.send(ticket, department, Notice(OutboxKind.ALERT, "new_ticket_alert", "auto-generated", True),
                           self.staff_for(ticket, department, exclude=filed_by.email if filed_by else "",
                                          everyone=to_all),
                           mail, requester=requester, filed_by=filed_by, forwarded_by=forwarded_by,
                           body=mail.text if body is None else body, attachments=mail.attachments,
                           previous=previous,
                           transfer=transfer, why=routing.explain_ru() if routing is not None else "",
                           triage=routing.suggestions() if routing is not None else [],
                           warning=sender_warning(mail), commands=self.hints(department), repeat=repeat)

    def _alert_reply(self, ticket: TicketRef, department: Department, mail: Mail,
                     author: PersonRef | None, body: str) -> None:
        self.plan.send(ticket, department, Notice(OutboxKind.ALERT, "reply_alert", "auto-generated", True),
                           self.staff_for(ticket, department), mail,
                           author=values.card(author),
                           body=body, attachments=mail.attachments, warning=sender_warning(mail))

    def _send_response(self, ticket: TicketRef, department: Department, mail: Mail,
                       author: PersonRef | None, body: str) -> None:
        self.tell_requester(ticket, department, mail, author, "response", body=body,
                            attachments=mail.attachments)

    def tell_requester(self, ticket: TicketRef, department: Department, mail: Mail,
                       author: PersonRef | None, template: str, kind: str = "response",
                       **context: Any) -> None:
        """Public mail in the department's name to the requester and participants (never
        to the staff member who wrote it), threaded under the requester's side of the
        conversation (they never saw the alert the staff member answered)."""
        member = self.org.staff_by_email(author.email) if author else None
        recipients: list[Recipient] = []
        requester = self.plan.person_by_id(ticket.requester_id)
        for person in [requester] + self.plan.participants(ticket):
            if (person is not None and person.email.isascii() and (author is None or person.id != author.id)
                    and person.email not in {r.email for r in recipients}):
                recipients.append(Recipient(person.email, person.name))
        thread = store.conversation_ids(self.plan.conn, ticket.id,
                                        except_from=author.email if author else "") if ticket.id > 0 else []
        context.setdefault("attachments", ())
        context.setdefault("body", "")
        context["staff"] = {"name": member.name if member else (author.name if author else ""),
                            "email": author.email if author else ""}
        self.plan.send(ticket, department, Notice(kind, template, "auto-generated"), recipients, mail,
                       thread=thread or None, **context)

    def staff_for(self, ticket: TicketRef, department: Department, exclude: str = "",
                  everyone: bool = False) -> list[Recipient]:
        """The assignee once there is one, else (or with ``everyone``) the whole department;
        never ``exclude``, the staff member who caused the mail."""
        staff = [m for m in department.staff if ticket.assignee and m.login == ticket.assignee and not everyone]
        return [Recipient(m.email, m.name) for m in (staff or department.staff)
                if m.email.lower() != exclude.lower()]
