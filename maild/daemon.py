"""``maild serve``: the SMTP listener and the worker, as two processes.

The listener (this process, asyncio + aiosmtpd) only spools; the worker (a child process,
so parsing and database work run on the other core) drains the spool and sends mail. The
listener wakes the worker after each accepted message and restarts it if it dies.
Signals: SIGHUP reloads the rule files in both processes (invalid files are refused and
the old rules stay); SIGTERM/SIGINT stop both cleanly.
Config: everything under ``[smtp]`` and ``[worker]``; see README.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import signal
import threading

from .app import App
from .config import Config
from .receive import smtp_factory

log = logging.getLogger("maild.daemon")


def _worker_main(config: Config, kick, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when we stop
    app = App.create(config)
    signal.signal(signal.SIGHUP, lambda *_: app.organisation.reload())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (stop.wait(), done.set()), daemon=True).start()
    try:
        app.worker().run_forever(done, kick)
    finally:
        app.close()


class Daemon:
    def __init__(self, app: App):
        self.app = app
        self.ctx = mp.get_context("fork")
        self.kick = self.ctx.Event()
        self.stop = self.ctx.Event()
        self.child: mp.process.BaseProcess | None = None

    def _start_worker(self) -> None:
        self.child = self.ctx.Process(target=_worker_main, name="maild-worker",
                                      args=(self.app.config, self.kick, self.stop), daemon=True)
        self.child.start()
        log.info("worker started (pid %s)", self.child.pid)

    def _reload(self) -> None:
        self.app.organisation.reload()
        if self.child is not None and self.child.pid:
            os.kill(self.child.pid, signal.SIGHUP)

    async def serve(self) -> None:
        cfg = self.app.config
        self._start_worker()
        handler = self.app.intake(on_accept=self.kick.set)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            smtp_factory(handler, cfg.smtp.max_message_size, cfg.hostname, cfg.smtp.data_timeout),
            host=cfg.smtp.host, port=cfg.smtp.port)
        log.info("listening for SMTP on %s:%s", cfg.smtp.host, cfg.smtp.port)
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            if not stopping.is_set() and self.child is not None and not self.child.is_alive():
                log.error("worker exited (code %s); restarting it", self.child.exitcode)
                self._start_worker()
        server.close()
        await server.wait_closed()
        self.stop.set()
        self.kick.set()
        if self.child is not None:
            self.child.join(timeout=30)
        log.info("stopped")


def serve(app: App) -> None:
    asyncio.run(Daemon(app).serve())
