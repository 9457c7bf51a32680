"""What the web pages are made of: the page templates (``Pages``) and everything a page
uses (``Site``: the rules, the spool, the web state, the signer, the database's records,
the limits), made once from the configuration by ``site_for``."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from maild.deciding import auth
from maild.deciding.policy import OrganisationHolder
from maild.intake.spool import Spool
from maild.values import Envelope, LocalTime
from maild.web.limits import Limit
from maild.web.records import Records
from maild.web.state import WebState
from maild.web.tokens import Signer

if TYPE_CHECKING:
    from maild.app import App

MAX_BODY = 64 * 1024        # a form without files (sign in, a button) never needs more
FORM_COOKIE = "maild_form"
SESSION_COOKIE = "maild_session"
class Pages:
    """The page templates (``templates/web/``), autoescaped."""

    def __init__(self, templates_dir: Path, local: LocalTime | None = None):
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir / "web")),
                                      autoescape=True, undefined=jinja2.StrictUndefined)
        if local is not None:
            self.env.filters["when"] = local.when
        self.stylesheet = (templates_dir / "web" / "style.css").read_text(encoding="utf-8")

    def render(self, name: str, status: int = 200, **context) -> web.Response:
        return web.Response(text=self.env.get_template(name).render(**context), status=status,
                            content_type="text/html", charset="utf-8")


@dataclass
class Site:
    """What the pages use (``site_for`` makes it from the configuration)."""
    organisation: OrganisationHolder
    pages: Pages
    spool: Spool
    state: WebState
    signer: Signer
    records: Records
    hostname: str = "maild.localdomain"
    link_seconds: int = 24 * 3600
    max_upload: int = 18 * 1024 * 1024          # files in all: their mail must fit smtp.max_message_size
    public_url: str = "http://127.0.0.1:8025"    # web.url (or http://listen): the one origin of our forms
    per_client: Limit = field(default_factory=lambda: Limit(30))
    per_address: Limit = field(default_factory=lambda: Limit(5))
    kick: Callable[[], None] = lambda: None     # under `serve`: wake the worker (else it polls)

    def spool_put(self, envelope: Envelope, raw: bytes) -> None:
        self.spool.put(envelope, raw)
        self.kick()

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def origins(self) -> frozenset[str]:
        """Where our forms are (scheme, host and port): what a POST's ``Origin`` must name.
        Not the request's ``Host``: a rebound DNS name would make any page "ours"."""
        parts = urlsplit(self.public_url)
        ours = {f"{parts.scheme}://{parts.netloc}".lower()}
        if parts.hostname in ("127.0.0.1", "::1") and parts.port:
            ours.add(f"{parts.scheme}://localhost:{parts.port}")
        return frozenset(ours)


def refusal(pages: Pages, status: int, title: str, text: str) -> web.Response:
    return pages.render("notice.html.j2", status=status, title=title, text=text, link=None)


def site_for(app: App) -> Site:
    """The pages of this installation: its rules, spool, secret and database."""
    cfg = app.config
    link_seconds = cfg.web.link_hours * 3600
    return Site(app.organisation, Pages(cfg.templates_dir, app.local), app.spool,
                WebState(cfg.data_dir / "web", link_seconds), Signer(auth.load_secret(cfg.auth, cfg.data_dir)),
                Records(cfg.db_url), cfg.hostname, link_seconds,
                # base64 makes files a third larger in their mail, which must fit smtp.max_message_size
                max(0, cfg.smtp.max_message_size * 3 // 4 - MAX_BODY), cfg.web.base_url,
                Limit(cfg.web.per_client_hour), Limit(cfg.web.per_address_hour))
