"""The DATA phase byte by byte, over a raw socket: maild reads DATA in chunks (not line by
line like aiosmtpd), so the end marker, dot-stuffing and limits are proven here."""
from __future__ import annotations

import socket

import pytest
from sqlalchemy import text

from maild.intake import spool


def converse(port: int, data: bytes) -> list[bytes]:
    """EHLO, MAIL, RCPT, DATA, then ``data`` as sent on the wire; returns every reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rb")

        def reply() -> bytes:
            lines = [f.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(f.readline())
            return lines[-1].rstrip()

        replies = [reply()]
        for command in (b"EHLO test\r\n", b"MAIL FROM:<ivan@torex.ru>\r\n",
                        b"RCPT TO:<osticket@torex.ru>\r\n", b"DATA\r\n"):
            sock.sendall(command)
            replies.append(reply())
        sock.sendall(data)
        replies.append(reply())
        sock.sendall(b"NOOP\r\n")           # the session goes on after DATA
        replies.append(reply())
        return replies


def stored(h) -> bytes:
    """The one message the spool holds: a file in incoming/, or, on PostgreSQL, the shared
    spool's row (intake/shared.py)."""
    paths = list(h.app.spool.incoming.iterdir())
    if h.app.config.db_url.startswith("postgresql"):
        assert paths == []
        with h.app.spool.engine.connect() as conn:
            [raw] = conn.execute(text("SELECT raw FROM spool")).scalars()
        return bytes(raw)
    [path] = paths
    return spool.read(path)[1]


HEAD = b"From: ivan@torex.ru\r\nSubject: t\r\n\r\n"


@pytest.mark.parametrize("wire,expected", [
    (HEAD + b"line\r\n.\r\n", HEAD + b"line\r\n"),
    (HEAD + b"..leading dot\r\n.\r\n", HEAD + b".leading dot\r\n"),
    (HEAD + b"end of sentence.\r\n...\r\n.\r\n", HEAD + b"end of sentence.\r\n..\r\n"),
    (HEAD + b"bare\nLF\n.\nnot the end\r\n.\r\n", HEAD + b"bare\nLF\n.\nnot the end\r\n"),
    (HEAD + b"x" * 5000 + b"\r\n.\r\n", HEAD + b"x" * 5000 + b"\r\n"),       # long line accepted
    (b".\r\n", b""),                                                          # empty message
])
def test_data_end_and_dot_stuffing(maild, wire, expected):
    replies = converse(maild.port, wire)
    assert replies[4].startswith(b"354") and replies[5].startswith(b"250 2.0.0")
    assert replies[6].startswith(b"250")
    assert stored(maild) == expected


def test_data_in_many_small_writes(maild):
    body = HEAD + b"".join(b"line %d\r\n" % i for i in range(2000))
    with socket.create_connection(("127.0.0.1", maild.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        for command in (b"HELO t\r\n", b"MAIL FROM:<a@torex.ru>\r\n", b"RCPT TO:<osticket@torex.ru>\r\n",
                        b"DATA\r\n"):
            sock.sendall(command)
            f.readline()
        wire = body + b".\r\n"
        for i in range(0, len(wire), 7):        # the end marker split across writes too
            sock.sendall(wire[i:i + 7])
        assert f.readline().startswith(b"250 2.0.0")
    assert stored(maild) == body


def test_oversize_read_to_the_end_then_552(harness_factory):
    h = harness_factory(max_message_size=10_000)
    replies = converse(h.port, HEAD + b"y" * 20_000 + b"\r\n.\r\n")
    assert replies[5] == b"552 5.3.4 Message too big for system"
    assert replies[6].startswith(b"250")      # the stream stayed in step
    assert h.app.spool.pending() == 0
