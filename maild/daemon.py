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
import select
import signal
import threading

from .app import App
from .config import Config
from .receive import smtp_factory

log = logging.getLogger("maild.daemon")


class Wakeup:
    """The worker's side of the kick pipe: wait up to a timeout for any byte."""

    def __init__(self, fd: int):
        self.fd = fd

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                os.read(self.fd, 65536)
            except BlockingIOError:
                pass
        return bool(ready)


def _worker_main(config: Config, wake_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when we stop
    app = App.create(config)
    signal.signal(signal.SIGHUP, lambda *_: app.organisation.reload())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        app.worker().run_forever(done, Wakeup(wake_fd))
    finally:
        app.close()


class Daemon:
    def __init__(self, app: App):
        self.app = app
        self.ctx = mp.get_context("fork")
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.child: mp.process.BaseProcess | None = None

    def kick(self) -> None:
        try:
            os.write(self.wake_w, b"!")
        except BlockingIOError:
            pass   # the pipe is full: the worker has plenty of wake-ups waiting already

    def _start_worker(self) -> None:
        self.child = self.ctx.Process(target=_worker_main, name="maild-worker",
                                      args=(self.app.config, self.wake_r), daemon=True)
        self.child.start()
        log.info("worker started (pid %s)", self.child.pid)

    def _reload(self) -> None:
        self.app.organisation.reload()
        if self.child is not None and self.child.pid:
            os.kill(self.child.pid, signal.SIGHUP)

    async def serve(self) -> None:
        cfg = self.app.config
        self._start_worker()
        handler = self.app.intake(on_accept=self.kick)
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
        if self.child is not None and self.child.is_alive():
            self.child.terminate()          # SIGTERM: the worker finishes its batch and exits
            self.child.join(timeout=30)
        log.info("stopped")


def serve(app: App) -> None:
    asyncio.run(Daemon(app).serve())
