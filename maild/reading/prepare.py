"""What the parser processes do for the worker, beside its database work: read a spool
file, parse it, classify it and — should it be a new request — route it by the admin's
rules. All of it is pure (no database), so it runs in a process of its own
(``worker.parse_processes``); the result, a ``Parsed``, is pickled back.

Failure: a file that is not a spool file, mail that cannot be parsed, or a parser bug each
come back as a ``Parsed`` with ``error`` set, never as an exception: the worker quarantines
that one message with the reason, and its neighbours go on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from maild.acting.blobs import BlobStore
from maild.config import AttachmentsConfig
from maild.deciding import facts, match, rules
from maild.deciding.facts import first_department
from maild.deciding.policy import Policy
from maild.intake import spool as spool_mod
from maild.reading.classify import Verdict, classify
from maild.reading.mail import Mail, ParseError
from maild.reading.parse import parse
from maild.values import Envelope


@dataclass(frozen=True)
class Parsed:
    """A spool file read, parsed, classified and — should it be a new request — routed by
    the admin's rules. All of it is pure (no database), so it runs in the parser process
    beside the database work; this value is pickled back."""
    envelope: Envelope
    size: int
    mail: Mail | None
    key: str            # the Message-ID, or the hash of the bytes for mail without one
    error: str | None = None
    verdict: Verdict | None = None
    routing: rules.Routing | None = None    # used only if the mail names no ticket


def read_and_parse(path: Path, policy: Policy, store_in: tuple[BlobStore, AttachmentsConfig] | None = None) -> Parsed:
    """With ``store_in`` (the parser process), attachments within the limits are written to
    the blob store here and their bytes dropped: only their names, types and hashes travel
    back to the worker (copying them between processes cost more than parsing)."""
    try:
        envelope, raw = spool_mod.read(path)
    except (OSError, ValueError, TypeError) as exc:
        # A file that is not a spool file (a disk error, a truncated write, a hand mistake):
        # quarantined with the reason, never a stalled queue.
        return Parsed(Envelope("", ()), 0, None, "", f"unreadable spool file: {type(exc).__name__}: {exc}")
    try:
        mail = parse(raw)
    except ParseError as exc:
        return Parsed(envelope, len(raw), None, "", str(exc))
    except Exception as exc:      # a parser bug must cost this message, not its batch
        return Parsed(envelope, len(raw), None, "", f"parser failed: {type(exc).__name__}: {exc}")
    if store_in is not None and mail.attachments:
        blobs, limits = store_in
        total = 0
        for attachment in mail.attachments:
            total += attachment.size
            if limits.keeps(attachment.size, total):
                blobs.put(attachment.sha256, attachment.data)
        mail = replace(mail, attachments=tuple(a.without_data() for a in mail.attachments))
    key = facts.message_key(mail, raw)
    org = policy.org
    department = first_department(org, envelope)
    routing = None
    # A mail that names a ticket is almost always a reply: it is not read here (the worker
    # routes it after all if it turns out to be a new request).
    names_a_ticket = bool(mail.in_reply_to or mail.references
                          or match.subject_tokens(mail.subject, {d.code for d in org.departments}))
    if department is not None and not names_a_ticket:
        sender = mail.sender.email if mail.sender else envelope.mail_from
        routing = rules.route(mail, envelope.rcpt_to, sender or "", department, org, policy.rules, policy.reader)
    return Parsed(envelope, len(raw), mail, key, verdict=classify(mail, envelope), routing=routing)


def read_and_parse_all(paths: list[Path], policy: Policy,
                       store_in: tuple[BlobStore, AttachmentsConfig] | None = None) -> list[Parsed]:
    """One batch, read with one snapshot of the rules."""
    return [read_and_parse(path, policy, store_in) for path in paths]
