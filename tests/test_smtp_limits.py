"""Abuse limits of the SMTP intake, over real sockets: each refusal a status code a client
understands, and nothing half-accepted."""
from __future__ import annotations

import contextlib
import smtplib
import socket
import time

import pytest

from conftest import mail


def talk(port: int) -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s, s.recv(1000)


def say(s: socket.socket, line: bytes) -> bytes:
    """Send a command; the whole reply (multi-line replies end with "NNN " on a line)."""
    s.sendall(line + b"\r\n")
    reply = b""
    while True:
        reply += s.recv(1000)
        last = reply.rstrip(b"\r\n").split(b"\r\n")[-1]
        if reply.endswith(b"\r\n") and (len(last) < 4 or last[3:4] == b" "):
            return last if last[3:4] == b" " else reply


def test_too_many_recipients(harness_factory):
    h = harness_factory(max_recipients=2)
    with smtplib.SMTP("127.0.0.1", h.port) as client:
        client.ehlo()
        client.mail("ivan@torex.ru")
        assert client.rcpt("osticket@torex.ru")[0] == 250
        assert client.rcpt("osticket+printer@torex.ru")[0] == 250
        code, text = client.rcpt("osticket-1c@torex.ru")
    assert (code, text[:5]) == (452, b"4.5.3")


def test_connections_per_client_and_in_all(harness_factory):
    h = harness_factory(max_connections_per_client=2, max_sessions=50)
    first, second = talk(h.port), talk(h.port)
    assert first[1].startswith(b"220") and second[1].startswith(b"220")
    third, greeting = talk(h.port)
    assert greeting.startswith(b"421 4.7.0") and b"your address" in greeting
    assert third.recv(100) == b""                                # and closed
    first[0].close()
    time.sleep(0.2)
    again, greeting = talk(h.port)
    assert greeting.startswith(b"220")                           # a place is free again
    for s in (second[0], again, third):
        s.close()


def test_sessions_in_all(harness_factory):
    h = harness_factory(max_connections_per_client=50, max_sessions=2)
    held = [talk(h.port)[0] for _ in range(2)]
    s, greeting = talk(h.port)
    assert greeting.startswith(b"421 4.7.0 Too many connections")
    for c in held + [s]:
        c.close()


def test_an_idle_client_is_told_and_dropped(harness_factory):
    h = harness_factory(command_timeout=1)
    s, greeting = talk(h.port)
    assert greeting.startswith(b"220")
    time.sleep(1.5)
    assert s.recv(1000).startswith(b"421 4.4.2")
    assert s.recv(100) == b""
    s.close()


def test_a_stalled_data_is_dropped_and_nothing_is_kept(harness_factory):
    h = harness_factory(data_timeout=1, command_timeout=30)
    s, _ = talk(h.port)
    say(s, b"EHLO test")
    say(s, b"MAIL FROM:<ivan@torex.ru>")
    say(s, b"RCPT TO:<osticket@torex.ru>")
    assert say(s, b"DATA").startswith(b"354")
    s.sendall(mail().split(b"\n\n", 1)[0])           # headers, then nothing
    time.sleep(1.5)
    assert s.recv(1000).startswith(b"421 4.4.2")
    s.close()
    assert h.app.spool.pending() == 0 and h.drain().processed == 0


def test_a_slow_but_moving_data_is_fine(harness_factory):
    h = harness_factory(data_timeout=1, command_timeout=30)
    s, _ = talk(h.port)
    for line in (b"EHLO test", b"MAIL FROM:<ivan@torex.ru>", b"RCPT TO:<osticket@torex.ru>", b"DATA"):
        say(s, line)
    raw = mail().replace(b"\n", b"\r\n")
    for i in range(0, len(raw), len(raw) // 4 + 1):    # 4 pieces over ~2.4 s, each stall < 1 s
        s.sendall(raw[i:i + len(raw) // 4 + 1])
        time.sleep(0.6)
    s.sendall(b"\r\n.\r\n")
    assert s.recv(1000).startswith(b"250")
    s.close()
    assert h.drain().created == 1


def test_a_command_line_too_long(harness_factory):
    h = harness_factory()
    s, _ = talk(h.port)
    assert say(s, b"NOOP " + b"x" * 600).startswith(b"500 5.5.2")
    assert say(s, b"NOOP").startswith(b"250")                     # the session goes on
    s.close()


@pytest.mark.parametrize("key", ["max_recipients", "max_sessions", "command_timeout"])
def test_limits_are_in_the_example_config(key):
    from conftest import PROJECT
    assert f"\n{key} = " in (PROJECT / "maild.toml.example").read_text()


def test_a_client_trickling_data_is_dropped_and_nothing_is_kept(harness_factory):
    """A byte every 0.3 s never stalls long enough for data_timeout, but is no mail."""
    h = harness_factory(data_timeout=5, min_data_rate=1000, min_rate_after=1)
    s, _ = talk(h.port)
    for line in (b"EHLO test", b"MAIL FROM:<ivan@torex.ru>", b"RCPT TO:<osticket@torex.ru>", b"DATA"):
        say(s, line)
    got = b""
    started = time.monotonic()
    try:
        for byte in mail()[:40]:
            s.sendall(bytes([byte]))
            time.sleep(0.3)
            s.settimeout(0.01)
            with contextlib.suppress(TimeoutError, BlockingIOError):
                got += s.recv(1000)
            if got:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert got.startswith(b"421 4.4.2"), got
    assert time.monotonic() - started < 6
    s.close()
    assert h.app.spool.pending() == 0 and h.drain().processed == 0


def test_a_session_has_a_lifetime(harness_factory):
    h = harness_factory(session_lifetime=1, command_timeout=30)
    s, _ = talk(h.port)
    assert say(s, b"EHLO test").startswith(b"250")
    time.sleep(1.5)
    s.sendall(b"NOOP\r\n")
    assert s.recv(1000).startswith(b"421 4.4.2")
    s.close()


def _replies(f, n: int) -> list[bytes]:
    """``n`` replies, each the last line of a possibly multi-line answer."""
    out = []
    for _ in range(n):
        line = f.readline()
        while line[3:4] == b"-":
            line = f.readline()
        out.append(line.rstrip())
    return out


def test_ehlo_advertises_pipelining_and_enhanced_status_codes(maild):
    with socket.create_connection(("127.0.0.1", maild.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"EHLO client.torex.ru\r\n")
        lines = [f.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(f.readline())
    words = {line[4:].split()[0].decode() for line in lines[1:]}
    assert {"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "SIZE"} <= words, words
    assert lines[-1].startswith(b"250 ")           # the last line ends the answer


def test_pipelined_commands_are_answered_in_order(maild):
    """A sender that believed PIPELINING: the whole envelope and DATA in one write, then
    the message; each command gets its own reply, in order, and the mail is kept."""
    with socket.create_connection(("127.0.0.1", maild.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"EHLO client.torex.ru\r\n")
        _replies(f, 1)
        sock.sendall(b"MAIL FROM:<ivan@torex.ru>\r\nRCPT TO:<nobody@torex.ru>\r\n"
                     b"RCPT TO:<osticket@torex.ru>\r\nDATA\r\n")
        got = _replies(f, 4)
        sock.sendall(mail().replace(b"\n", b"\r\n") + b"\r\n.\r\nQUIT\r\n")
        got += _replies(f, 2)
    assert [r[:3] for r in got] == [b"250", b"550", b"250", b"354", b"250", b"221"], got
    assert got[1].startswith(b"550 5.1.1")
    assert maild.app.spool.pending() == 1
