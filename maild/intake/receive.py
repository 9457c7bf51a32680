"""SMTP intake: accept fast, process later.

Queues: writes into the spool's ``incoming/`` (see ``spool.py``); nothing else.
Strategy: RCPT is checked against the department addresses (``+tag`` counts) and refused
with ``550 5.1.1`` otherwise; DATA over the size limit gets ``552 5.3.4``. ``250`` is said
only after the raw bytes and the envelope are fsynced in the spool; no parsing happens here,
so intake keeps accepting while the database is down.
Failure: any unexpected error answers ``451 4.3.0`` (the sender retries), never a ``5xx``
and never a traceback on the wire; the error is logged.
Limits (each refusal a status a client understands): sessions at once in all and from one
address (``421 4.7.0``, then the connection is closed), recipients per message
(``452 4.5.3``), command line length (``500 5.5.2``, aiosmtpd's 512 bytes), idle time
between commands and stalls inside DATA (``421 4.4.2``, then closed).
Security: intake trusts nothing in the mail and decides nothing about it; the only things it
checks are the envelope (a recipient must be a department address, a sender address must
be well formed: ``553``) and the size. Who the client is (``peer``) is recorded with the
envelope for the trust model (``auth.trusted_networks``), never believed from the mail.
Config: ``[smtp]`` listen, max_message_size, data_timeout, command_timeout, max_recipients,
session_lifetime, min_data_rate, min_rate_after,
max_connections_per_client, max_sessions; the department addresses come from the rule
files and follow their reloads.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import AnyStr

from aiosmtpd.smtp import MISSING, SMTP, Envelope as SmtpEnvelope, Session, syntax

from maild.config import SmtpConfig
from maild.deciding.organisation import Organisation
from maild.intake.spool import Spool
from maild.values import Envelope

log = logging.getLogger("maild.receive")

TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"

# aiosmtpd words some refusals itself; give them enhanced status codes (RFC 3463).
_REWORDED = {
    "552 Error: Too much mail data": "552 5.3.4 Message too big for system",
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message too big for system",
    "500 Command line too long": "500 5.5.2 Command line too long",
    "500 Error: bad syntax": "500 5.5.2 Error: bad syntax",
}
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections, try again later"
TOO_MANY_FROM_YOU = "421 4.7.0 Too many connections from your address, try again later"
TIMEOUT = "421 4.4.2 Timeout, closing connection"


def _storable_address(address: str) -> bool:
    """Text a database, a terminal and a header can carry: no surrogates, no controls."""
    return all(" " < c != "\x7f" and not 0xD800 <= ord(c) <= 0xDFFF and not 0x80 <= ord(c) <= 0x9f
               for c in address)


@dataclass
class Sessions:
    """Who is connected now (one per listener): the session limits count here."""
    limits: SmtpConfig
    total: int = 0
    per_client: Counter = field(default_factory=Counter)

    def admit(self, client: str) -> str | None:
        """None to admit (and count) the session, else the refusal to say."""
        if self.total >= self.limits.max_sessions:
            return TOO_MANY_SESSIONS
        if self.per_client[client] >= self.limits.max_connections_per_client:
            return TOO_MANY_FROM_YOU
        self.total += 1
        self.per_client[client] += 1
        return None

    def leave(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP with enhanced status codes on its own size refusals, and a DATA
    reader that takes the message in buffer-sized chunks instead of line by line.

    aiosmtpd reads DATA one line at a time (a Python loop per 76-byte base64 line); that
    loop was most of the listener's CPU. Here the stream is read up to each ``.<CRLF>`` (or
    whatever is buffered), the end is ``<CRLF>.<CRLF>``, and dot-stuffing is undone on the
    whole message at once. Differences: lines longer than 1000 bytes are accepted rather
    than refused (be liberal in what you accept), and the size limit counts the bytes as
    sent, before dot-unstuffing. Relies on aiosmtpd 1.4's hooks (pinned in setup.cfg).
    """
    # aiosmtpd types these as optional; both are set before any method below runs (the
    # transport once connected, the envelope at the greeting and after each RSET).
    transport: asyncio.Transport
    envelope: SmtpEnvelope

    def __init__(self, *args, sessions: Sessions, **kwargs):
        super().__init__(*args, **kwargs)
        self.sessions = sessions
        self.max_recipients = sessions.limits.max_recipients
        self._client: str | None = None       # counted in sessions
        self._refusal: str | None = None
        self._in_data = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._born = time.monotonic()
        self._data_since, self._data_bytes = 0.0, 0
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        self._refusal = self.sessions.admit(client)
        if self._refusal is None:
            self._client = client

    def connection_lost(self, error) -> None:
        if self._client is not None:
            self.sessions.leave(self._client)
            self._client = None
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal is not None:       # RFC 5321 4.3.1: 421 in place of the greeting
            await self.push(self._refusal)
            self.transport.close()
            return
        await super()._handle_client()

    def data_received(self, data: bytes) -> None:
        limits, now = self.sessions.limits, time.monotonic()
        if self._in_data:       # DATA times out when it stalls, not when it is long ...
            self._reset_timeout(limits.data_timeout)
            self._data_bytes += len(data)
            took = now - self._data_since
            # ... but it must move: a byte every few seconds would hold a session for ever.
            if took > limits.min_rate_after and self._data_bytes < limits.min_data_rate * took:
                return self._drop(f"DATA at {self._data_bytes / took:.0f} bytes/s")
        if now - self._born > limits.session_lifetime:
            return self._drop(f"session older than {limits.session_lifetime} s")
        super().data_received(data)

    def _drop(self, why: str) -> None:
        log.info("dropping %s: %s", self._client or "a client", why)
        try:
            self.transport.write(TIMEOUT.encode("ascii") + b"\r\n")
        finally:
            self.transport.close()

    def _timeout_cb(self):
        with contextlib.suppress(Exception):       # the connection may be half gone already
            self._writer.write(TIMEOUT.encode("ascii") + b"\r\n")
        super()._timeout_cb()

    async def push(self, status: AnyStr) -> None:      # aiosmtpd's signature; it pushes str
        await super().push(_REWORDED.get(status, status) if isinstance(status, str) else status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self._in_data = True
        self._data_since, self._data_bytes = time.monotonic(), 0
        self._reset_timeout(self.sessions.limits.data_timeout)
        try:
            content = await self._read_data()
        except asyncio.CancelledError:
            self._writer.close()        # the connection went away during DATA
            raise
        except asyncio.IncompleteReadError:
            self._writer.close()
            return
        finally:
            self._in_data = False
        if content is None:
            self._set_post_data_state()
            await self.push("552 5.3.4 Message too big for system")
            return
        self._reset_timeout()       # back to the command timeout
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> bytes | None:
        """The message up to <CRLF>.<CRLF>, unstuffed; None if it was over the size limit
        (then read to its end and dropped, so the session can go on)."""
        reader, limit = self._reader, self.data_size_limit
        buf = bytearray()
        too_big = False
        while True:
            try:
                buf += await reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as exc:
                buf += await reader.readexactly(exc.consumed)
                continue
            finally:
                if limit and len(buf) > limit + 3:
                    too_big = True
                    del buf[:-5]        # keep enough to recognise the end: <CRLF>.<CRLF>
            if buf.endswith(b"\r\n.\r\n") or (buf == b".\r\n" and not too_big):
                break
        if too_big:
            return None
        body = bytes(buf[:-3])
        if body.startswith(b"."):
            body = body[1:]
        return body.replace(b"\r\n.", b"\r\n")


class GroupCommit:
    """Messages whose DATA ends while a spool write is under way are written together by
    the next one: one thread hand-off and one directory fsync for the group, instead of
    one each per message. Every message still has its own file, fsynced before its 250."""

    def __init__(self, spool: Spool):
        self.spool = spool
        self.waiting: list[tuple[Envelope, bytes, asyncio.Future]] = []
        self.writing = False

    async def put(self, envelope: Envelope, raw: bytes) -> str:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((envelope, raw, future))
        if not self.writing:
            self.writing = True
            asyncio.get_running_loop().create_task(self._write())
        return await future

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                group, self.waiting = self.waiting, []
                try:
                    ids = await loop.run_in_executor(
                        None, self.spool.put_many, [(e, r) for e, r, _ in group])
                except Exception as exc:     # every message of the group gets the 451
                    for _, _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), item_id in zip(group, ids, strict=True):
                    if not future.done():
                        future.set_result(item_id)
        finally:
            self.writing = False


