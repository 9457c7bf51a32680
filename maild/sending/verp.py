"""Return paths that say which mail bounced (VERP).

Every mail we send leaves with the envelope sender
``osticket+bounce.<message-id local part>.<hmac10>@torex.ru``: a bounce comes back to that
address, names the exact outbox row (its Message-ID), and the HMAC keeps anyone from
failing our mail with forged bounces. The address is a department address with a +tag, so
intake accepts it like any other. ``report_status`` reads what a delivery report says.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

SIGNATURE_LENGTH = 10
_TOKEN = re.compile(rf"\+bounce\.([0-9a-f]{{1,40}}\.[0-9a-f]{{1,40}})\.([0-9a-f]{{{SIGNATURE_LENGTH}}})$")
_STATUS = re.compile(r"^\s*status:\s*([245]\.\d{1,3}\.\d{1,3})", re.I | re.M)
_ACTION = re.compile(r"^\s*action:\s*(\w+)", re.I | re.M)
_DIAGNOSTIC = re.compile(r"^\s*diagnostic-code:\s*(?:\w+;\s*)?(.+)$", re.I | re.M)
_ENHANCED = re.compile(r"\b([45]\.\d{1,3}\.\d{1,3})\b")


def _sign(secret: bytes, token: str) -> str:
    return hmac.new(secret, f"bounce:{token}".encode(), hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def return_path(secret: bytes, sender: str, message_id: str) -> str:
    """The envelope sender for the mail with this Message-ID, sent from ``sender``."""
    local, _, domain = sender.partition("@")
    token = message_id.partition("@")[0]
    if not _TOKEN.search(f"+bounce.{token}.{'0' * SIGNATURE_LENGTH}"):
        return sender           # not one of our Message-IDs: no VERP
    return f"{local.split('+', 1)[0]}+bounce.{token}.{_sign(secret, token)}@{domain}"


def bounced(secret: bytes, recipients: tuple[str, ...], hostname: str) -> str | None:
    """The Message-ID of our mail that a message to these recipients reports on, if the
    return path is one we made."""
    for address in recipients:
        local = address.strip().strip("<>").rpartition("@")[0].lower()
        found = _TOKEN.search(local)
        if found and hmac.compare_digest(found.group(2), _sign(secret, found.group(1))):
            return f"{found.group(1)}@{hostname}"
    return None


@dataclass(frozen=True)
class ReportStatus:
    status: str       # 5.1.1, 4.2.2, ... or ""
    delayed: bool     # a warning: the mail is still trying
    text: str         # a line to show people
    delivered: bool = False     # a success report (delivered, relayed, expanded): nothing failed


def report_status(report: str, text: str, subject: str) -> ReportStatus:
    """What a delivery report says: from its delivery-status part, else its prose."""
    found_action = _ACTION.search(report)
    action = found_action.group(1).lower() if found_action else ""
    status = _STATUS.search(report)
    code = status.group(1) if status else ""
    if not code:
        found = _ENHANCED.search(text[:4000])
        code = found.group(1) if found else ""
    delivered = action in ("delivered", "relayed", "expanded") or code.startswith("2.")
    delayed = not delivered and (action == "delayed" or (
        not action and (code.startswith("4.") or re.search(r"\b(delay|warning|задерж)", subject, re.I) is not None)))
    diagnostic = _DIAGNOSTIC.search(report)
    line = diagnostic.group(1).strip() if diagnostic else next(
        (ln.strip() for ln in text.splitlines() if code and code in ln), "")
    return ReportStatus(code, delayed, line[:300], delivered)
