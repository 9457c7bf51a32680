"""``maild serve``: the SMTP listener, the worker and the sender, as separate processes.

The listener (this process, asyncio + aiosmtpd) only spools; the worker (a child process,
with a parser process of its own) drains the spool into the database; the sender relays
the outbox. Worker and sender run at a lower CPU priority than the listener. The
listener wakes the worker after each accepted message and restarts it if it dies.
Signals: SIGHUP reloads the rule files in every process (invalid files are refused and
the old rules stay); a change watch does the same within a second or so of an edit;
SIGTERM/SIGINT stop everything cleanly.
Failure: a worker or sender that dies is started again by the listener (the spool and the
outbox keep their work); the listener failing to bind is a one-line error and exit 75.
Security: children drop the listener's sockets and signal descriptor (children.py) and stop
with the parent; nothing runs as root (systemd/maild.service sets the user).
Listeners: with ``smtp.listeners`` above 1 (default: one per two cores) this process and N-1
listener children each accept on their own ``SO_REUSEPORT`` socket of the one port.
systemd: READY/RELOADING/STOPPING and the watchdog through ``sdnotify.py`` (Type=notify).
Metrics: with ``[metrics] listen`` this process serves every process's counts (metrics.py).
Config: everything under ``[smtp]`` and ``[worker]``; see docs/config.md.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import replace

from maild import eventloop, metrics
from maild.acting import cluster, diagnose
from maild.app import App
from maild.children import child_setup
from maild.config import Config, SmtpConfig
from maild.intake.receive import smtp_factory
from maild.sdnotify import Notifier
from maild.values import Exit

log = logging.getLogger("maild.daemon")



def where_mail_goes(cfg: Config, addresses: list[str]) -> list[str]:
    """What a newcomer needs after ``make run``: where the mail maild sends goes, how to
    read it, how to stop (issue 14)."""
    lines = [f"data dir {cfg.data_dir}, database {diagnose.shown(cfg.db_url)} ('maild status' says why these)"]
    if cfg.relay.host:
        lines.append(f"mail maild sends goes to the relay {cfg.relay.host}:{cfg.relay.port}")
    else:
        lines.append(f"mail maild sends goes to the Maildir {cfg.outbox_maildir} (no relay configured); "
                     f"read it with: mutt -f {cfg.outbox_maildir}")
    return lines + [f"write to {', '.join(addresses)} (for instance: swaks --server {cfg.smtp.host}:"
                    f"{cfg.smtp.port} --to {addresses[0] if addresses else '...'}); Ctrl-C stops"]


class Wakeup:
    """The worker's side of the kick pipe: wait up to a timeout for any byte."""

    def __init__(self, fd: int):
        self.fd = fd

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self.fd, 65536)
        return bool(ready)


def _worker_main(config: Config, wake_fd: int, send_fd: int, close_fds: tuple[int, ...] = ()) -> None:
    child_setup(close_fds, name="maild-worker")
    app = App.create(config)
    signal.signal(signal.SIGHUP, lambda *_: app.organisation.reload())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    worker = app.worker(parser_process=True)
    try:
        worker.run_forever(done, Wakeup(wake_fd), relay=False, heartbeat=app.heartbeat(),
                           processed=lambda: _kick(send_fd))
    finally:
        worker.close()
        app.close()


def _sender_main(config: Config, send_r: int, send_w: int, close_fds: tuple[int, ...] = ()) -> None:
    child_setup(close_fds, name="maild-sender")
    app = App.create(config)
    signal.signal(signal.SIGHUP, lambda *_: app.organisation.reload())   # SIGHUP would kill it
    done = threading.Event()

    def stop(*_) -> None:
        done.set()
        _kick(send_w)       # ends the idle wait at once (a signal does not interrupt select)
    signal.signal(signal.SIGTERM, stop)
    try:
        app.worker().sender.send_forever(done, Wakeup(send_r))
    finally:
        app.close()


def _web_main(config: Config, web_fd: int, wake_fd: int, close_fds: tuple[int, ...] = ()) -> None:
    """``maild web`` as a child of ``serve``, on the socket the parent bound; what it puts
    into the spool wakes the worker as accepted mail does."""
    child_setup(close_fds, name="maild-web")
    from maild.web.server import make_app, run as run_web, site_for
    app = App.create(config)
    site = site_for(app)
    site.kick = lambda: _kick(wake_fd)
    sock = socket.socket(fileno=web_fd)
    try:
        run_web(make_app(site), app.organisation, config.web.host, config.web.port, lambda url: None, sock)
    finally:
        site.records.close()
        app.close()


