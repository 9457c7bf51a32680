"""``maild serve``, ``drain``, ``inject``, ``db`` and ``config``: running the daemon and setting it up."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from maild.acting.db import SchemaOutdated, is_unavailable
from maild.admin.cli.base import (
    EX_CONFIG,
    EX_DATAERR,
    EX_NOUSER,
    EX_TEMPFAIL,
    Fail,
    _app,
    command,
    database_errors,
    echo,
    main,
)
from maild.app import App
from maild.values import Envelope


@command(main)
@click.option("--smtp", "listen", metavar="HOST:PORT", help="Listen here (default smtp.listen).")
@click.pass_context
def serve(ctx: click.Context, listen) -> None:
    """Listen for SMTP and process mail continuously."""
    from maild.daemon import ListenError, serve as run
    ctx.obj["listen"] = listen
    app = _app(ctx)
    try:
        app.init_db()
    except SchemaOutdated as exc:
        raise Fail(str(exc), EX_CONFIG) from None
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        logging.getLogger("maild").warning("database unavailable at start; intake runs, "
                                           "processing waits: %s", exc)
    try:
        run(app)
    except ListenError as exc:
        raise Fail(str(exc), EX_TEMPFAIL) from None

@command(main)
@click.pass_context
def drain(ctx: click.Context) -> None:
    """Process everything waiting (inbound, then due outgoing mail) and exit."""
    app = _app(ctx)
    worker = app.worker()
    app.spool.recover(min_age=600)   # leave a running daemon's work in progress alone
    with database_errors():
        summary = worker.drain()
    echo(summary.line())
    if summary.deferred_db or summary.send_waits_for_db:
        sys.exit(EX_TEMPFAIL)

@command(main)
@click.argument("file", default="-", type=click.Path(allow_dash=True, path_type=str))
@click.option("--rcpt", "rcpts", multiple=True, required=True, help="Envelope recipient (repeatable).")
@click.option("--sender", default=None, help="Envelope sender (default: the message's From; "
              "give '' for the null sender of a bounce).")
@click.pass_context
def inject(ctx: click.Context, file: str, rcpts: tuple[str, ...], sender: str) -> None:
    """Put a message into intake, as SMTP would (for MTA pipes and saved .eml files).

    Exit status (sysexits): 0 accepted, 65 unreadable input, 67 unknown recipient,
    75 temporary failure."""
    app = _app(ctx)
    org = app.organisation()
    unknown = [r for r in rcpts if not org.is_department_address(r)]
    if unknown:
        raise Fail(f"unknown recipient: {', '.join(unknown)}", EX_NOUSER)
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise Fail(f"cannot read {file}: {exc.strerror or exc}", EX_DATAERR) from None
    if not raw.strip():
        raise Fail(f"{'standard input' if file == '-' else file}: empty message", EX_DATAERR)
    if len(raw) > app.config.smtp.max_message_size:
        raise Fail(f"message is {len(raw)} bytes, over the limit of "
                   f"{app.config.smtp.max_message_size}", EX_DATAERR)
    if sender is None:
        import email.utils
        from email.parser import BytesHeaderParser
        sender = email.utils.parseaddr(str(BytesHeaderParser().parsebytes(raw).get("From", "")))[1]
    try:
        item_id = app.spool.put(Envelope(mail_from=sender, rcpt_to=tuple(rcpts), peer="inject"), raw)
    except OSError as exc:
        raise Fail(f"cannot spool the message, try again later: {exc}", EX_TEMPFAIL) from None
    echo(f"queued as {item_id}")

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
        if is_unavailable(exc):
            raise Fail(f"database unavailable: {exc}", EX_TEMPFAIL) from None
        raise
    for line in lines:
        echo(line)
    return app


@command(db_group, "init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the schema from schema.sql, or upgrade it (safe to run again)."""
    app = _migrate(ctx, create=True)
    echo(f"schema ready in {app.config.db_url.split('@')[-1]}")


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
