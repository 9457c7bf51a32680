"""``maild web``: the employees' pages in a process of their own (issue 15): the form, the
category catalogue and "мои заявки". It writes only into the spool and ``<data_dir>/web/``."""
from __future__ import annotations

import logging

import click

from maild import config as config_mod
from maild.acting import diagnose
from maild.admin.cli.base import EX_CONFIG, Fail, _app, command, echo, main, require_web
from maild.config import ConfigError


@command(main, "web")
@click.option("--listen", metavar="HOST:PORT", help="Listen here (default web.listen, 127.0.0.1:8025).")
@click.option("--revoke", metavar="ADDRESS", help="End every mailed link and signed-in browser of this address, "
                                                  "then exit (the pages need no restart).")
@click.pass_context
def web(ctx: click.Context, listen: str | None, revoke: str | None) -> None:
    """Serve the employees' pages: the request form at /, the category catalogue at
    /categories, "мои заявки" at /my. The rules are re-read when they change (or at SIGHUP).
    Requests and replies typed there go into the spool, as mail does."""
    require_web()
    from maild.web.server import make_app, run, site_for
    from maild.web.state import WebState
    app = _app(ctx)
    cfg = app.config
    if revoke is not None:
        generation = WebState(cfg.data_dir / "web", cfg.web.link_hours * 3600).revoke(revoke.strip())
        echo(f"every link and session of {revoke.strip().lower()} ended (generation {generation})")
        return
    try:
        host, port = (cfg.web.host, cfg.web.port) if listen is None else \
            config_mod.listen_address("--listen", listen, "web.listen")
    except ConfigError as exc:
        raise Fail(str(exc), EX_CONFIG) from None
    site = site_for(app)
    if listen is not None and not cfg.web.url:
        site.public_url = f"http://{host}:{port}"      # the forms' origin is where they are served
    log = logging.getLogger("maild.web")
    try:
        run(make_app(site), app.organisation, host, port,
            lambda url: log.info("the employees' pages are at %s; Ctrl-C stops", url))
    except OSError as exc:
        raise Fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", diagnose.listen_kind(exc)) from None
    finally:
        site.records.close()
    log.info("stopped")
