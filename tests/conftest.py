"""Test harness: the real daemon's intake behind aiosmtpd's Controller, a real SMTP sink as
the relay, real SQLite files and, when ``MAILD_TEST_PG`` names a server, PostgreSQL too.
"""
from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import email.utils
import functools
import os
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from maild import config as config_mod
from maild.app import App
from maild.intake.receive import smtp_factory

# tests/browser.py: the `browser` fixture (headless Chromium) and its helpers.
pytest_plugins = ("browser",)

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = PROJECT.parent / "shared" / "corpus"
PG_URL = os.environ.get("MAILD_TEST_PG", "")
IN_CI = os.environ.get("CI", "").lower() == "true"

# The `timezone` key defaults to the machine's zone (TZ first): the suite pins it to UTC so
# no result depends on where it runs; a test about zones names its own.
os.environ["TZ"] = "UTC"
time.tzset()


def require_corpus() -> Path:
    if not CORPUS.is_dir():
        if IN_CI:
            pytest.fail(f"the shared corpus is missing at {CORPUS}; CI must have it")
        pytest.skip(f"the shared corpus is not at {CORPUS} (someone else's clone)")
    return CORPUS


def wait_until(predicate, timeout: float = 20.0) -> bool:
    """True as soon as ``predicate()`` is, False after ``timeout`` seconds of asking."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the relay sink -----------------------------------------------------------------------
@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def msg(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.msg["Subject"])

    @property
    def body(self) -> str:
        return self.msg.get_body(("plain",)).get_content()


class SinkHandler:
    """Accepts everything, except recipients listed in ``answers`` (address -> reply)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.answers: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.answers:
            return self.answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content))
        return "250 OK"


@pytest.fixture
def sink():
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


# -- databases ----------------------------------------------------------------------------
DB_KINDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@contextlib.contextmanager
def pg_schema():
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


@pytest.fixture(params=DB_KINDS)
def db_url(request, tmp_path):
    if IN_CI and not PG_URL:
        pytest.fail("CI must set MAILD_TEST_PG so the storage tests also run on PostgreSQL")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'maild.db'}"
    else:
        with pg_schema() as url:
            yield url


# -- the daemon ---------------------------------------------------------------------------
class IntakeController(Controller):
    """aiosmtpd's Controller running maild's own intake protocol factory."""

    def __init__(self, make_smtp, **kwargs):
        self._make_smtp = make_smtp
        super().__init__(handler=None, **kwargs)

    def factory(self):
        return self._make_smtp()


@dataclass
class Harness:
    app: App
    sink: SinkHandler
    port: int
    controller: IntakeController | None = None
    _workers: list = field(default_factory=list)

    def send(self, raw: bytes | str, rcpt="osticket@torex.ru", sender="ivan@torex.ru", source: str | None = None):
        """Deliver over SMTP; returns smtplib's refusal dict (empty when all accepted).
        ``source``: the client's own address (another loopback address is "not the relay")."""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        rcpts = [rcpt] if isinstance(rcpt, str) else list(rcpt)
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30,
                          source_address=(source, 0) if source else None) as client:
            return client.sendmail(sender, rcpts, raw)

    def worker(self):
        return self.app.worker()

    def drain(self):
        return self.worker().drain()

    def sent_to(self, address: str) -> list[Received]:
        return [m for m in self.sink.messages if address in m.rcpt_tos]

    def session(self):
        return self.app.sessions()

    @contextlib.contextmanager
    def database_down(self):
        """Make the database unreachable, as a stopped server or a vanished disk would."""
        url = self.app.config.db_url
        self.app.engine.dispose()
        if url.startswith("sqlite"):
            folder = Path(url.split("///", 1)[1]).parent
            away = folder.with_name(folder.name + ".away")
            folder.rename(away)
            try:
                yield
            finally:
                away.rename(folder)
        else:
            good = self.app._sessions.kw["bind"]
            bad = create_engine("postgresql+psycopg://maild:maild@127.0.0.1:1/none",
                                connect_args={"connect_timeout": 2})
            self.app._sessions.configure(bind=bad)
            spool = self.app.spool       # the shared spool (intake/shared.py) loses it too
            spool_engine = getattr(spool, "_engine", None)
            if hasattr(spool, "_make_engine"):
                spool.close()
                spool._engine = bad
            try:
                yield
            finally:
                self.app._sessions.configure(bind=good)
                if hasattr(spool, "_make_engine"):
                    spool._engine = spool_engine
        self.app.engine.dispose()


