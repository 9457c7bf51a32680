"""The HTTP side of ``maild web`` (aiohttp: one well-kept package that is both the server and
the request parser with body limits, on the asyncio the SMTP intake already uses).

Every page is plain HTML rendered by Jinja2 with autoescaping (text from the rules and, later,
from mail is never markup), works without JavaScript, and goes out with headers that allow
nothing but itself: a strict Content-Security-Policy, no framing, no sniffing, no referrer.
"""
from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import jinja2
from aiohttp import web

from maild.deciding.policy import OrganisationHolder
from maild.web import catalogue

MAX_BODY = 64 * 1024        # no form yet: nothing big is ever read
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Pages:
    """The page templates (``templates/web/``), autoescaped."""

    def __init__(self, templates_dir: Path):
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir / "web")),
                                      autoescape=True, undefined=jinja2.StrictUndefined)

    def render(self, name: str, status: int = 200, **context) -> web.Response:
        return web.Response(text=self.env.get_template(name).render(**context), status=status,
                            content_type="text/html", charset="utf-8")


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:       # 404, 405: a page in Russian, not aiohttp's English
        pages: Pages = request.app["pages"]
        response = pages.render("error.html.j2", status=exc.status, status_code=exc.status)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "GET, HEAD")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Server"] = "maild"        # not the library and its version
    return response


def make_app(organisation: OrganisationHolder, templates_dir: Path) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=MAX_BODY)
    app["pages"] = Pages(templates_dir)

    async def categories(request: web.Request) -> web.Response:
        org = organisation()          # the rules in force (run() re-reads them when they change)
        return app["pages"].render("categories.html.j2", sections=catalogue.build(org),
                                   hints=catalogue.KIND_HINT_RU)

    app.router.add_get("/categories", categories)
    return app


RULES_LOOK_SECONDS = 2.0     # as the daemon's change watch: an admin's edit shows within seconds


def run(app: web.Application, organisation: OrganisationHolder, host: str, port: int,
        ready: Callable[[str], None], sock: socket.socket | None = None) -> None:
    """Serve until SIGINT/SIGTERM, re-reading the rules when they change (and on SIGHUP);
    ``ready`` gets the address once it listens (an OSError if it cannot: the caller words it)."""
    async def watch_rules() -> None:
        while True:
            await asyncio.sleep(RULES_LOOK_SECONDS)
            await asyncio.to_thread(organisation.reload_if_changed)   # loading the model takes a moment

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, organisation.reload))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        watcher = asyncio.create_task(watch_rules())
        try:
            # ``sock``: bound by `maild serve` before it forked us, so a taken port is its one sentence.
            await (web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)).start()
            ready(f"http://{host}:{port}/categories")
            await stop.wait()
        finally:
            watcher.cancel()
            await runner.cleanup()

    asyncio.run(serve())
