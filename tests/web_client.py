"""The web pages over real HTTP for the tests: ``maild web``'s own application on a loopback
port (in a thread, on the harness's data directory and database, so the real worker files
what it spools and the real sink receives what it sends), and a small browser-like client
that keeps cookies and sends what a browser sends with a form."""
from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import re
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from aiohttp import web

from maild.web.gate import Gate
from maild.web.server import listen, make_app, site_for
from maild.web.site import Site

from conftest import Harness, free_port

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"http://\S+?(/(?:confirm|my/enter)/[A-Za-z0-9_.\-]+)")


@dataclass
class Response:
    status: int
    headers: dict
    text: str

    @property
    def csrf(self) -> str:
        found = CSRF.search(self.text)
        assert found, self.text
        return found.group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Client:
    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None) -> Response:
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as r:
                return Response(r.status, dict(r.headers), r.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, dict(exc.headers), exc.read().decode("utf-8"))

    def get(self, path: str, headers: dict | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str], files: list[tuple[str, str, bytes]] = (),
             headers: dict | None = None, origin: str | None = "same") -> Response:
        """A form as a browser sends it: multipart, with Origin and Sec-Fetch-Site of our pages
        unless ``origin`` says otherwise (None: an older browser that sends neither)."""
        boundary = "----maild" + secrets.token_hex(8)
        body = b""
        for name, value in fields.items():
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n').encode() \
                + value.encode("utf-8") + b"\r\n"
        for name, filename, data in files:
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        sent = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if origin == "same":
            sent |= {"Origin": self.base, "Sec-Fetch-Site": "same-origin"}
        elif origin is not None:
            sent |= {"Origin": origin, "Sec-Fetch-Site": "cross-site"}
        return self.request("POST", path, body, sent | (headers or {}))

    def submit(self, path: str, fields: dict[str, str], **kwargs) -> Response:
        """GET the page, then POST its form with the field it carries."""
        page = self.get(path)
        return self.post(path, {"csrf": page.csrf, **fields}, **kwargs)


@contextlib.contextmanager
def serving(site: Site, gate: Gate | None = None):
    """The pages of ``site`` on a loopback port; yields the base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(site), access_log=None)
    port = free_port()
    site.public_url = f"http://127.0.0.1:{port}"        # as web.url would say
    loop.run_until_complete(runner.setup())
    server = loop.run_until_complete(listen(runner, gate or Gate(), "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(server.close)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        site.records.close()


@dataclass
class Pages:
    """The harness (SMTP intake, worker, sink) with its web pages beside it."""
    h: Harness
    site: Site
    base: str

    def client(self) -> Client:
        return Client(self.base)

    def link_in_mail_to(self, address: str) -> str:
        """The path of the newest link mailed to ``address`` (the worker drained first)."""
        self.h.drain()
        mails = [m for m in self.h.sent_to(address) if LINK.search(m.body)]
        assert mails, [m.subject for m in self.h.sink.messages]
        return LINK.search(mails[-1].body).group(1)


def pages_for(h: Harness, gate: Gate | None = None):
    site = site_for(h.app)
    return site, serving(site, gate)
