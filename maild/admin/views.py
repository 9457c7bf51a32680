"""How tickets and outgoing mail look to people (terminal) and scripts (JSON).

The JSON shapes are documented in the README and kept stable: add keys, never rename.
"""
from __future__ import annotations

import re
from datetime import datetime

from maild.acting import search
from maild.acting.models import Entry, Outbox, Ticket
from maild.values import LocalTime


def _time(value: datetime | None) -> str | None:
    """JSON keeps ISO UTC whatever the zone: scripts read it (a stable shape)."""
    return value.isoformat(timespec="seconds") if value else None


def shown(local: LocalTime, iso: str | None) -> str:
    """An ISO time of a JSON row as a person reads it in the terminal (``-`` for none)."""
    return local.when(datetime.fromisoformat(iso)) if iso else "-"


def entry(e: Entry) -> dict:
    return {
        "type": e.type,
        "author": e.author.email if e.author else None,
        "created_at": _time(e.created_at),
        "body": e.body,
        "full_body": e.full_body,
        # Claimed a staff From and proved nothing: kept, never sent, not the staff member's words.
        "unauthenticated": bool(e.unauthenticated),
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "sha256": a.sha256, "content_id": a.content_id or None,
                         "stored": a.stored} for a in e.attachments],
    }


# C0 controls but line feed, tab and CR before LF (CSV lines), DEL, C1 controls (U+009B is a CSI on its own) and the
# direction overrides that reorder what a terminal shows.
_UNSAFE = re.compile("\r(?!\n|$)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text from mail made safe to print: each unsafe character becomes its ``\\uXXXX``
    escape (also valid inside a JSON string, where it means the same character)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def ticket(t: Ticket, entries: bool = False) -> dict:
    out: dict[str, object] = {
        "number": t.number,
        "department": t.department,
        "subject": t.subject,
        "status": t.status,
        "requester": {"email": t.requester.email, "name": t.requester.name, "phone": t.requester.phone,
                      "office": t.requester.office, "company": t.requester.company} if t.requester else None,
        "assignee": t.assignee,
        "category": t.category,
        "kind": t.kind,
        "priority": t.priority,
        "source": t.source,
        "filed_by": t.filed_by,
        "created_at": _time(t.created_at),
        "updated_at": _time(t.updated_at),
        "triage": triage(t),
        "deadlines": {"respond_by": _time(t.respond_by), "resolve_by": _time(t.resolve_by),
                      "responded_at": _time(t.responded_at), "paused_minutes": t.paused_minutes,
                      "escalated": t.escalated},
        "merged": t.resolution == "merged",
    }
    if entries:
        out["participants"] = [{"email": p.person.email, "name": p.person.name} for p in t.participants]
        out["links"] = [{"number": link.linked.number, "reason": link.reason} for link in t.links]
        out["entries"] = [entry(e) for e in t.entries]
    return out


def outbox(row: Outbox) -> dict:
    return {
        "id": row.id,
        "ticket": row.ticket.number if row.ticket else None,
        "to": row.recipient,
        "subject": row.subject,
        "kind": row.kind,
        "status": row.status,
        "message_id": row.message_id,
        "attempts": row.attempts,
        "last_error": row.last_error,
    }


def inbound(row) -> dict:
    """One line of `maild log` (an Inbound row)."""
    return {"id": row.id, "spool_id": row.spool_id, "received_at": _time(row.received_at),
            "from": row.mail_from or None, "to": row.rcpt_to.split(", ") if row.rcpt_to else [],
            "subject": row.subject, "disposition": row.disposition, "reason": row.reason,
            "ticket": row.ticket.number if row.ticket else None}


def triage(t: Ticket) -> bool:
    """Open (not closed) with no category: waiting for staff to choose one."""
    return t.status != "closed" and not t.category


def ticket_lines(tickets: list[Ticket], local: LocalTime) -> list[str]:
    lines = []
    for t in tickets:
        who = t.requester.email if t.requester else "-"
        lines.append(f"{t.number:<11} {t.status:<9} {local.when(t.created_at):<22}  {who:<28} {t.subject}")
    return lines


def search_hit(h: search.Hit) -> dict:
    return {"number": h.number, "department": h.department, "status": h.status, "subject": h.subject,
            "requester": h.requester, "at": _time(h.at), "where": h.where, "lines": list(h.lines)}


def search_lines(found: search.Found, local: LocalTime) -> list[str]:
    """A ticket a line, newest first, and under it the lines that matched."""
    lines = []
    for h in found.hits:
        lines.append(f"{h.number:<11} {h.status:<9} {local.when(h.at):<22}  {h.requester or '-':<28} {h.subject}")
        lines += [f"    {'' if h.where == 'message' else _SEARCH_WHERE[h.where] + ': '}{line}" for line in h.lines]
    return lines


_SEARCH_WHERE = {"subject": "subject", "response": "ANSWER", "note": "INTERNAL NOTE"}
_LABELS = {"message": "", "response": "ANSWER", "note": "INTERNAL NOTE", "event": "EVENT"}


def ticket_text(t: Ticket, local: LocalTime, full: bool = False) -> str:
    """The conversation for a terminal: who, when (in the company's zone), what; answers,
    notes and events marked. ``full`` shows each message as received, quoted history and all."""
    who = (f"{t.requester.name} <{t.requester.email}>" if t.requester.name else f"<{t.requester.email}>") \
        if t.requester else "-"
    profile = ", ".join(x for x in (t.requester.phone and f"phone {t.requester.phone}",
                                    t.requester.office and f"office {t.requester.office}",
                                    t.requester.company) if x) if t.requester else ""
    if profile:
        who += f" ({profile})"
    lines = [
        f"{t.number}  {t.subject}",
        f"  status {t.status}, department {t.department}, source {t.source}"
        + (f" (filed by {t.filed_by})" if t.filed_by else "") + f", priority {t.priority}",
        f"  requester {who}; assignee {t.assignee or '-'}; category "
        + (t.category or ("- (triage: staff choose one with #категория)" if triage(t) else "-")),
        f"  opened {local.when(t.created_at)}" + (f", closed {local.when(t.closed_at)}" if t.closed_at else ""),
    ]
    if t.respond_by or t.resolve_by:
        lines.append("  " + "; ".join(part for part in (
            t.respond_by and (f"respond by {local.when(t.respond_by)}" + (
                f" (responded {local.when(t.responded_at)})" if t.responded_at else "")),
            t.resolve_by and (f"resolve by {local.when(t.resolve_by)}" + (
                f" (clock stopped, {t.paused_minutes} working min left)" if t.paused_minutes is not None else "")),
            t.escalated and f"escalated to {'the lead' if t.escalated > 1 else 'the assignee'}") if part))
    if t.participants:
        lines.append("  copied " + ", ".join(p.person.email for p in t.participants))
    for link in t.links:
        lines.append(f"  linked {link.linked.number}: {link.reason}")
    lines.append("")
    for e in t.entries:
        author = e.author.email if e.author else "maild"
        label = _LABELS.get(e.type, e.type.upper())
        if e.unauthenticated:
            label = "UNAUTHENTICATED: claims to be from this address, proved nothing, sent to nobody"
        lines.append(f"--- {local.when(e.created_at)} {author}" + (f"  [{label}]" if label else ""))
        text = e.full_body if full and e.full_body else e.body
        lines.extend("  " + line for line in text.splitlines() or [""])
        for a in e.attachments:
            note = "" if a.stored else ", over the size limit: in the original message only"
            lines.append(f"  [attachment] {a.filename} ({a.content_type}, {a.size} bytes{note})")
        lines.append("")
    return "\n".join(lines)
