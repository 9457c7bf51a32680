"""SMTP intake: accept fast, process later.

Queues: writes into the spool's ``incoming/`` (see ``spool.py``); nothing else.
Strategy: RCPT is checked against the department addresses (``+tag`` counts) and refused
with ``550 5.1.1`` otherwise; DATA over the size limit gets ``552 5.3.4``. ``250`` is said
only after the raw bytes and the envelope are fsynced in the spool; no parsing happens here,
so intake keeps accepting while the database is down.
Failure: any unexpected error answers ``451 4.3.0`` (the sender retries), never a ``5xx``
and never a traceback on the wire; the error is logged.
Config: ``smtp.listen``, ``smtp.max_message_size``, ``smtp.data_timeout``; the department
addresses come from the rule files and follow their reloads.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from aiosmtpd.smtp import SMTP, Envelope as SmtpEnvelope, Session

from .organisation import Organisation
from .spool import Envelope, Spool

log = logging.getLogger("maild.receive")

TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"

# aiosmtpd words some refusals itself; give them enhanced status codes (RFC 3463).
_REWORDED = {
    "552 Error: Too much mail data": "552 5.3.4 Message too big for system",
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message too big for system",
}


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP with enhanced status codes on its own size refusals."""

    async def push(self, status: str) -> None:
        await super().push(_REWORDED.get(status, status))


class IntakeHandler:
    """aiosmtpd handler. ``organisation`` is a callable so rule reloads take effect."""

    def __init__(self, spool: Spool, organisation: Callable[[], Organisation],
                 on_accept: Callable[[], None] | None = None):
        self.spool = spool
        self.organisation = organisation
        self.on_accept = on_accept or (lambda: None)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not self.organisation().is_department_address(address):
            return "550 5.1.1 <%s>: no such helpdesk address here" % address.replace("\r", "").replace("\n", "")
        if address.lower() not in (a.lower() for a in envelope.rcpt_tos):
            envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        if not envelope.rcpt_tos:
            return "554 5.5.1 No valid recipients"
        record = Envelope(
            mail_from=(envelope.mail_from or "").strip().strip("<>"),
            rcpt_to=tuple(envelope.rcpt_tos),
            peer=_peer(session.peer),
            helo=session.host_name or "",
        )
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        # fsync blocks: keep it off the event loop so other sessions go on meanwhile.
        item_id = await loop.run_in_executor(None, partial(self.spool.put, record, raw))
        self.on_accept()
        return f"250 2.0.0 Ok: queued as {item_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("intake failed: %r", error, exc_info=error)
        return TEMPFAIL


def _peer(peer: object) -> str:
    if isinstance(peer, tuple) and peer:
        return f"{peer[0]}:{peer[1]}" if len(peer) > 1 else str(peer[0])
    return str(peer or "")


def smtp_factory(handler: IntakeHandler, max_size: int, hostname: str,
                 data_timeout: int = 300) -> Callable[[], IntakeSMTP]:
    """The protocol factory used by ``maild serve`` and by the test Controller alike."""
    def make() -> IntakeSMTP:
        return IntakeSMTP(handler, data_size_limit=max_size, enable_SMTPUTF8=True,
                          decode_data=False, hostname=hostname, ident="maild ESMTP",
                          timeout=data_timeout)
    return make
