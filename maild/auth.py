"""Is a mail that names a staff member in ``From`` really from them?

``From`` alone proves nothing. A staff mail counts (its answer goes to the requester, its
commands apply) only when one of the methods the admin enables (``[auth] methods``) says so:

- ``authentication-results``: the *topmost* ``Authentication-Results`` header — the one the
  company's mail server prepends — carries the authserv-id of one of ``trusted_hosts`` and
  says ``dkim=pass`` with ``header.d`` aligned with the From domain, or ``spf=pass`` with
  ``smtp.mailfrom`` aligned with it. Headers below it, and headers from other hosts, were
  written by someone else and are ignored.
- ``trusted-network``: the SMTP client connected from one of ``trusted_networks``.
- ``signed-address``: the mail went to the reply address maild handed that staff member for
  that ticket, ``osticket+OSA-000001.<hmac>@torex.ru``; the HMAC (``secret``) covers the
  ticket and the staff member's address.

Pure functions of the mail and the envelope; the secret comes from the config or, when it
is empty, from a file maild creates once in the data directory.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import authres

from .config import AuthConfig
from .parse import Mail
from .spool import Envelope

SIGNATURE_LENGTH = 16
_SIGNED_LOCAL = re.compile(r"\+([A-Za-z][A-Za-z0-9]{1,9}-\d{1,9})\.([0-9a-f]{%d})$" % SIGNATURE_LENGTH)


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    how: str          # what proved it, or why nothing did


def load_secret(config: AuthConfig, data_dir: Path) -> bytes:
    """The HMAC key: the configured one, else one made once and kept in the data dir."""
    if config.secret:
        return config.secret.encode("utf-8")
    path = Path(data_dir) / "reply-secret"
    if not path.exists():
        # Written whole under another name, then linked into place: processes starting
        # together all end up with the same, complete secret.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".reply-secret.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass   # another process was first: use theirs
        finally:
            os.unlink(tmp)
    return path.read_text().strip().encode("ascii")


def signature(secret: bytes, ticket: str, staff_email: str) -> str:
    message = f"{ticket.upper()}:{staff_email.lower()}".encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def signed_address(secret: bytes, department_address: str, ticket: str, staff_email: str) -> str:
    """The reply address handed to one staff member for one ticket."""
    local, _, domain = department_address.partition("@")
    return f"{local}+{ticket}.{signature(secret, ticket, staff_email)}@{domain}"


def signed_ticket(address: str) -> tuple[str, str] | None:
    """(ticket number, signature) from a signed reply address, if it is one."""
    found = _SIGNED_LOCAL.search(address.strip().strip("<>").rpartition("@")[0])
    return (found.group(1).upper(), found.group(2)) if found else None


def _aligned(domain: str, from_domain: str) -> bool:
    domain, from_domain = domain.lower().strip("."), from_domain.lower()
    return domain == from_domain or from_domain.endswith("." + domain) or domain.endswith("." + from_domain)


def _by_header(mail: Mail, config: AuthConfig, from_domain: str) -> AuthResult:
    values = [v for n, v in mail.headers if n == "authentication-results"]
    if not values:
        return AuthResult(False, "no Authentication-Results header")
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {values[0]}")
    except Exception:   # authres raises its own SyntaxError and friends on garbage
        return AuthResult(False, "the topmost Authentication-Results header is unreadable")
    host = str(header.authserv_id).lower()
    if host not in config.trusted_hosts:
        return AuthResult(False, f"the topmost Authentication-Results header is from {host}, not a trusted host")
    for result in header.results:
        if str(result.result).lower() != "pass":
            continue
        props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in result.properties}
        if result.method == "dkim":
            domain = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if domain and _aligned(domain, from_domain):
                return AuthResult(True, f"dkim=pass for {domain} ({host})")
        if result.method == "spf":
            domain = (props.get("smtp.mailfrom") or props.get("smtp.helo", "")).rpartition("@")[2]
            if domain and _aligned(domain, from_domain):
                return AuthResult(True, f"spf=pass for {domain} ({host})")
    return AuthResult(False, f"{host} reports no dkim or spf pass aligned with {from_domain}")


def _by_network(envelope: Envelope, config: AuthConfig) -> AuthResult:
    address = envelope.peer.rsplit(":", 1)[0].strip("[]") if envelope.peer else ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return AuthResult(False, "no client address")
    for network in config.trusted_networks:
        if ip in ipaddress.ip_network(network, strict=False):
            return AuthResult(True, f"connected from {ip}, in trusted network {network}")
    return AuthResult(False, f"{ip} is in no trusted network")


def _base(address: str) -> str:
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}{at}{domain}"


def from_trusted_network(envelope: Envelope, config: AuthConfig) -> bool:
    """Whether the SMTP client is one of the company's relays (whatever methods are on)."""
    return _by_network(envelope, config).ok


def _by_address(envelope: Envelope, secret: bytes, ticket: str | None, sender: str) -> AuthResult:
    # The address is a secret only until someone copies it (a Cc'd requester sees it):
    # the envelope sender must be the staff member too.
    if _base(envelope.mail_from) != _base(sender):
        return AuthResult(False, f"sent to a reply address, but the envelope sender "
                                 f"{envelope.mail_from or '<>'} is not {sender}")
    for rcpt in envelope.rcpt_to:
        signed = signed_ticket(rcpt)
        if signed is None:
            continue
        number, sig = signed
        if ticket is not None and number != ticket:
            return AuthResult(False, f"the reply address is signed for {number}, not {ticket}")
        if hmac.compare_digest(sig, signature(secret, number, sender)):
            return AuthResult(True, f"sent to the reply address signed for {sender} and {number}")
        return AuthResult(False, f"the reply address is not signed for {sender}")
    return AuthResult(False, "not sent to a signed reply address")


def check(mail: Mail, envelope: Envelope, sender: str, ticket: str | None, config: AuthConfig,
          secret: bytes) -> AuthResult:
    """Whether the mail is really from ``sender`` (a staff address), for ``ticket``."""
    from_domain = sender.rpartition("@")[2]
    reasons = []
    for method in config.methods:
        if method == "authentication-results":
            result = _by_header(mail, config, from_domain)
        elif method == "trusted-network":
            result = _by_network(envelope, config)
        else:
            result = _by_address(envelope, secret, ticket, sender)
        if result.ok:
            return result
        reasons.append(result.how)
    return AuthResult(False, "; ".join(reasons) or "no authentication method enabled")
