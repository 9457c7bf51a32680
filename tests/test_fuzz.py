"""Hostile input (issue 7): corpus messages mutated by hypothesis go through what the
parser process runs on every message, and nothing escapes, hangs or eats memory.

The property, for every mutated message:

* ``reading.prepare.read_and_parse`` (spool read -> ``parse`` -> ``classify`` -> ``rules.route``,
  attachments written to a blob store, as in ``maild serve``'s parser process) returns,
  either a parsed mail or the designed refusal ``ParseError`` (the message is then
  quarantined with the reason). ``read_and_parse`` turns any *other* exception into
  "parser failed: ..." so that one bad message cannot take its batch down; here that is
  a failure, re-raised from ``parse`` itself so the traceback shows where;
* the pure text steps the worker then runs (``quotes.reply_text``, ``commands``,
  ``selfservice``, ``verp.report_status``, ``auth.check``) do not raise either;
* no hang: hypothesis's ``deadline`` (EXAMPLE_SECONDS per message: the slowest shapes
  found that are not known bugs, the 1.8 MB torture test nested 200 levels deep or with
  doubled line endings, take 3-4 s on the 2-core CI machine), and a hard SIGALRM stop so
  a real endless loop fails the test instead of stalling CI;
* bounded memory: the peak resident set during the example, above what it was before,
  stays under ``memory_bound(len(raw))`` (see there for why that number). Measured with
  Linux's resettable high-water mark: cheap, but after a big example the allocator may
  keep freed memory that the next one reuses unseen, so this errs low, never high (no
  false alarms); the tests of one shape at a time use tracemalloc where exactness counts.

Mutations (one to three, applied in order to a corpus file picked by hypothesis):
truncation, broken MIME boundaries, random bytes (NUL, bare CR, 8-bit) in the header
block, giant headers, deep multipart/message nesting, changed line endings, byte flips.
Runs are reproducible (``derandomize``, no example database): CI sees the same examples
every time. The extreme shapes are also tested one by one below, so they are covered
whatever hypothesis happens to draw.

What it found, fixed in parse.py and kept as tests at the end: memory and time that grew
with message/rfc822 nesting depth x size, and headers that took quadratic time (RFC 2047
encoded words; RFC 2231 parameters, a stdlib bug, now refused above 64 KB).
"""
from __future__ import annotations

import base64
import contextlib
import functools
import random
import re
import shutil
import signal
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from maild.acting.blobs import BlobStore
from maild.config import AttachmentsConfig, AuthConfig
from maild.deciding import auth, commands, selfservice
from maild.deciding.policy import Policy, load_policy
from maild.intake.spool import Spool
from maild.reading import quotes
from maild.reading.parse import parse
from maild.reading.prepare import read_and_parse
from maild.sending import verp
from maild.values import Envelope

from conftest import CORPUS, PROJECT, require_corpus

MiB = 1024 * 1024
EXAMPLE_SECONDS = 10.0     # hypothesis deadline for one message (the "no hang" property)
HARD_STOP_SECONDS = 60     # SIGALRM: an endless loop fails instead of hanging the run
MAX_EXAMPLES = 200         # about 12 s on the 2-core CI machine (the whole file: about 26 s)

