"""``maild web``: the employees' pages in a process of their own (issue 15; the catalogue first)."""
from __future__ import annotations

import logging

import click

from maild import config as config_mod
from maild.acting import diagnose
from maild.admin.cli.base import EX_CONFIG, Fail, _rules_only, command, main, require_web
from maild.config import ConfigError


@command(main, "web")
@click.option("--listen", metavar="HOST:PORT", help="Listen here (default web.listen, 127.0.0.1:8025).")
@click.pass_context
def web(ctx: click.Context, listen: str | None) -> None:
    """Serve the employees' pages: the category catalogue at /categories, from the rules in
    force (an edit shows within seconds, or at SIGHUP). Needs no data directory and no database."""
    from maild.deciding.policy import OrganisationHolder
    require_web()
    from maild.web.server import make_app, run
    cfg, _ = _rules_only(ctx)
    try:
        host, port = (cfg.web.host, cfg.web.port) if listen is None else \
            config_mod.listen_address("--listen", listen, "web.listen")
    except ConfigError as exc:
        raise Fail(str(exc), EX_CONFIG) from None
    organisation = OrganisationHolder(cfg.rules_dir, cfg.templates_dir)
    app = make_app(organisation, cfg.templates_dir)
    log = logging.getLogger("maild.web")
    try:
        run(app, organisation, host, port, lambda url: log.info("the employees' pages are at %s; Ctrl-C stops", url))
    except OSError as exc:
        raise Fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", diagnose.listen_kind(exc)) from None
    log.info("stopped")
