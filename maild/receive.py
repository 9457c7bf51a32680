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

from aiosmtpd.smtp import MISSING, SMTP, Envelope as SmtpEnvelope, Session, syntax

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
    """aiosmtpd's SMTP with enhanced status codes on its own size refusals, and a DATA
    reader that takes the message in buffer-sized chunks instead of line by line.

    aiosmtpd reads DATA one line at a time (a Python loop per 76-byte base64 line); that
    loop was most of the listener's CPU. Here the stream is read up to each ``.<CRLF>`` (or
    whatever is buffered), the end is ``<CRLF>.<CRLF>``, and dot-stuffing is undone on the
    whole message at once. Differences: lines longer than 1000 bytes are accepted rather
    than refused (be liberal in what you accept), and the size limit counts the bytes as
    sent, before dot-unstuffing. Relies on aiosmtpd 1.4's hooks (pinned in setup.cfg).
    """

    async def push(self, status: str) -> None:
        await super().push(_REWORDED.get(status, status))

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
        try:
            content = await self._read_data()
        except asyncio.CancelledError:
            self._writer.close()        # the connection went away during DATA
            raise
        except asyncio.IncompleteReadError:
            self._writer.close()
            return
        if content is None:
            self._set_post_data_state()
            await self.push("552 5.3.4 Message too big for system")
            return
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
                for (_, _, future), item_id in zip(group, ids):
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

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, mail_options: list[str]) -> str:
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
        # fsync blocks: the writer keeps it off the event loop, so other sessions go on.
        item_id = await self.writer.put(record, envelope.original_content or b"")
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