CORPUS_FILES = (tuple(sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*.eml")))
                if CORPUS.is_dir() else ())

ENVELOPES = (
    Envelope(mail_from="ivan@torex.ru", rcpt_to=("osticket@torex.ru",), peer="fuzz"),
    Envelope(mail_from="", rcpt_to=("osticket-1c@torex.ru",), peer="fuzz"),     # a bounce
    Envelope(mail_from="someone@example.com", rcpt_to=("osticket+printer@torex.ru", "x@example.com"),
             peer="fuzz"),
)


def memory_bound(size: int) -> int:
    """The most a message of ``size`` bytes may raise the peak resident set.

    Parsing a clean corpus message peaked at up to ~12 times its size before the tree was
    built in chunks (now about 5). 40 times leaves room for allocator slack and for
    mutations that multiply work (nesting: see test_forwarding_depth_does_not_multiply_memory). The
    64 MiB covers what the interpreter allocates once (lazy imports, codec and regex
    caches) and makes the bound meaningless for tiny messages, where only a blow-up
    (exponential, or a loop that keeps allocating) could break it, which is the point.
    """
    return 40 * size + 64 * MiB


# -- measuring ------------------------------------------------------------------------
class RssPeak:
    """Peak resident set of this process during a block, via Linux's resettable high-water
    mark (``echo 5 > /proc/self/clear_refs``): cheap, and it counts C allocations too."""

    name = "rss"

    @staticmethod
    def available() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return _status_kb("VmHWM") is not None
        except OSError:
            return False

    def __enter__(self):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        self.start = _status_kb("VmRSS") * 1024
        return self

    def __exit__(self, *exc):
        self.increase = _status_kb("VmHWM") * 1024 - self.start
        return False


class TracedPeak:
    """Fallback without /proc (not Linux): Python allocations only, and about 10x slower."""

    name = "tracemalloc"

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.increase = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False


def _status_kb(field: str) -> int | None:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


PEAK = RssPeak if sys.platform == "linux" and RssPeak.available() else TracedPeak
SLOWDOWN = 1 if PEAK is RssPeak else 10


class Hang(BaseException):
    """Raised by SIGALRM; a BaseException so read_and_parse's ``except Exception`` lets it out."""


@contextlib.contextmanager
def hard_stop(seconds: float):
    def stop(signum, frame):
        raise Hang(f"still running after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@functools.cache
def corpus_bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


# -- the property -----------------------------------------------------------------------
@dataclass
class Pipeline:
    root: Path
    org: object
    table: tuple
    reader: object

    def run(self, raw: bytes, envelope: Envelope) -> str:
        """What ``maild serve``'s parser process and then the worker's pure steps do with
        one message; returns what became of it (for notes)."""
        spool, blobs = Spool(self.root / "spool"), BlobStore(self.root / "blobs")
        item = spool.put(envelope, raw)
        path = spool.incoming / item
        try:
            parsed = read_and_parse(path, Policy(self.org, self.table, self.reader), (blobs, AttachmentsConfig()))
        finally:
            path.unlink()
            shutil.rmtree(self.root / "blobs", ignore_errors=True)
        if parsed.mail is None:
            assert parsed.error, "no mail and no reason"
            if parsed.error.startswith("parser failed"):
                parse(raw)   # re-raise the real exception here, with its traceback
                pytest.fail(parsed.error)
            return f"refused: {parsed.error}"
        mail = parsed.mail
        assert parsed.verdict is not None and parsed.key
        written = quotes.reply_text(mail.text, mail.html if mail.text_from_html else "", fallback=False)
        quotes.reply_text(mail.text)
        commands.may_start(mail.text)
        commands.read(written)
        selfservice.asks_by_subject(mail.subject)
        selfservice.read(mail.subject, written, {d.code for d in self.org.departments}, False)
        verp.report_status(mail.report, mail.text, mail.subject)
        auth.check(mail, envelope, "p.petrov@torex.ru", "OSA-000001",
                   AuthConfig(methods=("authentication-results", "trusted-network", "signed-address"),
                              trusted_hosts=("mx.torex.ru",), trusted_networks=("10.0.0.0/8",)),
                   b"k" * 32)
        return (f"{parsed.verdict.kind.value}, {len(mail.text)} chars of text, "
                f"{len(mail.attachments)} attachments, {len(mail.defects)} defects")

    def check(self, raw: bytes, envelope: Envelope = ENVELOPES[0], seconds: float | None = None) -> str:
        """Runs ``run`` under the hard stop and the memory probe, asserting both bounds."""
        t = time.perf_counter()
        with hard_stop(HARD_STOP_SECONDS * SLOWDOWN), PEAK() as peak:
            outcome = self.run(raw, envelope)
        elapsed = time.perf_counter() - t
        summary = (f"{len(raw)} bytes: {outcome}; {elapsed:.2f} s, "
                   f"peak +{peak.increase / MiB:.1f} MiB ({PEAK.name})")
        assert peak.increase < memory_bound(len(raw)), (
            f"over the memory bound of {memory_bound(len(raw)) / MiB:.0f} MiB: {summary}")
        if seconds is not None:
            assert elapsed < seconds * SLOWDOWN, f"too slow: {summary}"
        return summary


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    org, table, reader = load_policy(PROJECT / "rules", PROJECT / "templates")
    p = Pipeline(tmp_path_factory.mktemp("fuzz"), org, table, reader)
    p.run(_with_attachment(64 * 1024), ENVELOPES[0])    # warm up: lazy imports, caches
    return p


@pytest.fixture(scope="module")
def corpus() -> Path:
    """Skips (fails under CI) before hypothesis starts when the shared corpus is missing."""
    return require_corpus()


# -- mutations --------------------------------------------------------------------------
# Each is a small frozen value (what hypothesis prints for a failing example) that turns
# bytes into bytes deterministically.
_BOUNDARY_RE = re.compile(rb'boundary\s*=\s*"?([^";\r\n]+)"?', re.I)
NASTY = [0, 13, 10, 9, 0x1b, 0x7f, 0x80, 0xa0, 0xc0, 0xd0, 0xff, 0xfe, ord(":"), ord(";"), ord('"'),
         ord("="), ord("?"), ord("<"), ord(">"), ord("\\"), ord(" ")]


def _at(raw: bytes, frac: float, lo: int = 0, hi: int | None = None) -> int:
    hi = len(raw) if hi is None else hi
    return lo + int((hi - lo) * frac)


def _header_end(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


@dataclass(frozen=True)
class Truncate:
    frac: float

    def __call__(self, raw: bytes) -> bytes:
        return raw[:_at(raw, self.frac)]


@dataclass(frozen=True)
class Boundary:
    """Break the n-th MIME boundary: in its parameter, its delimiter lines, or both."""
    how: str
    n: int
    junk: bytes

    def __call__(self, raw: bytes) -> bytes:
        found = list(dict.fromkeys(m.group(1) for m in _BOUNDARY_RE.finditer(raw)))
        if not found:
            return raw
        b = found[self.n % len(found)]
        other = found[(self.n + 1) % len(found)]
        if self.how == "rename-param":        # delimiters no longer match the parameter
            return (raw.replace(b"boundary=" + b, b"boundary=" + b + self.junk, 1)
                       .replace(b'boundary="' + b, b'boundary="' + b + self.junk, 1))
        if self.how == "empty-param":
            return re.sub(rb'boundary\s*=\s*"?' + re.escape(b) + rb'"?', b'boundary=""', raw, count=1)
        if self.how == "drop-param":
            return re.sub(rb';?\s*boundary\s*=\s*"?' + re.escape(b) + rb'"?', b"", raw, count=1)
        if self.how == "no-close":            # the closing delimiter missing
            return raw.replace(b"--" + b + b"--", b"")
        if self.how == "garble-lines":        # every delimiter line gets the junk in it
            return raw.replace(b"\n--" + b, b"\n--" + b[: len(b) // 2] + self.junk + b[len(b) // 2:])
        if self.how == "swap":                # two parts' boundaries exchanged
            return raw.replace(b, b"\x00SWAP\x00").replace(other, b).replace(b"\x00SWAP\x00", other)
        if self.how == "prefix":              # the boundary a prefix of another's delimiters
            return raw.replace(b"boundary=" + b, b"boundary=" + b[:1], 1)
        if self.how == "huge":                # RFC 2046 allows 70 characters
            return raw.replace(b, (b * (4000 // len(b) + 1))[:4000])
        raise AssertionError(self.how)


@dataclass(frozen=True)
class HeaderBytes:
    """Bytes inserted into the header block at the given relative positions."""
    inserts: tuple[tuple[float, bytes], ...]

    def __call__(self, raw: bytes) -> bytes:
        end = _header_end(raw)
        for frac, junk in sorted(self.inserts, reverse=True):
            at = _at(raw, frac, 0, end)
            raw = raw[:at] + junk + raw[at:]
        return raw


@dataclass(frozen=True)
class GiantHeader:
    """A header of about ``size`` bytes put on top of the message. Folded into lines as
    SMTP delivers them, except the one-line kinds (``maild inject`` has no line limit)."""
    kind: str
    size: int

    def __call__(self, raw: bytes) -> bytes:
        n = self.size
        if self.kind == "subject-words":
            head = b"Subject:" + b"\r\n word word word word word word word word word word word" * (n // 62)
        elif self.kind == "subject-one-line":     # nowhere to fold
            head = b"Subject: " + b"x" * n
        elif self.kind == "subject-encoded":      # thousands of RFC 2047 words
            head = b"Subject:" + b"\r\n =?utf-8?B?0J/RgNC40LLQtdGC?=" * (n // 30)
        elif self.kind == "subject-8bit":
            head = b"Subject:" + ("\r\n " + "Привет " * 9).encode("cp1251") * (n // 66)
        elif self.kind == "continuations":        # one header of many short continuation lines
            head = b"X-Long: a" + b"\r\n b" * (n // 4)
        elif self.kind == "received":
            head = b"".join(b"Received: from relay%d.example.com by mx.example.com; "
                            b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i for i in range(n // 80)).rstrip()
        elif self.kind == "many-headers":
            head = b"\r\n".join(b"X-H%d: v" % i for i in range(n // 10))
        elif self.kind == "from-list":
            head = b"From: " + b",\r\n ".join(b"u%d@torex.ru" % i for i in range(n // 16))
        elif self.kind == "from-list-one-line":
            head = b"From: " + b", ".join(b"u%d@torex.ru" % i for i in range(n // 14))
        elif self.kind == "references":
            head = b"References: " + b"\r\n ".join(b"<%d@example.com>" % i for i in range(n // 18))
        elif self.kind == "content-type-params":  # RFC 2231 sections
            head = b"Content-Type: text/plain" + b"".join(b";\r\n p%d*%d*=utf-8''x" % (i, i) for i in range(n // 22))
        else:
            raise AssertionError(self.kind)
        return head + b"\r\n" + raw


GIANT_KINDS = ["subject-words", "subject-one-line", "subject-encoded", "subject-8bit", "continuations", "received",
               "many-headers", "from-list", "from-list-one-line", "references", "content-type-params"]


@dataclass(frozen=True)
class Nest:
    """The message wrapped in ``depth`` levels of multipart/mixed or message/rfc822."""
    depth: int
    kind: str            # multipart, rfc822, alternate, rfc822-in-multipart
    same_boundary: bool  # every level's boundary the same string
    closed: bool         # closing delimiters written

    def __call__(self, raw: bytes) -> bytes:
        for i in range(self.depth):
            kind = self.kind if self.kind != "alternate" else ("multipart", "rfc822")[i % 2]
            head = (b"From: =?utf-8?B?0JjQstCw0L0=?= <ivan@torex.ru>\r\nSubject: Fwd: level %d\r\n"
                    b"MIME-Version: 1.0\r\n" % i)
            b = b"=_b" if self.same_boundary else b"=_level%d" % i
            close = b"\r\n--" + b + b"--\r\n" if self.closed else b"\r\n"
            if kind == "rfc822":
                raw = head + b"Content-Type: message/rfc822\r\n\r\n" + raw
            elif kind == "multipart":
                raw = (head + b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b
                       + b"\r\n" + raw + close)
            else:
                raw = (head + b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b
                       + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFYI\r\n--" + b
                       + b"\r\nContent-Type: message/rfc822\r\n\r\n" + raw + close)
        return raw


@dataclass(frozen=True)
class LineEndings:
    how: str

    def __call__(self, raw: bytes) -> bytes:
        if self.how == "cr-only":
            return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
        if self.how == "lf-only":
            return raw.replace(b"\r\n", b"\n")
        if self.how == "crlf-doubled":
            return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\r\n")
        if self.how == "no-newlines":
            return raw.replace(b"\r", b"").replace(b"\n", b" ")
        raise AssertionError(self.how)


@dataclass(frozen=True)
class Flips:
    flips: tuple[tuple[float, int], ...]

    def __call__(self, raw: bytes) -> bytes:
        if not raw:
            return raw
        data = bytearray(raw)
        for frac, mask in self.flips:
            at = min(_at(raw, frac), len(raw) - 1)
            data[at] ^= mask
        return bytes(data)


fracs = st.floats(0, 1, allow_nan=False)
nasty_bytes = st.lists(st.sampled_from(NASTY) | st.integers(0, 255), min_size=1, max_size=64).map(bytes)
mutations = st.one_of(
    st.builds(Truncate, fracs),
    st.builds(Boundary, st.sampled_from(["rename-param", "empty-param", "drop-param", "no-close", "garble-lines",
                                         "swap", "prefix", "huge"]),
              st.integers(0, 20), nasty_bytes),
    st.builds(HeaderBytes, st.lists(st.tuples(fracs, nasty_bytes), min_size=1, max_size=8).map(tuple)),
    # Up to 300 KB: the quadratic headers (see test_giant_header_takes_linear_time) then stay
    # within the deadline; the larger sizes are tested there, where they are known bugs.
    st.builds(GiantHeader, st.sampled_from(GIANT_KINDS), st.integers(1_000, 300_000)),
    st.builds(Nest, st.integers(1, 200), st.sampled_from(["multipart", "rfc822", "alternate", "rfc822-in-multipart"]),
              st.booleans(), st.booleans()),
    st.builds(LineEndings, st.sampled_from(["cr-only", "lf-only", "crlf-doubled", "no-newlines"])),
    st.builds(Flips, st.lists(st.tuples(fracs, st.integers(1, 255)), min_size=1, max_size=32).map(tuple)),
)


@settings(max_examples=MAX_EXAMPLES, deadline=timedelta(seconds=EXAMPLE_SECONDS * SLOWDOWN),
          derandomize=True, database=None, print_blob=False)
@given(name=st.sampled_from(CORPUS_FILES or ("(no corpus)",)),
       steps=st.lists(mutations, min_size=1, max_size=3),
       envelope=st.sampled_from(ENVELOPES))
def test_mutated_corpus_mail_is_parsed_or_refused(corpus, pipeline, name, steps, envelope):
    raw = corpus_bytes(name)
    for step in steps:
        raw = step(raw)
    pipeline.check(raw, envelope)


# -- the extreme shapes, each on its own ------------------------------------------------
def _plain(body: bytes = b"Hello, the printer does not print.\r\n") -> bytes:
    return (b"From: Ivan <ivan@torex.ru>\r\nTo: osticket@torex.ru\r\nSubject: printer\r\n"
            b"Message-ID: <shape@torex.ru>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + body)


SHAPES = {
    "multipart nested 200 deep": Nest(200, "multipart", False, True)(_plain()),
    "multipart nested 200 deep, one boundary, never closed": Nest(200, "multipart", True, False)(_plain()),
    "message/rfc822 nested 200 deep": Nest(200, "rfc822", False, True)(_plain()),
    "forward in multipart nested 200 deep": Nest(200, "rfc822-in-multipart", False, True)(_plain()),
    "multipart nested 1000 deep": Nest(1000, "multipart", False, True)(_plain()),
    "5000 Received lines": GiantHeader("received", 5000 * 80)(_plain()),
    "200 KB Subject of words": GiantHeader("subject-words", 200_000)(_plain()),
    "200 KB Subject on one line without a space": GiantHeader("subject-one-line", 200_000)(_plain()),
    "200 KB Subject of encoded words": GiantHeader("subject-encoded", 200_000)(_plain()),
    "200 KB of raw cp1251 Subject": GiantHeader("subject-8bit", 200_000)(_plain()),
    "20000 headers": GiantHeader("many-headers", 200_000)(_plain()),
    "12000 From addresses": GiantHeader("from-list", 200_000)(_plain()),
    "14000 From addresses on one line": GiantHeader("from-list-one-line", 200_000)(_plain()),
    "11000 References": GiantHeader("references", 200_000)(_plain()),
    "9000 RFC 2231 parameters": GiantHeader("content-type-params", 200_000)(_plain()),
    "header of 50000 continuation lines": GiantHeader("continuations", 200_000)(_plain()),
    "NUL, bare CR and 8-bit bytes in every header":
        _plain().replace(b": ", b":\x00\r\xff\xd0 ", 5),
    "headers only, no body, no blank line": _plain().split(b"\r\n\r\n")[0],
    "CR-only line endings": LineEndings("cr-only")(_plain()),
    "empty": b"",
    "one NUL": b"\x00",
    "binary garbage": bytes(range(256)) * 64,
    "multipart without a boundary": _plain().replace(b"text/plain; charset=utf-8", b"multipart/mixed"),
    "base64 body that is not base64": _plain(b"!!!!====\x00\xff" * 1000).replace(
        b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_extreme_shape(pipeline, shape):
    pipeline.check(SHAPES[shape], seconds=EXAMPLE_SECONDS)


# -- known problems ---------------------------------------------------------------------
def _with_attachment(size: int) -> bytes:
    data = random.Random(7).randbytes(size)
    return (b"From: Ivan <ivan@torex.ru>\r\nTo: osticket@torex.ru\r\nSubject: scan\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="=_a"\r\n\r\n--=_a\r\n'
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe scan is attached.\r\n--=_a\r\n"
            b'Content-Type: application/pdf; name="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + base64.encodebytes(data).replace(b"\n", b"\r\n") + b"--=_a--\r\n")


@pytest.mark.parametrize("depth", [
    2,
    20,
])
def test_forwarding_depth_does_not_multiply_memory(pipeline, depth):
    """A 1 MiB attachment in a mail forwarded as an attachment ``depth`` times needs about
    as much memory as the same mail forwarded once (Python allocations, tracemalloc: exact
    and the same on every run)."""
    once, nested = (Nest(d, "rfc822", False, True)(_with_attachment(MiB)) for d in (1, depth))
    peaks = []
    for raw in (once, nested):
        with TracedPeak() as peak:
            pipeline.run(raw, ENVELOPES[0])
        peaks.append(peak.increase)
    assert peaks[1] < 1.5 * peaks[0], (f"forwarded once: {peaks[0] / MiB:.1f} MiB; "
                                       f"{depth} times: {peaks[1] / MiB:.1f} MiB")


# For a 2 MB header (no memory probe here, so no SLOWDOWN): at that rate a 25 MiB message,
# the SMTP limit, takes 40 s.
LINEAR_SECONDS = 3.0


@pytest.mark.parametrize("kind", [
    "subject-words", "subject-one-line", "references", "continuations",
    "subject-encoded",
    "content-type-params",
])
def test_giant_header_takes_linear_time(pipeline, kind):
    """A 2 MB header (it fits in a 25 MiB message) is read within LINEAR_SECONDS; the
    quadratic ones would take minutes at the size limit, stalling the parser process."""
    raw = GiantHeader(kind, 2_000_000)(_plain())
    t = time.perf_counter()
    try:
        with hard_stop(LINEAR_SECONDS):
            pipeline.run(raw, ENVELOPES[0])
    except Hang:
        pytest.fail(f"{len(raw)} bytes of {kind} not read within {LINEAR_SECONDS:.0f} s")
    assert time.perf_counter() - t < LINEAR_SECONDS


@pytest.mark.parametrize("depth", [
    2,
    50,
])
def test_forwarding_depth_does_not_multiply_time(pipeline, depth):
    """A 130 KB mail whose header has 32000 continuation lines, forwarded as an attachment
    ``depth`` times, is read within LINEAR_SECONDS (unforwarded: 0.02 s)."""
    raw = Nest(depth, "rfc822", False, True)(GiantHeader("continuations", 128_000)(_plain()))
    try:
        with hard_stop(LINEAR_SECONDS):
            pipeline.run(raw, ENVELOPES[0])
    except Hang:
        pytest.fail(f"{len(raw)} bytes forwarded {depth} times not read within {LINEAR_SECONDS:.0f} s")
