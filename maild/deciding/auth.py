"""Is a mail that names a staff member in ``From`` really from them?

``From`` alone proves nothing. A staff mail counts (its answer goes to the requester, its
commands apply) only when one of the methods the admin enables (``[auth] methods``) says so:

- ``authentication-results``: the mail came from one of ``trusted_networks`` (the header is
  tied to the connection: anyone else can write any header), and its *topmost*
  ``Authentication-Results`` header — the one the company's mail server prepends — carries
  the authserv-id of one of ``trusted_hosts`` and says ``dkim=pass`` with ``header.d`` in the
  From address's organisational domain (a bare TLD or a public suffix never aligns), or
  ``spf=pass`` — which is about the envelope only, so it proves the person only when
  ``smtp.mailfrom``, the envelope's MAIL FROM and ``From`` are all the address. Headers below
  the topmost, and headers from other hosts, were written by someone else and are ignored.
- ``trusted-network``: the SMTP client connected from one of ``trusted_networks``.
- ``signed-address``: the mail went to the reply address maild handed that staff member for
  that ticket, ``osticket+OSA-000001.20423.<hmac>@torex.ru``; the HMAC (``secret``) covers the
  ticket, the staff member's address and the day it was issued, and it lives
  ``signed_address_days``. It proves which ticket and whom the mail was meant for; authority
  also needs the mail to have come the way staff mail comes: the envelope sender is the staff
  member and the client is one of ``trusted_networks`` (the company relay). A signed address
  known to someone else (a reply-all leaks it) is no authority from anywhere else: such a
  mail is kept as flagged text and the staff member is told.

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
import time
from dataclasses import dataclass
from pathlib import Path

import authres

from maild.config import AuthConfig
from maild.reading.mail import Mail
from maild.values import Envelope

SIGNATURE_LENGTH = 16
_SIGNED_LOCAL = re.compile(rf"\+([A-Za-z][A-Za-z0-9]{{1,9}}-\d{{1,9}})\.(\d{{4,6}})\.([0-9a-f]{{{SIGNATURE_LENGTH}}})$")
# Two-label public suffixes common in the company's mail: a domain directly under one of
# them is a registrable (organisational) domain, the suffix itself never is.
PUBLIC_SUFFIXES = frozenset({"com.ru", "net.ru", "org.ru", "pp.ru", "msk.ru", "spb.ru", "nov.ru", "com.ua",
                             "org.ua", "in.ua", "com.kz", "org.kz", "com.by", "co.uk", "org.uk", "com.tr",
                             "co.il", "com.cn", "co.jp", "com.au", "com.br", "github.io"})


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    how: str          # what proved it, or why nothing did (the log, the inbound record)
    said: str = ""    # the same in Russian, for the staff member's mail


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


def today() -> int:
    """Days since 1970-01-01 (UTC): the issue day written into a signed address."""
    return int(time.time() // 86400)


def signature(secret: bytes, ticket: str, staff_email: str, day: int) -> str:
    message = f"{ticket.upper()}:{staff_email.lower()}:{day}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def signed_address(secret: bytes, department_address: str, ticket: str, staff_email: str,
                   day: int | None = None) -> str:
    """The reply address handed to one staff member for one ticket, issued ``day``."""
    day = today() if day is None else day
    local, _, domain = department_address.partition("@")
    return f"{local}+{ticket}.{day}.{signature(secret, ticket, staff_email, day)}@{domain}"


def signed_ticket(address: str) -> tuple[str, int, str] | None:
    """(ticket number, issue day, signature) from a signed reply address, if it is one."""
    found = _SIGNED_LOCAL.search(address.strip().strip("<>").rpartition("@")[0])
    return (found.group(1).upper(), int(found.group(2)), found.group(3)) if found else None


def organisational_domain(domain: str) -> str | None:
    """The registrable domain a name belongs to (DMARC's organisational domain, from a short
    list of public suffixes instead of the whole Public Suffix List): ``mx.torex.ru`` ->
    ``torex.ru``; ``ru`` and ``com.ru`` -> None."""
    labels = [x for x in domain.lower().strip(".").split(".") if x]
    if len(labels) < 2:
        return None
    if ".".join(labels[-2:]) in PUBLIC_SUFFIXES:
        return ".".join(labels[-3:]) if len(labels) >= 3 else None
    return ".".join(labels[-2:])


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same organisational domain (and never a bare suffix)."""
    org = organisational_domain(domain)
    return org is not None and org == organisational_domain(from_domain)