class IntakeHandler:
    """aiosmtpd handler. ``organisation`` is a callable so rule reloads take effect."""

    def __init__(self, spool: Spool, organisation: Callable[[], Organisation],
                 on_accept: Callable[[], None] | None = None):
        self.spool = spool
        self.writer = GroupCommit(spool)
        self.organisation = organisation
        self.on_accept = on_accept or (lambda: None)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: SmtpEnvelope, hostname: str,
                          responses: list[str]) -> list[str]:
        """aiosmtpd's EHLO lines, plus what maild does without saying: it answers pipelined
        commands in order (RFC 2920, tests/test_smtp_limits.py) and every reply carries an
        enhanced status code (RFC 2034). Senders that see PIPELINING stop waiting for each
        reply in turn."""
        session.host_name = hostname        # this hook's job, once it exists (aiosmtpd)
        return responses[:-1] + ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"] + responses[-1:]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, mail_options: list[str]) -> str:
        # An address maild could never store, print or answer (raw non-UTF-8 bytes arrive as
        # lone surrogates; NUL and other controls) is refused now, not accepted and stuck.
        if not _storable_address(address):
            return "553 5.1.7 The sender address is not a valid mail address"
        # Outside senders open no ticket: say so now, when the envelope already shows it.
        # The null sender (bounces) is always accepted.
        if address and address != "<>" and not self.organisation().is_corporate(address):
            return ("550 5.7.1 Заявки принимаются только с корпоративных адресов / "
                    "Only corporate addresses may write to the helpdesk")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not _storable_address(address):
            return "553 5.1.3 The recipient address is not a valid mail address"
        if not self.organisation().is_department_address(address):
            shown = address.replace("\r", "").replace("\n", "")
            return f"550 5.1.1 <{shown}>: no such helpdesk address here"
        if len(envelope.rcpt_tos) >= getattr(server, "max_recipients", 100):
            return "452 4.5.3 Too many recipients"
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
        # fsync blocks: the writer keeps it off the event loop, so other sessions go on.
        item_id = await self.writer.put(record, envelope.original_content or b"")
        self.on_accept()
        return f"250 2.0.0 Ok: queued as {item_id}"

    async def handle_exception(self, error: Exception) -> str:
        # One line with the cause, for every message a full disk refuses; the traceback
        # only with -v (a burst would otherwise bury the log in identical stacks).
        if isinstance(error, OSError):
            log.error("intake answered 451, the spool cannot be written: %s", error)
            log.debug("spool write failed", exc_info=error)
        else:
            log.error("intake failed: %r", error, exc_info=error)
        return TEMPFAIL


def _peer(peer: object) -> str:
    if isinstance(peer, tuple) and peer:
        return f"{peer[0]}:{peer[1]}" if len(peer) > 1 else str(peer[0])
    return str(peer or "")


def smtp_factory(handler: IntakeHandler, limits: SmtpConfig, hostname: str) -> Callable[[], IntakeSMTP]:
    """The protocol factory used by ``maild serve`` and by the test Controller alike (one
    ``Sessions`` count for all the connections it makes)."""
    sessions = Sessions(limits)

    def make() -> IntakeSMTP:
        return IntakeSMTP(handler, data_size_limit=limits.max_message_size, enable_SMTPUTF8=True,
                          decode_data=False, hostname=hostname, ident="maild ESMTP",
                          timeout=limits.command_timeout, sessions=sessions)
    return make
