"""``maild serve``, ``drain``, ``inject``, ``db`` and ``config``: running the daemon and setting it up."""
from __future__ import annotations

import json
import logging
import sys

import click

from maild.acting import db, diagnose
from maild.admin.cli.base import (
    EX_CONFIG,
    EX_DATAERR,
    EX_NOUSER,
    EX_TEMPFAIL,
    Fail,
    _app,
    _rules_only,
    command,
    echo,
    main,
    read_mail,
    require_web,
    using_database,
)
from maild.app import App, check_notifications
from maild.config import ConfigError, is_mail_address
from maild.values import Envelope, SystemClock


@command(main)
@click.option("--smtp", "listen", metavar="HOST:PORT", help="Listen here (default smtp.listen).")
@click.option("--web", "with_web", is_flag=True, help="Also serve the employees' pages (as web.enabled).")
@click.option("--listeners", type=click.IntRange(0, 64), default=None,
              help="SMTP listener processes on the port (default smtp.listeners; 0: one per two cores).")
@click.pass_context
def serve(ctx: click.Context, listen, with_web: bool, listeners: int | None) -> None:
    """Listen for SMTP and process mail continuously (and serve the web pages with --web or
    web.enabled)."""
    from dataclasses import replace

    from maild.daemon import ListenError, serve as run
    ctx.obj["listen"] = listen
    app = _app(ctx)
    if with_web:
        app.config = replace(app.config, web=replace(app.config.web, enabled=True))
    if listeners is not None:
        app.config = replace(app.config, smtp=replace(app.config.smtp, listeners=listeners))
    if app.config.web.enabled:
        require_web()       # here, once: not a child failing to start every second
    try:
        app.spool.check_writable()
    except OSError as exc:
        raise Fail.of(diagnose.of_directory(exc, app.config.data_dir)) from None
    try:
        app.init_db()
    except Exception as exc:
        problem = diagnose.of_database(exc, app.config.db_url)
        if problem is None:
            raise
        if not problem.temporary:       # waiting will not mend it: say so and stop
            raise Fail.of(problem) from None
        logging.getLogger("maild").warning("%s; intake runs, processing waits", problem.sentence)
    try:
        run(app)
    except ListenError as exc:
        raise Fail(str(exc), exc.code) from None

@command(main)
@click.pass_context
def drain(ctx: click.Context) -> None:
    """Process everything waiting (inbound, then due outgoing mail) and exit."""
    app = _app(ctx)
    with using_database(app):
        worker = app.worker()
        app.spool.recover(min_age=600)   # leave a running daemon's work in progress alone
        summary = worker.drain()
    echo(summary.line())
    if summary.deferred_db or summary.send_waits_for_db:
        sys.exit(EX_TEMPFAIL)

@command(main)
@click.argument("file", default="-", type=click.Path(allow_dash=True, path_type=str, readable=False))
@click.option("--rcpt", "rcpts", multiple=True, required=True, help="Envelope recipient (repeatable).")
@click.option("--sender", default=None, help="Envelope sender (default: the message's From; "
              "give '' for the null sender of a bounce).")
@click.pass_context
def inject(ctx: click.Context, file: str, rcpts: tuple[str, ...], sender: str) -> None:
    """Put a message into intake, as SMTP would (for MTA pipes and saved .eml files).

    Exit status (sysexits): 0 accepted, 65 unreadable input, 67 unknown recipient, 73 the spool
    cannot be made, 75 temporary failure (a full disk), 77 no permission to write, 78 configuration."""
    app = _app(ctx)
    org = app.organisation()
    unknown = [r for r in rcpts if not org.is_department_address(r)]
    if unknown:
        raise Fail(f"unknown recipient: {', '.join(unknown)}", EX_NOUSER)
    raw = read_mail(file, app.config.smtp.max_message_size)
    if sender and not is_mail_address(sender):
        raise Fail(f"--sender {sender!r} is not one mail address (give '' for the null sender)", EX_DATAERR)
    if sender is None:
        import email.utils
        from email.parser import BytesHeaderParser
        sender = email.utils.parseaddr(str(BytesHeaderParser().parsebytes(raw).get("From", "")))[1]
    try:
        item_id = app.spool.put(Envelope(mail_from=sender, rcpt_to=tuple(rcpts), peer="inject"), raw)
    except OSError as exc:
        problem = diagnose.of_directory(exc, app.config.spool_dir)
        raise Fail(f"cannot spool the message: {problem.sentence}", problem.code) from None
    echo(f"queued as {item_id}")

@command(main)
@click.option("--json", "as_json", is_flag=True, help="The same as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Which config, data directory and database maild uses from here, why, and whether they are
    ready; makes nothing. Exit status 0 when the daemon could start, else what stops it (sysexits)."""
    from maild.admin import status as status_mod
    cfg, (org, _, _) = _rules_only(ctx)
    try:        # what `serve` refuses at once, status refuses too
        db.check_url(cfg.db_url)
        check_notifications(cfg, org)
    except ConfigError as exc:
        raise Fail(str(exc), EX_CONFIG) from None
    found = status_mod.gather(cfg, org, ctx.find_root().obj["given_by"], SystemClock())
    if as_json:
        echo(json.dumps(found.as_dict(), ensure_ascii=False, indent=2))
    else:
        for line in found.lines():
            echo(line)
    ctx.exit(found.exit_code)

@main.group("db")
def db_group() -> None:
    """Database administration."""

def _migrate(ctx: click.Context, create: bool) -> App:
    """``db init`` and ``db upgrade``: Alembic is imported here, never by ``serve``."""
    if logging.getLogger().level > logging.DEBUG:          # the lines below say what was done
        logging.getLogger("alembic").setLevel(logging.WARNING)
    from maild.acting.migrate import MigrationError
    app = _app(ctx)
    try:
        lines = app.migrate_db(create=create)
    except MigrationError as exc:
        raise Fail(str(exc), EX_CONFIG) from None
    except Exception as exc:
        problem = diagnose.of_database(exc, app.config.db_url)
        if problem is None:
            raise
        raise Fail.of(problem) from None
    for line in lines:
        echo(line)
    return app


@command(db_group, "init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the schema from schema.sql, or upgrade it (safe to run again)."""
    app = _migrate(ctx, create=True)
    echo(f"schema ready in {diagnose.shown(app.config.db_url)}")


@command(db_group, "upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply the schema revisions the database lacks; one line per revision (docs/migrations.md)."""
    _migrate(ctx, create=False)



@main.group("config")
def config_group() -> None:
    """The configuration file."""

@config_group.command("reference")
def config_reference() -> None:
    """Print the configuration reference (Markdown, docs/config.md) from the schema."""
    from maild.admin import configref
    click.echo(configref.render(), nl=False)
