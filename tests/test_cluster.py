"""Two `maild serve` nodes on one PostgreSQL (issue 16): a node that dies or stalls loses no
mail and delays it by no more than its lease; every message that got 250 is one ticket with
one acknowledgement; a scheduled job runs once for both nodes.

What one machine cannot show: a network partition between a node and the database (here the
database is always reachable from the living node), and clock skew (leases are in the
database's clock, so there is one clock; docs/cluster.md).
"""
from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from maild.app import App
from maild.worker import DrainSummary

from conftest import IN_CI, PG_URL, free_port, mail, make_config, pg_schema, wait_until

MAILD = Path(sys.executable).with_name("maild")
LEASE = 5

@pytest.fixture(autouse=True)
def _needs_postgresql():
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI must set MAILD_TEST_PG: the cluster's tests need PostgreSQL")
        pytest.skip("needs PostgreSQL: set MAILD_TEST_PG (.ci/run does)")


class Node:
    """One `maild serve` in a session of its own, so that the whole node (listener, worker,
    parsers, sender) can be killed or stopped at once."""

    def __init__(self, root: Path, name: str, db_url: str, relay_port: int):
        self.name, self.port, self.root = name, free_port(), root / name
        self.root.mkdir()
        self.config = self.root / "maild.toml"
        self.config.write_text(
            f'data_dir = "{self.root / "data"}"\ndb = "{db_url}"\nhostname = "maild.test"\n'
            f'[smtp]\nlisten = "127.0.0.1:{self.port}"\n'
            f'[relay]\nhost = "127.0.0.1"\nport = {relay_port}\nretry_base = 1\ntimeout = 2\n'
            f'[cluster]\nnode = "{name}"\nlease = {LEASE}\n'
            '[worker]\nparse_processes = 1\n', encoding="utf-8")
        self.env = dict(os.environ, MAILD_CONFIG=str(self.config))
        self.env.pop("MAILD_DB", None)
        self.env.pop("MAILD_DATA_DIR", None)
        self.log = self.root / "serve.log"
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(MAILD), *args], env=self.env, capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([str(MAILD), "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        assert wait_until(self.listening, 30), f"node {self.name} did not start: {self.log.read_text()[-2000:]}"

    def listening(self) -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=1):
                return True
        except OSError:
            return False

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Senders:
    """MTAs that deliver one message per connection to either of two equal MX hosts, and
    retry (on the other one) until a 250, as real ones do."""

    def __init__(self, nodes: list[Node], count: int, threads: int = 3):
        self.nodes, self.count, self.threads = nodes, count, threads
        self.accepted: dict[str, str] = {}     # Message-ID -> the requester
        self.lock = threading.Lock()
        self.running: list[threading.Thread] = []

    def _one(self, index: int) -> None:
        requester = f"user{index}@torex.ru"
        message_id = f"cluster-{index}@torex.ru"
        raw = mail(subject=f"Заявка номер {index}: не работает принтер", sender=requester, message_id=message_id)
        deadline = time.monotonic() + 120
        attempt = 0
        while time.monotonic() < deadline:
            node = self.nodes[(index + attempt) % len(self.nodes)]
            attempt += 1
            try:
                with smtplib.SMTP("127.0.0.1", node.port, timeout=3) as client:
                    client.sendmail(requester, ["osticket@torex.ru"], raw)
                with self.lock:
                    self.accepted[message_id] = requester
                return
            except (OSError, smtplib.SMTPException):
                time.sleep(0.2)        # the other MX, a moment later

    def _run(self, part: int) -> None:
        for index in range(part, self.count, self.threads):
            self._one(index)
            time.sleep(0.05)

    def start(self) -> None:
        self.running = [threading.Thread(target=self._run, args=(i,)) for i in range(self.threads)]
        for t in self.running:
            t.start()

    def join(self) -> None:
        for t in self.running:
            t.join(timeout=300)


@pytest.fixture
def cluster(tmp_path, sink):
    with pg_schema() as db_url:
        nodes = [Node(tmp_path, "a", db_url, sink.port), Node(tmp_path, "b", db_url, sink.port)]
        result = nodes[0].cli("db", "init")
        assert result.returncode == 0, result.stderr
        engine = create_engine(db_url)
        try:
            yield nodes, engine
        finally:
            for node in nodes:
                node.stop()
            engine.dispose()


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_a_node_killed_stopped_and_restarted_loses_and_doubles_nothing(cluster, sink):
    (a, b), engine = cluster
    a.start()
    b.start()
    senders = Senders([a, b], count=240)
    senders.start()
    assert wait_until(lambda: len(senders.accepted) >= 40, 60)

    # A node dies outright (every process of it) with mail accepted and claimed.
    a.kill()
    died_at = time.monotonic()
    assert wait_until(lambda: len(senders.accepted) >= 100, 60)
    time.sleep(1)
    a.start()      # back after a pause

    # The other one stalls longer than its lease (a hung VM), then wakes.
    b.signal(signal.SIGSTOP)
    time.sleep(2 * LEASE + 1)
    b.signal(signal.SIGCONT)
    senders.join()
    assert len(senders.accepted) == senders.count, "a sender never got its 250"

    # Everything accepted is processed, and its acknowledgement is relayed.
    assert wait_until(lambda: _count(engine, "SELECT count(*) FROM spool WHERE state <> 'done'") == 0, 60), \
        "accepted mail left in the shared spool"
    assert wait_until(lambda: _count(engine, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')") == 0,
                 60), "outgoing mail left unsent"

    with engine.connect() as conn:
        keys = list(conn.execute(text("SELECT message_key FROM inbound WHERE disposition = 'ticket-created'"))
                    .scalars())
        tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
        acks = dict(conn.execute(text("SELECT recipient, count(*) FROM outbox WHERE kind = 'ack' GROUP BY recipient"))
                    .all())
        expired = conn.execute(text("SELECT count(*) FROM spool WHERE claim IS NOT NULL AND state = 'incoming'")
                               ).scalar_one()
    assert sorted(keys) == sorted(senders.accepted), "every 250 is one ticket, and only those"
    assert tickets == senders.count
    assert acks == {requester: 1 for requester in senders.accepted.values()}, "one acknowledgement each"
    assert expired == 0, "a claim was left behind"

    # The relay got each acknowledgement (at least once; a repeat, if a sender died between the
    # relay's 250 and its own commit, carries the same Message-ID: relay.py's guarantee).
    ack_ids: dict[str, set[str]] = {}
    for m in sink.messages:
        msg = email.message_from_bytes(m.raw, policy=email.policy.default)
        for rcpt in m.rcpt_tos:
            if rcpt in acks:
                ack_ids.setdefault(rcpt, set()).add(str(msg["Message-ID"]))
    assert {r: len(ids) for r, ids in ack_ids.items()} == {r: 1 for r in senders.accepted.values()}

    # Mail the dead node had accepted was processed by the other within about a lease.
    assert time.monotonic() - died_at > LEASE
    a_log, b_log = a.log.read_text(), b.log.read_text()
    assert "Traceback" not in a_log + b_log

    # Both nodes are seen, alive, in `maild status`.
    def alive() -> dict[str, bool]:
        return {n["name"]: n["alive"] for n in json.loads(a.cli("status", "--json").stdout)["cluster"]["nodes"]}
    assert wait_until(lambda: alive() == {"a": True, "b": True}, 20)
    text_status = b.cli("status").stdout
    assert "shared spool:  0 waiting (0 on expired claims)" in text_status
    assert "nodes:         this one is 'b'" in text_status and "b (this): alive" in text_status
    status = json.loads(b.cli("status", "--json").stdout)["cluster"]
    # A message stored by a node whose 250 never reached the sender (it retried on the other) is
    # a second row, processed as a duplicate: every row done is one inbound record.
    inbound = _count(engine, "SELECT count(*) FROM inbound")
    assert status["node"] == "b" and status["spool"] == {"incoming": 0, "done": inbound, "quarantined": 0,
                                                          "expired_claims": 0}
    assert _count(engine, "SELECT count(*) FROM inbound WHERE disposition <> 'ticket-created'") == inbound - tickets



def test_the_morning_digest_is_queued_once_for_two_nodes(cluster):
    (a, b), engine = cluster
    runs = [threading.Thread(target=lambda n=n: results.append(n.cli("digest", "--once"))) for n in (a, b, a, b)]
    results: list[subprocess.CompletedProcess] = []
    for t in runs:
        t.start()
    for t in runs:
        t.join(timeout=120)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    queued = [r.stdout for r in results if r.stdout.startswith("queued")]
    skipped = [r.stdout for r in results if "was already queued by node" in r.stdout]
    assert len(queued) == 1 and len(skipped) == 3, [r.stdout for r in results]
    assert _count(engine, "SELECT count(*) FROM job_runs") == 1
    # Without --once an admin can still send it again by hand.
    again = a.cli("digest")
    assert again.returncode == 0 and again.stdout.startswith("queued")


@pytest.fixture
def two_apps(tmp_path, sink):
    """Two nodes' App on one PostgreSQL schema, driven step by step (no daemon)."""
    with pg_schema() as db_url:
        apps = []
        for name in ("a", "b"):
            cfg = make_config(tmp_path / name, db_url, sink.port)
            cfg = replace(cfg, cluster=replace(cfg.cluster, node=name, lease=LEASE))
            apps.append(App.create(cfg))
        apps[0].init_db(create=True)
        try:
            yield apps
        finally:
            for app in apps:
                app.close()


def _put(app: App, message_id: str) -> None:
    from maild.values import Envelope
    app.spool.put(Envelope(mail_from="ivan@torex.ru", rcpt_to=("osticket@torex.ru",), peer="127.0.0.1:1"),
                  mail(message_id=message_id))


def test_a_node_that_wakes_after_its_lease_ran_out_writes_nothing(two_apps):
    a, b = two_apps
    _put(a, "stalled@torex.ru")
    worker_a, worker_b = a.worker(), b.worker()
    items = a.spool.claim(10)
    assert [i.claim != "" for i in items] == [True]
    assert b.spool.claim(10) == []                      # a claim keeps the other node off ...
    with a.spool.engine.begin() as conn:                # ... until its lease runs out (a stalled node)
        conn.execute(text("UPDATE spool SET lease_until = now() - interval '1 second'"))
    assert worker_b.drain().created == 1
    # Node a wakes and goes on with what it had claimed: the fence finds the claim gone.
    summary = DrainSummary()
    assert worker_a.process_batch(items, worker_a._parsed(items, None), summary)
    assert (summary.processed, summary.created, summary.retried, summary.quarantined) == (0, 0, 0, 0)
    assert not items[0].path.exists()
    with a.spool.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE kind = 'ack'")).scalar_one() == 1
        assert conn.execute(text("SELECT state, node FROM spool")).one() == ("done", "b")


def test_a_restarted_node_gives_back_its_claims_at_once(two_apps):
    a, b = two_apps
    _put(b, "restart@torex.ru")
    assert len(a.spool.claim(10)) == 1                  # then node a is killed
    assert b.spool.claim(10) == []
    assert a.spool.recover(min_age=600) == 0            # `maild drain` beside it: leaves the claim alone
    assert b.spool.claim(10) == []
    assert a.spool.recover() == 1                       # its worker starting again
    assert a.worker().drain().created == 1


def test_mail_accepted_while_the_database_is_away_reaches_the_shared_spool(two_apps):
    a, b = two_apps
    good = a.spool._make_engine
    a.spool.close()
    a.spool._make_engine = lambda: create_engine("postgresql+psycopg://maild:maild@127.0.0.1:1/none",
                                                 connect_args={"connect_timeout": 2})
    _put(a, "outage@torex.ru")                          # accepted: 250 into node a's directory
    assert a.spool.local_pending() == 1 and a.spool.database_down
    a.spool.close()
    a.spool._make_engine = good
    assert b.worker().drain().processed == 0            # only node a has it, until a is back
    assert a.spool.claim(10) and a.spool.local_pending() == 0


def test_a_deadlock_between_two_nodes_is_a_conflict_to_retry_not_an_outage(two_apps):
    """Two nodes' transactions that lock the same rows in opposite orders: PostgreSQL rolls one
    back (40P01). The worker writes that batch again (worker._write_again_on_conflict) instead
    of calling the database unavailable and putting the batch back."""
    from maild.acting.db import is_conflict, is_unavailable
    a, _ = two_apps
    engine = a.spool.engine
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ticket_counters (department, last_number) VALUES ('X1', 0), ('X2', 0)"))
    first, second = engine.connect(), engine.connect()
    caught: list[BaseException] = []
    try:
        first.begin()
        second.begin()
        first.execute(text("UPDATE ticket_counters SET last_number = 1 WHERE department = 'X1'"))
        second.execute(text("UPDATE ticket_counters SET last_number = 1 WHERE department = 'X2'"))

        def cross(conn, department):
            try:
                conn.execute(text("UPDATE ticket_counters SET last_number = 2 WHERE department = :d"),
                             {"d": department})
            except Exception as exc:        # the one PostgreSQL chose
                caught.append(exc)
                conn.rollback()
        t = threading.Thread(target=cross, args=(first, "X2"))
        t.start()
        time.sleep(0.3)
        cross(second, "X1")
        t.join(timeout=30)
    finally:
        first.close()
        second.close()
    [exc] = caught
    assert is_conflict(exc) and not is_unavailable(exc)


def _cli(app: App, *args):
    from click.testing import CliRunner

    from maild.admin.cli import main
    return CliRunner().invoke(main, [*args, "--data-dir", str(app.config.data_dir), "--db", app.config.db_url],
                              catch_exceptions=False)


def test_the_admin_of_any_node_sees_replays_and_retries_the_clusters_mail_and_prunes_only_done(two_apps):
    a, b = two_apps
    _put(a, "broken@torex.ru")
    bad = a.spool.claim(10)[0]
    a.spool.to_quarantine(bad, "cannot parse: a test's reason")   # node a quarantined it
    _put(a, "fine@torex.ru")
    assert b.worker().drain().created == 1                         # node b processed the other
    # Node b's admin sees node a's quarantine, its envelope, and can replay it.
    listed = json.loads(_cli(b, "quarantine", "list", "--json").output)
    assert [(r["spool_id"], r["reason"], r["from"]) for r in listed] == [
        (bad.id, "cannot parse: a test's reason", "ivan@torex.ru")]
    shown = _cli(b, "quarantine", "show", bad.id)
    assert shown.exit_code == 0 and "in the cluster's spool table" in shown.output
    assert "MAIL FROM:<ivan@torex.ru>" in shown.output
    assert _cli(b, "replay", bad.id).exit_code == 0
    # Node a's admin replays the message node b took in: a's archive lacks it, the table has it.
    with a.spool.engine.connect() as conn:
        number = conn.execute(text("SELECT id FROM inbound WHERE message_key LIKE '%fine@torex.ru%'")).scalar_one()
    replayed = _cli(a, "replay", str(number))
    assert replayed.exit_code == 0, replayed.output
    assert "recorded: ticket-created" in replayed.output
    # Retried from node b: back in the table, processed, and gone from node a's list too.
    assert _cli(b, "quarantine", "retry", bad.id).output.strip() == f"requeued {bad.id}"
    assert _count(a.spool.engine, "SELECT count(*) FROM spool WHERE state = 'incoming'") == 1
    assert json.loads(_cli(a, "quarantine", "list", "--json").output) == []
    b.worker().drain()
    # Pruning: only what is done, and done long enough ago.
    _put(a, "waiting@torex.ru")
    with a.spool.engine.begin() as conn:
        conn.execute(text("UPDATE spool SET done_at = now() - interval '100 days', "
                          "received_at = now() - interval '100 days' WHERE state = 'done'"))
        conn.execute(text("UPDATE spool SET received_at = now() - interval '100 days', "
                          "not_before = now() + interval '1 day' WHERE state = 'incoming'"))
    assert json.loads(_cli(b, "spool", "prune", "--older-than", "90", "--json").output) == {"pruned": 2}
    assert json.loads(_cli(b, "spool", "prune", "--older-than", "90", "--json").output) == {"pruned": 0}
    with a.spool.engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM spool")).scalars().all() == ["incoming"]
    assert _cli(b, "spool", "prune", "--older-than", "0").exit_code == 2   # at least a day
