"""Composition root: builds every part from a ``Config`` and passes it in. Nothing global."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from maild import metrics
from maild.acting import db, diagnose
from maild.acting.actions import Actions
from maild.acting.blobs import BlobStore
from maild.acting.cluster import Heartbeat
from maild.config import Config, ConfigError
from maild.deciding import auth
from maild.deciding.organisation import Organisation
from maild.deciding.policy import OrganisationHolder
from maild.intake.receive import IntakeHandler
from maild.intake.shared import SharedSpool
from maild.intake.spool import Spool
from maild.metrics import Metrics
from maild.sending.relay import Relay
from maild.sending.render import Renderer
from maild.values import Clock, LocalTime, SystemClock
from maild.worker import Worker

log = logging.getLogger("maild")


def check_notifications(config: Config, org: Organisation) -> None:
    """The config's ``[notifications.<DEPT>]`` name departments the rules have."""
    codes = {d.code for d in org.departments}
    for code in sorted({code for code, _, _ in config.notifications.settings} - codes - {"*"}):
        raise ConfigError(f"[notifications.{code}]: the rules have no department {code} "
                          f"(they have {', '.join(sorted(codes))})")


@dataclass
class App:
    config: Config
    organisation: OrganisationHolder
    spool: Spool
    engine: Engine | None = None
    _sessions: sessionmaker[Session] | None = None
    clock: Clock = field(default_factory=SystemClock)   # the one clock: storage is UTC
    _metrics: Metrics | None = None

    @classmethod
    def create(cls, config: Config) -> App:
        db.check_url(config.db_url)             # one sentence now, not a traceback later
        organisation = OrganisationHolder(config.rules_dir, config.templates_dir, config.timezone)
        check_notifications(config, organisation())
        if (problem := diagnose.of_data_dir(config.data_dir)) is not None:
            raise problem
        try:    # the configuration first: a mistake in it makes no directories
            config.data_dir.mkdir(parents=True, exist_ok=True)
            spool = (SharedSpool(config.spool_dir, lambda: db.make_engine(config.db_url, config.cluster.lease),
                                 config.cluster.node_name, config.cluster.lease)
                     if db.is_postgresql(config.db_url) else Spool(config.spool_dir))
        except OSError as exc:
            raise diagnose.of_directory(exc, config.data_dir) from None
        return cls(config=config, organisation=organisation, spool=spool)

    @property
    def sessions(self) -> sessionmaker[Session]:
        # Connect lazily: intake must work while the database is away.
        if self._sessions is None:
            self.engine = db.make_engine(self.config.db_url, self.config.cluster.lease)
            self._sessions = db.sessions(self.engine)
        return self._sessions

    @property
    def local(self) -> LocalTime:
        """How times read to people: the configured zone (storage stays UTC)."""
        return LocalTime(self.config.timezone)

    def init_db(self, create: bool | None = None) -> bool:
        """Every command's first use of the database (no Alembic here): one at the code's
        revision is used as it is; an empty one is made only when it is the embedded SQLite
        file (``create`` None; True: made whatever it is), saying so in one line; otherwise
        db.SchemaMissing or db.SchemaOutdated. True when it was made now."""
        if (problem := diagnose.of_sqlite_file(self.config.db_url)) is not None:
            raise problem
        self.sessions  # noqa: B018 - creates the engine
        assert self.engine is not None      # made with the sessions
        embedded = self.engine.dialect.name == "sqlite"
        made = db.init_schema(self.engine, create=embedded if create is None else create,
                              only_into_empty=create is None)
        if made:
            log.info("made a new database: %s (its first use; 'maild status' shows what is in use)",
                     diagnose.shown(self.config.db_url))
        return made

    def migrate_db(self, create: bool = False) -> list[str]:
        """``maild db upgrade`` (``create``: ``db init``) through the revisions; what was done."""
        from maild.acting import migrate  # Alembic: only the db commands load it
        engine = self.sessions.kw["bind"]
        return migrate.init(engine) if create else migrate.upgrade(engine)

    @property
    def metrics(self) -> Metrics:
        """This process's counters ([metrics] listen; serve's parent prepared their directory)."""
        if self._metrics is None:
            self._metrics = metrics.for_process(self.config.metrics.enabled, self.config.cluster.node_name)
        return self._metrics

    def intake(self, on_accept=None) -> IntakeHandler:
        counted = self.metrics

        def accepted() -> None:
            counted.accepted()
            if on_accept is not None:
                on_accept()
        return IntakeHandler(self.spool, self.organisation, accepted)

    def worker(self, parser_process: bool = False) -> Worker:
        """The pipeline; with ``parser_process`` (``maild serve``) parsing runs in a process of
        its own, overlapped with the database work (``worker.parse_processes``)."""
        cfg = self.config
        factory = None
        if parser_process and cfg.worker.parse_processes > 0:
            from maild.children import child_setup  # parser processes: die with the worker, no signals of its
            factory = lambda: ProcessPoolExecutor(cfg.worker.parse_processes,  # noqa: E731
                                                  mp_context=mp.get_context("fork"), initializer=child_setup)
        return Worker(cfg, self.organisation, self.sessions, self.spool,
                      Renderer(cfg.templates_dir, cfg.hostname, self.local), BlobStore(cfg.attachments_dir),
                      Relay(cfg.relay, cfg.outbox_maildir, cfg.hostname, auth.load_secret(cfg.auth, cfg.data_dir),
                            self.clock),
                      factory, self.clock, self.metrics)

    def heartbeat(self) -> Heartbeat | None:
        """A cluster node's heartbeat (PostgreSQL); one node on SQLite has nobody to tell."""
        cfg = self.config
        if not db.is_postgresql(cfg.db_url):
            return None
        self.sessions  # noqa: B018 - creates the engine
        assert self.engine is not None
        return Heartbeat(self.engine, cfg.cluster.node_name, os.getpid(), self.clock.now(),
                         f"{cfg.smtp.host}:{cfg.smtp.port}")

    def engine_begin(self):
        """A transaction on the database (the command line's writes)."""
        self.sessions  # noqa: B018 - creates the engine
        return self.engine.begin()

    def actions(self, conn) -> Actions:
        """The writer for the command line's own mail (digests, reports), on ``conn``."""
        cfg = self.config
        return Actions(conn, Renderer(cfg.templates_dir, cfg.hostname, self.local), BlobStore(cfg.attachments_dir),
                       cfg.attachments, None, auth.load_secret(cfg.auth, cfg.data_dir), cfg.notifications,
                       cfg.loop_guard, self.clock)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        self.spool.close()
