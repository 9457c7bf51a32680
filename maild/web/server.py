"""The HTTP side of ``maild web`` (aiohttp: one well-kept package that is both the server and
the request parser with body limits, on the asyncio the SMTP intake already uses).

    GET  /categories           the catalogue of categories (catalogue.py)
    GET  /                     the form: address, category, subject, description, files
    POST /                     keep the request (state.py), ask the worker to mail the link
    GET  /confirm/TOKEN        what was typed, and a button; POST files it into the spool
    GET  /my                   signed in: the person's tickets; else the address to sign in
    POST /my                   ask the worker to mail the sign-in link
    GET  /my/enter/TOKEN       a button; POST signs the browser in (a cookie)
    GET  /my/NUMBER            one ticket's conversation and a reply box; POST files the reply
    POST /my/leave             "выйти везде": every link and session of the address ends

A GET never acts (mail scanners open every link); every POST carries a signed field bound to
a ``SameSite=Strict`` cookie and must come from our own pages (``Origin``,
``Sec-Fetch-Site``). Everything this process makes goes into the spool as a message
(compose.py); it reads the database only for "мои заявки" (records.py) and never writes it.
Every page is plain HTML rendered by Jinja2 with autoescaping (text from the rules and from
mail is never markup), works without JavaScript, and goes out with headers that allow
nothing but itself.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from maild.deciding.policy import OrganisationHolder
from maild.web.gate import Gate
from maild.web.my_pages import MyPages
from maild.web.records import Unavailable
from maild.web.request_pages import RequestPages
from maild.web.site import MAX_BODY, Site, refusal, site_for

__all__ = ["make_app", "run", "site_for"]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",         # a link's token never leaves in a Referer
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
log = logging.getLogger("maild.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SITE = web.AppKey("site", Site)


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    pages = request.app[SITE].pages
    try:
        response = await handler(request)
    except web.HTTPRedirection as exc:      # a redirect carries the headers below too
        response = web.Response(status=exc.status, headers={"Location": exc.headers["Location"]})
    except Unavailable:
        response = refusal(pages, 503, "Список заявок сейчас недоступен",
                           "Попробуйте через несколько минут. Ваши заявки можно получить и письмом: напишите "
                           "в службу поддержки письмо с первой строкой «#история».")
    except web.HTTPException as exc:       # 404, 405, 413: a page in Russian, not aiohttp's English
        response = pages.render("error.html.j2", status=exc.status, status_code=exc.status)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "GET, HEAD")
    except Exception:                       # a bug of ours: logged whole, the person sees a page
        log.exception("%s %s failed", request.method, request.path)
        response = pages.render("error.html.j2", status=500, status_code=500)
    response.headers.update(SECURITY_HEADERS)
    if request.app[SITE].secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    response.headers["Server"] = "maild"        # not the library and its version
    return response


def make_app(site: Site) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=MAX_BODY)
    app[SITE] = site
    asking, mine = RequestPages(site), MyPages(site)
    for path, handler in (("/categories", asking.categories), ("/style.css", asking.stylesheet),
                          ("/", asking.form), ("/sent", asking.sent), ("/confirm/{token}", asking.confirm_page),
                          ("/my", mine.my), ("/my/sent", mine.sign_in_sent), ("/my/enter/{token}", mine.enter_page),
                          ("/my/{number}", mine.ticket)):
        app.router.add_get(path, handler)          # and HEAD
    for path, handler in (("/", asking.submit), ("/confirm/{token}", asking.confirm), ("/my", mine.sign_in),
                          ("/my/leave", mine.leave), ("/my/enter/{token}", mine.enter), ("/my/{number}", mine.reply)):
        app.router.add_post(path, handler)
    return app


RULES_LOOK_SECONDS = 2.0     # as the daemon's change watch: an admin's edit shows within seconds


KEEPALIVE_SECONDS = 15


async def listen(runner: web.AppRunner, gate: Gate, host: str, port: int,
                 sock: socket.socket | None = None) -> asyncio.Server:
    """The pages on ``host:port`` (or ``sock``, bound by `maild serve` before it forked us, so
    a taken port is its one sentence), every connection through the gate."""
    assert runner.server is not None        # set up
    factory = gate.protocol(runner.server)
    loop = asyncio.get_running_loop()
    if sock is not None:
        return await loop.create_server(factory, sock=sock, backlog=128)
    return await loop.create_server(factory, host, port, backlog=128, reuse_address=True)


_accept_said = [0.0]


def _quiet_accept(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The accept loop's trouble (out of files) is one line a minute, not a traceback a try."""
    if "accept" in str(context.get("message", "")):
        if loop.time() - _accept_said[0] > 60:
            _accept_said[0] = loop.time()
            log.warning("web: cannot accept connections: %s", context.get("exception") or context.get("message"))
        return
    loop.default_exception_handler(context)


class _OneLine(logging.Filter):
    """aiohttp logs a traceback for every malformed request it cannot parse (before any page
    runs): one line each is enough, or a stranger fills the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"[:500]
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def run(app: web.Application, organisation: OrganisationHolder, host: str, port: int,
        ready: Callable[[str], None], sock: socket.socket | None = None) -> None:
    """Serve until SIGINT/SIGTERM, re-reading the rules when they change (and on SIGHUP);
    ``ready`` gets the address once it listens (an OSError if it cannot: the caller words it)."""
    async def watch_rules() -> None:
        while True:
            await asyncio.sleep(RULES_LOOK_SECONDS)
            await asyncio.to_thread(organisation.reload_if_changed)   # loading the model takes a moment

    logging.getLogger("aiohttp.server").addFilter(_OneLine())

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, organisation.reload))
        loop.set_exception_handler(_quiet_accept)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE_SECONDS)
        await runner.setup()
        watcher = asyncio.create_task(watch_rules())
        server = None
        try:
            server = await listen(runner, Gate(), host, port, sock)
            ready(f"http://{host}:{port}/")
            await stop.wait()
        finally:
            watcher.cancel()
            if server is not None:
                server.close()
            await runner.cleanup()

    asyncio.run(serve())
