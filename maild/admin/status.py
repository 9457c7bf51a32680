"""``maild status``: which configuration, data directory and database maild would use from
here, why those, and whether they are ready — touching nothing (no directory, no database
file is made by looking).

A newcomer who runs maild from another directory gets a second ``var/`` there; this is
where they see it, and the sentence that says what to do about anything not ready.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import inspect, text

from maild.acting import db, diagnose
from maild.config import Config
from maild.deciding.organisation import Organisation
from maild.values import Clock, Exit, LocalTime


@dataclass(frozen=True)
class DatabaseState:
    shown: str                       # the URL without its password, a SQLite file as its path
    state: str                       # ready | absent | no-schema | outdated | unreachable | unusable
    revision: str | None = None
    problem: diagnose.Problem | None = None
    tickets: dict[str, int] = field(default_factory=dict)     # by status
    outbox: dict[str, int] = field(default_factory=dict)      # by status
    cluster: dict | None = None      # PostgreSQL: the shared spool and the nodes seen (issue 16)


@dataclass(frozen=True)
class Status:
    config: Config
    data_dir_from: str
    db_from: str
    database: DatabaseState
    departments: list[tuple[str, str]]
    spool: dict[str, int]
    now_reads: str                   # this moment as mails and reports print it

    data_dir_problem: diagnose.Problem | None = None

    @property
    def exit_code(self) -> Exit:
        """0 when the daemon could start from here; else the status of what stops it."""
        problem = self.data_dir_problem or self.database.problem
        return problem.code if problem is not None else Exit.OK

    def lines(self) -> list[str]:
        cfg, base = self.config, self.database
        relay = (f"the relay {cfg.relay.host}:{cfg.relay.port}" if cfg.relay.host
                 else f"the Maildir {cfg.outbox_maildir} (no relay configured; read it with mutt -f)")
        out = [f"config file:   {cfg.config_file or 'none (built-in defaults; --config or MAILD_CONFIG names one)'}",
               f"data dir:      {cfg.data_dir}  ({self.data_dir_from})"
               + ("" if cfg.data_dir.exists() else ", not made yet")]
        if self.data_dir_problem is not None:
            out.append(f"               {self.data_dir_problem.sentence}")
        out += [
               f"database:      {base.shown}  ({self.db_from})",
               f"               {_state_line(base)}"]
        if base.tickets:
            out.append("tickets:       " + ", ".join(f"{n} {s}" for s, n in sorted(base.tickets.items())))
        if base.outbox:
            out.append("outgoing:      " + ", ".join(f"{n} {s}" for s, n in sorted(base.outbox.items())))
        if base.cluster is not None:
            out += _cluster_lines(base.cluster)
        out += [f"spool:         {self.spool['waiting']} waiting, {self.spool['quarantined']} quarantined"
                + (" (this node's directory)" if base.cluster is not None else ""),
                f"rules:         {cfg.rules_dir}",
                "departments:   " + ", ".join(f"{code} <{address}>" for code, address in self.departments),
                f"listens on:    {cfg.smtp.host}:{cfg.smtp.port}",
                f"web pages:     {cfg.web.base_url}/ ("
                + ("started by serve: web.enabled" if cfg.web.enabled else "maild web, or serve --web") + ")",
                f"time zone:     people read times like {self.now_reads} ("
                + ("the 'timezone' key)" if cfg.origin("timezone") == "file"
                   else "the machine's zone: no 'timezone' key set)"),
                f"mail it sends: goes to {relay}"]
        return out

    def as_dict(self) -> dict:
        cfg, base = self.config, self.database
        return {
            "config_file": str(cfg.config_file) if cfg.config_file else None,
            "data_dir": {"path": str(cfg.data_dir), "from": self.data_dir_from, "exists": cfg.data_dir.is_dir(),
                         "problem": self.data_dir_problem.sentence if self.data_dir_problem else None},
            "database": {"url": base.shown, "from": self.db_from, "state": base.state, "revision": base.revision,
                         "problem": base.problem.sentence if base.problem else None,
                         "tickets": base.tickets, "outbox": base.outbox},
            "cluster": base.cluster,
            "spool": self.spool,
            "rules": str(cfg.rules_dir),
            "departments": [{"code": code, "address": address} for code, address in self.departments],
            "smtp": f"{cfg.smtp.host}:{cfg.smtp.port}",
            "web": {"url": cfg.web.base_url + "/", "listen": f"{cfg.web.host}:{cfg.web.port}",
                    "enabled": cfg.web.enabled},
            "now_reads": self.now_reads,
            "outgoing": ({"relay": f"{cfg.relay.host}:{cfg.relay.port}"} if cfg.relay.host
                         else {"maildir": str(cfg.outbox_maildir)}),
            "exit": int(self.exit_code),
        }


def _state_line(base: DatabaseState) -> str:
    if base.state == "ready":
        return f"ready, schema revision {base.revision}"
    if base.state == "absent":
        return "not made yet: the first command that needs it makes it (or 'maild db init')"
    assert base.problem is not None
    return base.problem.sentence


def gather(cfg: Config, org: Organisation, given_by: dict[str, str], clock: Clock) -> Status:
    """``given_by``: for an option the command line set, how (``--data-dir``, ``MAILD_DB``)."""
    folder = diagnose.of_data_dir(cfg.data_dir)
    return Status(cfg, _origin(cfg, "data_dir", given_by), _origin(cfg, "db", given_by), database(cfg),
                  [(d.code, d.address) for d in org.departments],
                  _spool(cfg.spool_dir) if folder is None else {"waiting": 0, "quarantined": 0},
                  LocalTime(cfg.timezone).when(clock.now()), folder)


def _origin(cfg: Config, key: str, given_by: dict[str, str]) -> str:
    origin = cfg.origin(key)
    if origin == "given":
        return f"from {given_by.get(key, 'the command line')}"
    if origin == "file":
        return f"from '{key}' in {cfg.config_file}"
    if key == "db":
        return "the default: maild.db in the data dir"
    return f"the default: var/ under the current directory, {Path.cwd()}"


def database(cfg: Config) -> DatabaseState:
    shown = diagnose.shown(cfg.db_url)
    if (problem := diagnose.of_sqlite_file(cfg.db_url)) is not None:
        return DatabaseState(shown, "unusable", None, problem)
    path = db.sqlite_file(cfg.db_url)
    if path is not None and not path.is_file():
        return DatabaseState(shown, "absent")           # looking must not make it
    engine = db.make_engine(cfg.db_url)
    try:
        with db.read_only(engine) as conn:
            revision = db.database_revision(conn)
            if revision == db.SCHEMA_REVISION:
                return DatabaseState(shown, "ready", revision, None, _counts(conn, "tickets"),
                                     _counts(conn, "outbox"),
                                     _cluster(conn, cfg) if engine.dialect.name == "postgresql" else None)
            tables = db.maild_tables(conn)
            others = sorted(set(inspect(conn).get_table_names()) - tables - {db.VERSION_TABLE})
    except Exception as exc:
        problem = diagnose.of_database(exc, cfg.db_url)
        if problem is None:
            raise
        return DatabaseState(shown, "unreachable", None, problem)
    finally:
        engine.dispose()
    if revision is None and not tables:
        if engine.dialect.name == "sqlite" and not others:      # made on first use, like a missing file
            return DatabaseState(shown, "absent")
        if engine.dialect.name == "sqlite":
            return DatabaseState(shown, "unusable", None,
                                 diagnose.of_database(db.ForeignDatabase(", ".join(others[:5])), cfg.db_url))
        return DatabaseState(shown, "no-schema", None, diagnose.of_database(db.SchemaMissing(), cfg.db_url))
    problem = diagnose.Problem(f"the database schema is at revision {revision or 'none (before revisions)'}, "
                               f"this maild works with {db.SCHEMA_REVISION}: run 'maild db upgrade'", Exit.CONFIG)
    return DatabaseState(shown, "outdated", revision, problem)


def _counts(conn, table: str) -> dict[str, int]:
    return {status: n for status, n in conn.execute(text(f"SELECT status, COUNT(*) FROM {table} GROUP BY status"))}


def _spool(root: Path) -> dict[str, int]:
    def count(folder: str) -> int:
        with contextlib.suppress(FileNotFoundError):
            return sum(1 for e in os.scandir(root / folder) if not e.name.endswith(".reason"))
        return 0
    return {"waiting": count("incoming") + count("active"), "quarantined": count("quarantine")}


def _cluster(conn, cfg: Config) -> dict:
    """The shared spool and every node the database has heard of: alive (a heartbeat within
    cluster.ALIVE_SECONDS), how long ago, the claims it holds, its local spool, its last error."""
    from maild.acting import cluster
    spool = {state: n for state, n in conn.execute(text("SELECT state, COUNT(*) FROM spool GROUP BY state"))}
    claims = dict(conn.execute(text("SELECT node, COUNT(*) FROM spool WHERE state = 'incoming' "
                                    "AND claim IS NOT NULL AND lease_until > now() GROUP BY node")).all())
    expired = conn.execute(text("SELECT COUNT(*) FROM spool WHERE state = 'incoming' AND claim IS NOT NULL "
                                "AND lease_until <= now()")).scalar_one()
    due, failed = cluster.outbox_depths(conn)
    now = conn.execute(text("SELECT now()")).scalar_one()
    nodes = [{"name": n.name, "pid": n.pid, "alive": (now - n.seen_at).total_seconds() <= cluster.ALIVE_SECONDS,
              "seen_seconds_ago": round((now - n.seen_at).total_seconds(), 1),
              "started_at": n.started_at.isoformat(), "claims": claims.get(n.name, 0),
              "local_spool": n.facts.get("local_spool", 0), "last_error": n.facts.get("last_error", ""),
              "listen": n.facts.get("listen", ""), "this": n.name == cfg.cluster.node_name}
             for n in cluster.nodes(conn)]
    return {"node": cfg.cluster.node_name, "lease": cfg.cluster.lease,
            "spool": {"incoming": spool.get("incoming", 0), "done": spool.get("done", 0),
                      "quarantined": spool.get("quarantined", 0), "expired_claims": expired},
            "outbox_due": due, "outbox_failed": failed, "nodes": nodes}


def _cluster_lines(c: dict) -> list[str]:
    spool = c["spool"]
    out = [f"shared spool:  {spool['incoming']} waiting ({spool['expired_claims']} on expired claims), "
           f"{spool['quarantined']} quarantined, {spool['done']} done; outgoing: {c['outbox_due']} due now, "
           f"{c['outbox_failed']} failed",
           f"nodes:         this one is {c['node']!r}"
           + ("" if c["nodes"] else "; none seen yet (serve writes a heartbeat)")]
    for n in c["nodes"]:
        out.append(f"               {n['name']}{' (this)' if n['this'] else ''}: "
                   + ("alive" if n["alive"] else "NOT SEEN") + f" {n['seen_seconds_ago']} s ago, pid {n['pid']}, "
                   f"{n['claims']} claimed, {n['local_spool']} in its own spool"
                   + (f", last error: {n['last_error']}" if n["last_error"] else ""))
    return out