def make_config(tmp_path: Path, db_url: str, sink_port: int | None, rules: Path | None = None,
                **smtp) -> config_mod.Config:
    cfg = config_mod.load(None, data_dir=str(tmp_path / "data"), db=db_url,
                          rules=str(rules) if rules else None)
    relay = replace(cfg.relay, host="127.0.0.1" if sink_port else "", port=sink_port or 25,
                    retry_base=60)
    # The company's mail server, as the tests' staff mail says it was checked by.
    # The company relay is 127.0.0.1; an attacker talking SMTP straight to maild is 127.0.0.2
    # (Harness.send(..., source="127.0.0.2")).
    auth = replace(cfg.auth, trusted_hosts=("mx.torex.ru",), trusted_networks=("127.0.0.1/32",))
    # Failed messages are retried at once in tests (the backoff has its own test).
    worker = replace(cfg.worker, retry_delay=0)
    return replace(cfg, relay=relay, smtp=replace(cfg.smtp, **smtp), hostname="maild.test", auth=auth,
                   worker=worker)


@pytest.fixture
def harness_factory(tmp_path, db_url, sink):
    made: list[Harness] = []

    def make(rules: Path | None = None, configure=None, **smtp) -> Harness:
        """``configure``: a function that takes the test config and returns the one to use."""
        cfg = make_config(tmp_path, db_url, sink.port, rules, **smtp)
        if configure is not None:
            cfg = configure(cfg)
        app = App.create(cfg)
        app.init_db(create=True)          # a test database is made as `maild db init` makes it
        port = free_port()
        controller = IntakeController(
            smtp_factory(app.intake(), cfg.smtp, cfg.hostname),
            hostname="127.0.0.1", port=port)
        controller.start()
        h = Harness(app=app, sink=sink, port=port, controller=controller)
        made.append(h)
        return h

    yield make
    for h in made:
        h.controller.stop()
        h.app.close()


@pytest.fixture
def maild(harness_factory) -> Harness:
    return harness_factory()


@functools.lru_cache(maxsize=1)
def corpus_domains() -> tuple[str, ...]:
    """Every sender domain in the corpus: for tests that treat its writers as employees."""
    from maild.reading.parse import parse
    domains = {"example.com"}
    for path in CORPUS.glob("*/*.eml"):
        try:
            sender = parse(path.read_bytes()).sender
        except Exception:
            continue
        if sender and "@" in sender.email and sender.email.isascii():
            domains.add(sender.email.rpartition("@")[2].lower())
    return tuple(sorted(domains))


@pytest.fixture(scope="session")
def corpus_rules(tmp_path_factory) -> Path:
    """The shipped rules, with the corpus's sender domains counted as corporate."""
    require_corpus()
    rules = tmp_path_factory.mktemp("corpus-rules")
    shutil.copytree(PROJECT / "rules", rules, dirs_exist_ok=True)
    listed = ", ".join(f'"{d}"' for d in ("torex.ru",) + corpus_domains())
    (rules / "organisation.toml").write_text(f"[organisation]\ndomains = [{listed}]\n", encoding="utf-8")
    return rules


# -- maild web ----------------------------------------------------------------------------
MAILD = Path(sys.executable).with_name("maild")


def http_get(url: str, method: str = "GET") -> tuple[int, dict, str]:
    """(status, headers, body) of one request; an HTTP error status is an answer, not an error."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8")


@pytest.fixture
def web(tmp_path):
    """``maild web`` on its own copy of the rules; yields (base URL, rules dir)."""
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    log = open(tmp_path / "web.log", "w+")      # noqa: SIM115 - the process writes to it
    proc = subprocess.Popen([str(MAILD), "--rules", str(rules), "web", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            http_get(base + "/categories")
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail((tmp_path / "web.log").read_text())
    yield base, rules
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    assert "Traceback" not in (tmp_path / "web.log").read_text()


# What the company's mail server adds to mail whose DKIM signature it verified.
TRUSTED_DKIM = {"Authentication-Results": "mx.torex.ru; dkim=pass header.d=torex.ru header.s=mail"}


def mail(subject="Не печатает принтер", body="Добрый день! Принтер на 3 этаже не печатает.",
         sender="Иван Иванов <ivan@torex.ru>", to="osticket@torex.ru", message_id=None,
         headers: dict | None = None) -> bytes:
    """A plain utf-8 mail as a modern client writes it."""
    msg = email.message.EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id or secrets.token_hex(8) + '@torex.ru'}>"
    msg["Date"] = email.utils.formatdate()
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


# -- what did not run ---------------------------------------------------------------------
def not_run() -> list[str]:
    """The parts of the suite this machine leaves out, and why (one clause each)."""
    missing = []
    if not PG_URL:
        missing.append("every storage and pipeline test on PostgreSQL (set MAILD_TEST_PG, as .ci/run does)")
    if not CORPUS.is_dir():
        missing.append(f"the real-world corpus tests (no {CORPUS})")
    return missing


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say in one line what did not run: without PostgreSQL the suite is less than half of
    itself, and a count of passes alone does not show it (issue 14)."""
    missing = not_run()
    if missing:
        terminalreporter.write_line("NOT RUN here: " + "; ".join(missing) + ".", yellow=True, bold=True)