def _listener_main(config: Config, listen_fd: int, wake_fd: int, close_fds: tuple[int, ...] = ()) -> None:
    """One more SMTP listener on the shared port (``smtp.listeners``): its own event loop,
    intake handler and group commit, at the listener's priority."""
    child_setup(close_fds, nice=False, name="maild-listener")
    app = App.create(config)
    try:
        eventloop.run(_listen_only(app, socket.socket(fileno=listen_fd), lambda: _kick(wake_fd)),
                      config.smtp.event_loop)
    finally:
        app.close()


async def _listen_only(app: App, sock: socket.socket, kick: Callable[[], None]) -> None:
    cfg, loop = app.config, asyncio.get_running_loop()
    server = await loop.create_server(smtp_factory(app.intake(on_accept=kick), _share(cfg), cfg.hostname),
                                      sock=sock)
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, app.organisation.reload)
    await stopping.wait()
    server.close()
    await server.wait_closed()


def _share(cfg: Config) -> SmtpConfig:
    """Each listener counts only its own sessions: the limits are shared out among them."""
    n = cfg.smtp.listener_count
    return replace(cfg.smtp, max_sessions=-(-cfg.smtp.max_sessions // n),
                   max_connections_per_client=-(-cfg.smtp.max_connections_per_client // n))


def _reuse_port_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to one address with SO_REUSEPORT; the kernel spreads new
    connections over them. The parent keeps them all open, so a listener that dies loses no
    connection: its socket's queue waits for the listener started in its place."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(socket.create_server((host, port), family=family, reuse_port=True, backlog=511))
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _depths(app: App) -> dict[str, float]:
    """The queue depths a scrape reads now; the outbox's only while the database answers."""
    out = {"spool_waiting": float(app.spool.pending())}
    with contextlib.suppress(Exception), app.sessions.kw["bind"].connect() as conn:
        out["outbox_due"], out["outbox_failed"] = map(float, cluster.outbox_depths(conn))
    return out


def _kick(wake_fd: int) -> None:
    with contextlib.suppress(BlockingIOError):   # the pipe is full: the worker has plenty of wake-ups waiting
        os.write(wake_fd, b"!")


class ListenError(Exception):
    """The SMTP port cannot be had (in use, or not allowed); ``code``: its sysexits kind."""

    def __init__(self, sentence: str, code: Exit = Exit.TEMPFAIL):
        super().__init__(sentence)
        self.code = code


class Daemon:
    def __init__(self, app: App):
        self.app = app
        self.ctx = mp.get_context("fork")
        self.wake_r, self.wake_w = os.pipe()        # the worker's: mail was accepted
        self.send_r, self.send_w = os.pipe()        # the sender's: the worker queued mail
        for fd in (self.wake_r, self.wake_w, self.send_r, self.send_w):
            os.set_blocking(fd, False)
        # name -> (target, args); the processes themselves are in self.children.
        self.roles: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {
            "worker": (_worker_main, (app.config, self.wake_r, self.send_w)),
            "sender": (_sender_main, (app.config, self.send_r, self.send_w))}
        self.children: dict[str, mp.process.BaseProcess] = {}
        self.listen_fds: tuple[int, ...] = ()   # children close these (a restart forks them)
        self.web_sock: socket.socket | None = None    # `[web] enabled`: bound here, served by the web child
        self.notifier = Notifier()

    def kick(self) -> None:
        _kick(self.wake_w)

    def _start(self, name: str) -> None:
        target, args = self.roles[name]
        own = args[1] if name.startswith("listener-") else None
        close = tuple(fd for fd in self.listen_fds if fd != own) + (
            () if name == "web" or self.web_sock is None else (self.web_sock.fileno(),))
        child = self.ctx.Process(target=target, name=f"maild-{name}", args=args + (close,), daemon=False)
        child.start()
        self.children[name] = child
        log.info("%s started (pid %s)", name, child.pid)

    def _reload(self) -> None:
        self.notifier.reloading()
        self.app.organisation.reload()
        self._signal_children()
        self.notifier.ready("rules reloaded")

    def _signal_children(self) -> None:
        for child in self.children.values():
            if child.pid and child.is_alive():
                os.kill(child.pid, signal.SIGHUP)

    async def serve(self) -> None:
        cfg = self.app.config
        if cfg.metrics.enabled:     # before any process makes its counters (this one's intake first)
            metrics.prepare(cfg.data_dir / "metrics")
        handler = self.app.intake(on_accept=self.kick)
        loop = asyncio.get_running_loop()
        count = cfg.smtp.listener_count
        try:
            if count == 1:
                server = await loop.create_server(smtp_factory(handler, cfg.smtp, cfg.hostname),
                                                  host=cfg.smtp.host, port=cfg.smtp.port)
            else:       # this process serves the first socket, a listener child each other one
                socks = _reuse_port_sockets(cfg.smtp.host, cfg.smtp.port, count)
                server = await loop.create_server(smtp_factory(handler, _share(cfg), cfg.hostname), sock=socks[0])
        except OSError as exc:
            raise ListenError(f"cannot listen on {cfg.smtp.host}:{cfg.smtp.port}: {exc.strerror or exc}",
                              diagnose.listen_kind(exc)) from None
        self.listen_fds = tuple(sock.fileno() for sock in server.sockets)
        if count > 1:
            self.listen_fds = tuple(sock.fileno() for sock in socks)
            for index, sock in enumerate(socks[1:], start=1):
                sock.set_inheritable(True)
                self.roles[f"listener-{index}"] = (_listener_main, (cfg, sock.fileno(), self.wake_w))
        if cfg.web.enabled:
            try:
                self.web_sock = socket.create_server((cfg.web.host, cfg.web.port))
            except OSError as exc:
                server.close()
                raise ListenError(f"cannot listen for the web pages on {cfg.web.host}:{cfg.web.port}: "
                                  f"{exc.strerror or exc}", diagnose.listen_kind(exc)) from None
            self.web_sock.set_inheritable(True)
            self.roles["web"] = (_web_main, (cfg, self.web_sock.fileno(), self.wake_w))
        if cfg.metrics.enabled:
            try:
                metrics.serve(cfg.metrics.host, cfg.metrics.port, cfg.cluster.node_name, lambda: _depths(self.app))
            except OSError as exc:
                server.close()
                raise ListenError(f"cannot serve the metrics on {cfg.metrics.host}:{cfg.metrics.port}: "
                                  f"{exc.strerror or exc}", diagnose.listen_kind(exc)) from None
            log.info("metrics at http://%s:%s/metrics", cfg.metrics.host, cfg.metrics.port)
        # The reading's dictionaries and model loaded once here are shared, copy-on-write, by
        # every child forked below (worker, parser processes, sender).
        self.app.organisation.reader.warm()
        for name in self.roles:
            self._start(name)
        log.info("listening for SMTP on %s:%s%s, event loop %s", cfg.smtp.host, cfg.smtp.port,
                 f" ({count} listener processes)" if count > 1 else "", eventloop.chosen(cfg.smtp.event_loop))
        if self.web_sock is not None:
            log.info("the employees' pages are at %s/", cfg.web.base_url)
        for line in where_mail_goes(cfg, [d.address for d in self.app.organisation().departments]):
            log.info("%s", line)
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        # Bound, the schema checked (serve's init_db), the children started: systemd may go on.
        self.notifier.ready(f"listening for SMTP on {cfg.smtp.host}:{cfg.smtp.port}")
        while not stopping.is_set():
            self.notifier.alive()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
            # The change watch: an edited rules file is taken (or refused) without a signal.
            if not stopping.is_set() and self.app.organisation.reload_if_changed():
                self._signal_children()
            for name, child in list(self.children.items()):
                if not stopping.is_set() and not child.is_alive():
                    log.error("%s exited (code %s); restarting it", name, child.exitcode)
                    self._start(name)
        self.notifier.stopping()
        server.close()
        await server.wait_closed()
        for child in self.children.values():
            if child.is_alive():
                child.terminate()       # SIGTERM: each finishes what it is doing and exits
        for child in self.children.values():
            child.join(timeout=30)
        log.info("stopped")


def serve(app: App) -> None:
    eventloop.run(Daemon(app).serve(), app.config.smtp.event_loop)
