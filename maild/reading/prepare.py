"""What the parser processes do for the worker, beside its database work: read a spool
file, parse it, classify it and — should it be a new request — route it by the admin's
rules. All of it is pure (no database), so it runs in a process of its own
(``worker.parse_processes``); the result, a ``Parsed``, is pickled back.

Failure: a file that is not a spool file, mail that cannot be parsed, or a parser bug each
come back as a ``Parsed`` with ``error`` set, never as an exception: the worker quarantines
that one message with the reason, and its neighbours go on.

The rules travel as a ``PolicyParcel``: pickling the whole ``Policy`` with every batch cost
about 1.2 ms (0.45 to dump it, 0.7 to load it) — at a low load, where a batch is one
message, more than the parse. A parcel is pickled once per snapshot of the rules and
unpickled once per process and digest; a pool forked after it was made inherits it unpacked.
"""
from __future__ import annotations

import hashlib
import pickle
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


def read_and_parse_parcel(paths: list[Path], parcel: PolicyParcel,
                          store_in: tuple[BlobStore, AttachmentsConfig] | None = None) -> list[Parsed]:
    """The parser process's entry: the rules come as a parcel, unpickled once per process."""
    return read_and_parse_all(paths, parcel.unpack(), store_in)


# One process's unpacked snapshot, by digest: the newest only (a reload replaces it).
_UNPACKED: dict[str, Policy] = {}


class PolicyParcel:
    """A snapshot of the rules, pickled once; only its bytes and digest cross to a child."""

    __slots__ = ("digest", "payload", "policy")

    def __init__(self, policy: Policy):
        self.policy: Policy | None = policy
        self.payload = pickle.dumps(policy, protocol=pickle.HIGHEST_PROTOCOL)
        self.digest = hashlib.sha256(self.payload).hexdigest()
        _remember(self.digest, policy)

    def __getstate__(self) -> tuple[str, bytes]:
        return self.digest, self.payload

    def __setstate__(self, state: tuple[str, bytes]) -> None:
        self.digest, self.payload = state
        self.policy = None

    def unpack(self) -> Policy:
        """The policy, unpickled at most once in this process."""
        if self.policy is None:
            policy = _UNPACKED.get(self.digest)
            if policy is None:
                policy = pickle.loads(self.payload)
                _remember(self.digest, policy)
            self.policy = policy
        return self.policy


def _remember(digest: str, policy: Policy) -> None:
    _UNPACKED.clear()
    _UNPACKED[digest] = policy


class Parcels:
    """The worker's side: the parcel for the policy in force, made again only when a reload
    swapped it (compared by identity, so no hashing per batch)."""

    def __init__(self) -> None:
        self._parcel: PolicyParcel | None = None

    def of(self, policy: Policy) -> PolicyParcel:
        if self._parcel is None or self._parcel.policy is not policy:
            self._parcel = PolicyParcel(policy)
        return self._parcel