def _by_header(mail: Mail, envelope: Envelope, config: AuthConfig, sender: str) -> AuthResult:
    if not _by_network(envelope, config).ok:
        return AuthResult(False, f"Authentication-Results are believed only from the company relay "
                                 f"(auth.trusted_networks), not from {envelope.peer or 'an unknown client'}",
                          f"письмо пришло не через почтовый сервер компании, а от "
                          f"{envelope.peer or 'неизвестного клиента'}")
    from_domain = sender.rpartition("@")[2]
    values = [v for n, v in mail.headers if n == "authentication-results"]
    if not values:
        return AuthResult(False, "no Authentication-Results header",
                          "почтовый сервер компании не отметил письмо как проверенное")
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {values[0]}")
    except Exception:   # authres raises its own SyntaxError and friends on garbage
        return AuthResult(False, "the topmost Authentication-Results header is unreadable",
                          "отметка почтового сервера о проверке не читается")
    host = str(header.authserv_id).lower()
    if host not in config.trusted_hosts:
        return AuthResult(False, f"the topmost Authentication-Results header is from {host}, not a trusted host",
                          f"отметку о проверке поставил {host}, а не почтовый сервер компании")
    for result in header.results:
        if str(result.result).lower() != "pass":
            continue
        props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in result.properties}
        if result.method == "dkim":
            domain = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if domain and _aligned(domain, from_domain):
                return AuthResult(True, f"dkim=pass for {domain} ({host})", f"подпись DKIM {domain} верна")
        if result.method == "spf":
            # SPF vouches for the envelope sender's domain: it names the person only when the
            # checked address, the envelope and From are all that person.
            checked = props.get("smtp.mailfrom", "")
            if "@" in checked and _base(checked) == _base(envelope.mail_from) == _base(sender):
                return AuthResult(True, f"spf=pass for {checked}, the envelope sender and From ({host})",
                                  f"SPF подтверждает отправителя {checked}")
    return AuthResult(False, f"{host} reports no dkim pass aligned with {from_domain}, nor an spf pass "
                             f"for {sender} as envelope sender and From",
                      f"почтовый сервер не подтвердил, что письмо отправлено с адреса {sender}")


def _by_network(envelope: Envelope, config: AuthConfig) -> AuthResult:
    address = envelope.peer.rsplit(":", 1)[0].strip("[]") if envelope.peer else ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return AuthResult(False, "no client address", "неизвестно, откуда пришло письмо")
    for network in config.trusted_networks:
        if ip in ipaddress.ip_network(network, strict=False):
            return AuthResult(True, f"connected from {ip}, in trusted network {network}",
                              f"письмо пришло из доверенной сети {network}")
    return AuthResult(False, f"{ip} is in no trusted network", f"адрес {ip} не входит в доверенные сети")


def _base(address: str) -> str:
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}{at}{domain}"


def from_trusted_network(envelope: Envelope, config: AuthConfig) -> bool:
    """Whether the SMTP client is one of the company's relays (whatever methods are on)."""
    return _by_network(envelope, config).ok


def _by_address(envelope: Envelope, config: AuthConfig, secret: bytes, ticket: str | tuple[str, ...] | None,
                sender: str, mailbox_only: bool) -> AuthResult:
    # The address is a secret only until someone copies it (a Cc'd requester sees it, any
    # SMTP client can set MAIL FROM): the envelope sender must be the staff member, and the
    # mail must come through the company relay.
    if _base(envelope.mail_from) != _base(sender):
        return AuthResult(False, f"sent to a reply address, but the envelope sender "
                                 f"{envelope.mail_from or '<>'} is not {sender}",
                          f"отправитель в конверте ({envelope.mail_from or '<>'}) — не {sender}")
    for rcpt in envelope.rcpt_to:
        signed = signed_ticket(rcpt)
        if signed is None:
            continue
        number, day, sig = signed
        allowed = (ticket,) if isinstance(ticket, str) else ticket
        if allowed is not None and number not in allowed:
            return AuthResult(False, f"the reply address is signed for {number}, not {allowed[0]}",
                              f"адрес для ответа выдан для заявки {number}, а не {allowed[0]}")
        if not hmac.compare_digest(sig, signature(secret, number, sender, day)):
            return AuthResult(False, f"the reply address is not signed for {sender}",
                              f"адрес для ответа выдан не для {sender}")
        if not 0 <= today() - day <= config.signed_address_days:
            return AuthResult(False, f"the reply address for {number} was issued {today() - day} days ago "
                                     f"(a reply address lives {config.signed_address_days} days)",
                              f"адрес для ответа по заявке {number} устарел (выдан {today() - day} дн. назад, "
                              f"действует {config.signed_address_days})")
        if not mailbox_only and not _by_network(envelope, config).ok:
            return AuthResult(False, f"sent to the reply address signed for {sender} and {number}, but not "
                                     "through the company relay (auth.trusted_networks): the address alone "
                                     "is no authority",
                              "письмо на адрес для ответа пришло не через почтовый сервер компании")
        return AuthResult(True, f"sent to the reply address signed for {sender} and {number}",
                          f"письмо на адрес для ответа, выданный {sender}")
    return AuthResult(False, "not sent to a signed reply address", "письмо не на выданный вам адрес для ответа")


def check(mail: Mail, envelope: Envelope, sender: str, ticket: str | tuple[str, ...] | None, config: AuthConfig,
          secret: bytes, mailbox_only: bool = False) -> AuthResult:
    """Whether the mail is really from ``sender``, for ``ticket`` (or any of these numbers:
    a ticket and the ones merged into it, whose reply addresses still reach it). ``mailbox_only``: the
    question is only whether the person reads that mailbox (a reply to a confirmation mail
    we sent there), not whether the mail carries a staff member's authority."""
    reasons, said = [], []
    for method in config.methods:
        if method == "authentication-results":
            result = _by_header(mail, envelope, config, sender)
        elif method == "trusted-network":
            result = _by_network(envelope, config)
        else:
            result = _by_address(envelope, config, secret, ticket, sender, mailbox_only)
        if result.ok:
            return result
        reasons.append(result.how)
        said.append(result.said)
    return AuthResult(False, "; ".join(reasons) or "no authentication method enabled",
                      "; ".join(x for x in said if x) or "проверка отправителя не включена")
