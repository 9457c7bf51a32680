"""The command line for people and scripts: ``maild --help``."""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

import click

from . import config as config_mod, match, policy, store
from .app import App
from .config import ConfigError
from sqlalchemy.exc import DBAPIError

from .db import SchemaOutdated, is_unavailable
from .organisation import RulesError
from .spool import Envelope
from . import views

# sysexits.h, for `maild inject` behind an MTA pipe transport.
EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 0, 65, 67, 75, 78


def echo(message=None, err: bool = False) -> None:
    """Every line the command line prints: mail-borne text made harmless to a terminal first
    (views.terminal_safe: no escape sequences, no C1 controls, no direction overrides)."""
    click.echo(views.terminal_safe(message) if isinstance(message, str) else message, err=err)


class Fail(click.ClickException):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.exit_code = code


@contextlib.contextmanager
def database_errors():
    """Database trouble as a sentence and an exit status, never a traceback."""
    try:
        yield
    except DBAPIError as exc:
        text = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
        if any(sign in text for sign in ("no such table", "does not exist", "no such column", "has no column")):
            raise Fail(f"the database has no maild schema yet: run 'maild db init' ({text})", EX_CONFIG) from None
        if is_unavailable(exc):
            raise Fail(f"database unavailable: {text}", EX_TEMPFAIL) from None
        raise


def _app(ctx: click.Context) -> App:
    if "app" not in ctx.obj:
        opts = ctx.obj["opts"]
        try:
            cfg = config_mod.load(opts["config"], data_dir=opts["data_dir"], db=opts["db"],
                                  rules=opts["rules"], listen=ctx.obj.get("listen"))
            ctx.obj["app"] = App.create(cfg)
        except (ConfigError, RulesError) as exc:
            raise Fail(str(exc), EX_CONFIG) from None
        except OSError as exc:
            raise Fail(f"cannot use the data directory, try again later: {exc}", EX_TEMPFAIL) from None
        ctx.call_on_close(ctx.obj["app"].close)
    return ctx.obj["app"]


# The global options: accepted before the command (`maild --db URL drain`) and after it
# (`maild drain --db URL`); the later one wins.
GLOBAL_OPTIONS = (
    ("--config", "config", "MAILD_CONFIG", "TOML config file (env MAILD_CONFIG)."),
    ("--data-dir", "data_dir", "MAILD_DATA_DIR", "Where the SQLite file, spool, attachments and "
     "local outbox live (env MAILD_DATA_DIR; default var/)."),
    ("--db", "db", "MAILD_DB", "SQLAlchemy database URL (env MAILD_DB; default SQLite under the "
     "data dir)."),
    ("--rules", "rules", "MAILD_RULES", "Rules directory (env MAILD_RULES; default the project's rules/)."),
)


def _global_options(command, on_command: bool = False):
    for flag, name, env, help_text in reversed(GLOBAL_OPTIONS):
        kind = click.Path(path_type=Path) if name == "config" else None
        if on_command:
            command = click.option(flag, name, type=kind, help=help_text, expose_value=False,
                                   callback=_remember)(command)
        else:
            command = click.option(flag, name, type=kind, envvar=env, help=help_text)(command)
    return command


def _remember(ctx: click.Context, param: click.Parameter, value) -> None:
    if value is not None:
        ctx.find_root().obj["opts"][param.name] = value


def command(group, *args, **kwargs):
    """``group.command`` with the global options added."""
    def decorate(f):
        return group.command(*args, **kwargs)(_global_options(f, on_command=True))
    return decorate


@click.group()
@_global_options
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx: click.Context, config, data_dir, db, rules, verbose) -> None:
    """maild: an email-first helpdesk daemon."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO: too much for a mail server's log.
    logging.getLogger("mail.log").setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.ensure_object(dict)
    ctx.obj["opts"] = {"config": config, "data_dir": data_dir, "db": db, "rules": rules}


@command(main)
@click.option("--smtp", "listen", metavar="HOST:PORT", help="Listen here (default smtp.listen).")
@click.pass_context
def serve(ctx: click.Context, listen) -> None:
    """Listen for SMTP and process mail continuously."""
    from .daemon import ListenError, serve as run
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
    from .migrate import MigrationError
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


@main.group("rules")
def rules_group() -> None:
    """Check the rule files and try them on a mail."""


@command(rules_group, "check")
@click.pass_context
def rules_check(ctx: click.Context) -> None:
    """Validate every rules file and template; each error names file, line and what is wrong.

    Exit status 0 when all is well, 1 otherwise."""
    opts = ctx.find_root().obj["opts"]
    try:
        cfg = config_mod.load(opts["config"], data_dir=opts["data_dir"], db=opts["db"], rules=opts["rules"])
    except ConfigError as exc:
        raise Fail(str(exc), EX_CONFIG) from None
    errors = policy.check(cfg.rules_dir, cfg.templates_dir)
    if not errors:
        # The config names departments too: they must be the rules' (a renamed department
        # would silently lose its switches).
        org = policy.load_policy(cfg.rules_dir, cfg.templates_dir)[0]
        codes = {d.code for d in org.departments}
        errors += [f"{opts['config'] or 'config'}: [notifications.{code}]: the rules have no department {code} "
                   f"(they have {', '.join(sorted(codes))})"
                   for code in sorted({c for c, _, _ in cfg.notifications.settings} - codes - {"*"})]
    if errors:
        for error in errors:
            echo(error, err=True)
        raise Fail(f"{len(errors)} error(s); the rules in force stay as they were", 1)
    from .routing.reader import staleness
    org, table, reader = policy.load_policy(cfg.rules_dir, cfg.templates_dir)
    for warning in staleness(reader, org):
        echo(f"warning: {warning}", err=True)
    categories = sum(len(d.categories) for d in org.departments)
    echo(f"rules OK: {len(org.departments)} departments, {categories} categories, "
               f"{len(table)} rules ({cfg.rules_dir})")


def _rules_only(ctx: click.Context):
    """The configuration and the policy of the rules directory, no data directory touched."""
    opts = ctx.find_root().obj["opts"]
    try:
        cfg = config_mod.load(opts["config"], data_dir=opts["data_dir"], db=opts["db"], rules=opts["rules"])
        return cfg, policy.load_policy(cfg.rules_dir, cfg.templates_dir)
    except (ConfigError, RulesError) as exc:
        raise Fail(str(exc), EX_CONFIG) from None


def _existing_engine(cfg):
    """The database if it exists (read only here); None for a SQLite file not yet made."""
    from .db import make_engine
    url = cfg.db_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).is_file():
        return None
    return make_engine(url)


@command(rules_group, "train")
@click.option("--force", is_flag=True, help="Write the new model even if it is worse on the newest corrections.")
@click.option("--dry-run", is_flag=True, help="Train and report, write nothing.")
@click.option("--no-db", is_flag=True, help="Only the examples under rules/, not the staff corrections.")
@click.pass_context
def rules_train(ctx: click.Context, force: bool, dry_run: bool, no_db: bool) -> None:
    """Train the routing model from the examples in rules/ and the corrections staff made by
    mail; write rules/routing-model.json.gz (the daemon picks it up like any rule change).

    A new model replaces the one in force only if it is no worse on the newest corrections,
    held out from its training for that comparison. Needs scikit-learn (pip install 'maild[train]')."""
    from .routing import admin
    cfg, (org, _, reader) = _rules_only(ctx)
    engine = None if no_db else _existing_engine(cfg)
    with database_errors():
        result = admin.train(cfg.rules_dir, org, reader, engine, force=force, write=not dry_run)
    echo(result.text())
    if result.refused and not dry_run:
        raise Fail("the model in force stays", 1)


@command(rules_group, "diff")
@click.option("--since", default="30d", show_default=True, help="The period: 30d, 12h, 2w, or a date.")
@click.option("--json", "as_json", is_flag=True, help="Every difference as JSON.")
@click.pass_context
def rules_diff(ctx: click.Context, since: str, as_json: bool) -> None:
    """Replay the archived new requests of a period under the rules and model in force (a
    dry run) and list every one that would now be decided differently: how a rule or model
    change is reviewed before it goes live."""
    from .routing import admin
    from . import dates
    cfg, (org, table, reader) = _rules_only(ctx)
    start = _since(since, dates)
    engine = _existing_engine(cfg)
    if engine is None:
        raise Fail(f"no database at {cfg.db_url}: nothing archived to compare (run 'maild db init' first)", EX_CONFIG)
    with database_errors():
        found = admin.diff(engine, cfg.data_dir, start, org, table, reader)
    engine.dispose()
    if as_json:
        echo(json.dumps([{"inbound": d.inbound_id, "received_at": d.received_at.isoformat(),
                                "ticket": d.ticket, "subject": d.subject, "then": d.then, "now": d.now,
                                "why": d.why} for d in found], ensure_ascii=False, indent=2))
        return
    for d in found:
        echo(f"{d.inbound_id}\t{d.ticket or '-'}\t{d.then} -> {d.now}\t{d.subject}")
        echo(f"\t  why: {d.why}")
    echo(f"{len(found)} request(s) since {start:%Y-%m-%d %H:%M} would now be decided differently")


def _since(value: str, dates):
    import re as re_
    from datetime import datetime, timedelta, timezone
    found = re_.fullmatch(r"(\d+)\s*([hdw])", value.strip())
    if found:
        amount, unit = int(found.group(1)), found.group(2)
        return datetime.now(timezone.utc) - timedelta(hours=amount * {"h": 1, "d": 24, "w": 168}[unit])
    try:
        return dates.since(value, datetime.now(timezone.utc).date())
    except ValueError as exc:
        raise Fail(f"--since {value!r}: not a period (30d, 12h, 2w) nor a date: {exc}", EX_DATAERR) from None


@command(rules_group, "eval")
@click.argument("labelled", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Figures, confusion and errors as JSON.")
@click.pass_context
def rules_eval(ctx: click.Context, labelled: Path, as_json: bool) -> None:
    """The rules and model in force against labelled mail: accuracy, a confusion table and
    every error with its reasons. LABELLED: a TSV (file, to, department, category, kind,
    outcome) or a folder of <Категория>/*.eml."""
    from .routing import evaluate
    _, (org, table, reader) = _rules_only(ctx)
    try:
        items = evaluate.read_labelled(labelled, org, {t.name for t in reader.settings.topics})
    except (OSError, ValueError, KeyError) as exc:
        raise Fail(f"cannot read {labelled}: {exc}", EX_DATAERR) from None
    report = evaluate.evaluate(items, org, table, reader)
    if as_json:
        echo(json.dumps({"figures": report.figures(),
                               "confusion": [{"wanted": a, "got": b, "count": n} for a, b, n in report.confusion()],
                               "errors": [{"file": str(d.item.path), "errors": d.errors, "why": d.why}
                                          for d in report.decided if d.errors],
                               "unreadable": report.unreadable}, ensure_ascii=False, indent=2))
    else:
        echo(report.text())


@command(rules_group, "test")
@click.argument("mail_file", type=click.Path(allow_dash=True, path_type=str))
@click.option("--rcpt", help="Envelope recipient (default: the mail's To that is a department address).")
@click.option("--sender", help="Envelope sender (default: the mail's From).")
@click.option("--json", "as_json", is_flag=True, help="JSON (see README for the shape).")
@click.pass_context
def rules_test(ctx: click.Context, mail_file: str, rcpt, sender, as_json) -> None:
    """Dry run: what maild would do with MAIL_FILE and why. Touches nothing (not even the
    data directory: nothing is created)."""
    from .parse import parse
    cfg, current = _rules_only(ctx)
    try:
        raw = sys.stdin.buffer.read() if mail_file == "-" else Path(mail_file).read_bytes()
    except OSError as exc:
        raise Fail(f"cannot read {mail_file}: {exc.strerror or exc}", EX_DATAERR) from None
    org = current.org
    mail = parse(raw)
    if not rcpt:
        rcpt = next((a.email for a in mail.to + mail.cc if org.is_department_address(a.email)),
                    org.departments[0].address)
    if sender is None:
        sender = mail.sender.email if mail.sender else ""
    engine = _existing_engine(cfg)
    try:
        result = _dry_run(cfg, current, engine, raw, Envelope(mail_from=sender, rcpt_to=(rcpt,), peer="dry-run"))
    finally:
        if engine is not None:
            engine.dispose()
    echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2) if as_json else result.text())


def _dry_run(cfg, current: policy.Policy, engine, raw: bytes, envelope: Envelope):
    """What the worker would do with this mail today, touching nothing (dryrun.py)."""
    from . import dryrun
    from .render import Renderer
    secret_file = cfg.data_dir / "reply-secret"
    secret = (cfg.auth.secret.encode() if cfg.auth.secret
              else secret_file.read_text().strip().encode() if secret_file.exists() else b"")
    with database_errors():
        return dryrun.explain(raw, envelope, current.org, current.rules, current.reader,
                              Renderer(cfg.templates_dir, cfg.hostname), engine, cfg.auth,
                              secret, cfg.tickets.reopen_days, cfg.hostname)


@main.group()
def tickets() -> None:
    """Look at tickets."""


@command(tickets, "list")
@click.option("--dept", help="Only this department (OSA, DAB, ...).")
@click.option("--status", help="Only this status (open, answered, closed, ...).")
@click.option("--json", "as_json", is_flag=True, help="JSON, one array (see README for the shape).")
@click.pass_context
def tickets_list(ctx: click.Context, dept, status, as_json) -> None:
    """List tickets, oldest first."""
    with database_errors(), _app(ctx).sessions() as session:
        rows = store.tickets(session, dept, status)
        if as_json:
            echo(json.dumps([views.ticket(t) for t in rows], ensure_ascii=False, indent=2))
        else:
            for line in views.ticket_lines(rows):
                echo(line)


@command(tickets, "show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="JSON object (see README for the shape).")
@click.option("--full", is_flag=True, help="Each message as received, quoted history and all.")
@click.pass_context
def tickets_show(ctx: click.Context, number: str, as_json: bool, full: bool) -> None:
    """Show one ticket with its conversation."""
    app = _app(ctx)
    normalised = match.parse_number(number, {d.code for d in app.organisation().departments})
    with database_errors(), app.sessions() as session:
        ticket = store.ticket_with_entries(session, normalised) if normalised else None
        if ticket is None:
            raise Fail(f"no ticket {number}")
        if as_json:
            echo(json.dumps(views.ticket(ticket, entries=True), ensure_ascii=False, indent=2))
        else:
            echo(views.ticket_text(ticket, full=full))


@main.group()
def outbox() -> None:
    """Look at outgoing mail."""


@command(outbox, "list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "held"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_list(ctx: click.Context, status, as_json) -> None:
    """List outgoing mail, oldest first."""
    with database_errors(), _app(ctx).sessions() as session:
        rows = store.outbox_rows(session, status)
        if as_json:
            echo(json.dumps([views.outbox(r) for r in rows], ensure_ascii=False, indent=2))
        else:
            for row in rows:
                o = views.outbox(row)
                echo(f"{o['id']:>6}  {o['status']:<8} {o['kind']:<8} {o['ticket'] or '-':<11} "
                           f"{o['to']:<30} {o['subject']}")


# -- staff digests and reports ---------------------------------------------------------------
def _department(app: App, code: str | None):
    org = app.organisation()
    if code is None:
        return None
    found = org.department(code) or next((d for d in org.departments if d.short.lower() == code.lower()), None)
    if found is None:
        raise Fail(f"no department {code!r} (the rules have {', '.join(d.code for d in org.departments)})")
    return found


@command(main, "digest")
@click.option("--dept", help="Only this department (default: all).")
@click.pass_context
def digest_command(ctx: click.Context, dept) -> None:
    """Queue the daily digest of open and overdue tickets to each department's staff
    (systemd/maild-digest.timer runs this each working morning)."""
    from . import digest
    from .models import now
    app = _app(ctx)
    department = _department(app, dept)
    with database_errors(), app.engine_begin() as conn:
        count = digest.send(app.actions(conn), app.organisation(), now(), department.code if department else None)
    echo(f"queued {count} digest mail(s)")


@main.group()
def report() -> None:
    """Reports for managers and HR (dates: 2026-11-01, 01.11.2026, last month, this week...)."""


def _period(since: str | None, until: str | None):
    from datetime import datetime, timezone
    from . import dates
    today = datetime.now(timezone.utc).date()
    # Neither given: last month, whole. Only --since: up to today, inclusive.
    since_text = since or "last month"
    until_text = until or ("today" if since else "last month")
    try:
        start, end = dates.since(since_text, today), dates.until(until_text, today)
    except dates.DateError as exc:
        raise click.BadParameter(str(exc)) from None
    if end <= start:
        raise click.BadParameter(f"--until ({until_text}) ends before --since ({since_text}) begins")
    return start, end


def _report_options(f):
    f = click.option("--mail", "mail_configured", is_flag=True,
                     help="Mail it to the address in the config ([reports]).")(f)
    f = click.option("--mail-to", help="Mail it to this address, the data attached.")(f)
    f = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                     show_default=True)(f)
    f = click.option("--dept", help="Only this department.")(f)
    f = click.option("--until", help="End of the period, inclusive (default: with --since, today; "
                     "else the end of last month).")(f)
    f = click.option("--since", help="Start of the period (default: the start of last month).")(f)
    return f


def _check_address(to: str) -> None:
    if not config_mod.is_mail_address(to):
        raise Fail(f"--mail-to: {to!r} is not a mail address")


def _report_address(app: App, mail_to: str | None, mail_configured: bool, key: str) -> str:
    """Where the report goes: --mail-to, or with --mail the config's reports.<key>; "" to print it."""
    if mail_to is not None:
        _check_address(mail_to)
        return mail_to
    if not mail_configured:
        return ""
    to = getattr(app.config.reports, key)
    if not to:
        raise Fail(f"--mail: no address in the config (reports.{key})", EX_CONFIG)
    return to


def _mail_report(app: App, conn, to: str, department, template: str, files, **context) -> None:
    from .actions import Notice, Recipient
    actions = app.actions(conn)
    dept = department or app.organisation().departments[0]
    actions.queue(None, dept, Notice("report", template, "auto-generated"), [Recipient(to)], None,
                  files=files, **context)
    actions.finish()
    echo(f"report queued for {to}; maild's sender (or `maild drain`) delivers it")


@command(report, "phone")
@_report_options
@click.pass_context
def report_phone(ctx: click.Context, since, until, dept, fmt, mail_to, mail_configured) -> None:
    """Employees who had tickets filed by phone (#new) in the period, most first: the
    report for HR. With --mail-to or --mail it goes as mail with a CSV attachment."""
    from . import reports
    from .render import File
    start, end = _period(since, until)
    app = _app(ctx)
    department = _department(app, dept)
    to = _report_address(app, mail_to, mail_configured, "phone_to")
    with database_errors(), app.engine_begin() as conn:
        rows = reports.phone(conn, start, end, department.code if department else None)
        if to:
            data = reports.phone_csv(rows).encode("utf-8-sig")     # the BOM: Excel reads it as UTF-8
            _mail_report(app, conn, to, department, "report_phone",
                         (File(f"phone-{start:%Y-%m-%d}-{end:%Y-%m-%d}.csv", "text/csv; charset=utf-8", data),),
                         rows=rows, since=start, until=end, scope=department)
            return
    echo({"table": reports.phone_table, "csv": reports.phone_csv,
                "json": lambda r: reports.as_json(reports.phone_records(r))}[fmt](rows).rstrip("\n"))


@command(report, "summary")
@_report_options
@click.pass_context
def report_summary(ctx: click.Context, since, until, dept, fmt, mail_to, mail_configured) -> None:
    """Per department and category: opened, closed, closed without processing, transferred,
    median time to first response and to close; and the open backlog by age. Mailed, it
    carries the CSV and an SVG chart."""
    from . import reports
    from .render import File
    start, end = _period(since, until)
    app = _app(ctx)
    department = _department(app, dept)
    to = _report_address(app, mail_to, mail_configured, "summary_to")
    with database_errors(), app.engine_begin() as conn:
        result = reports.summary(conn, start, end, department.code if department else None)
        if to:
            stem = f"summary-{start:%Y-%m-%d}-{end:%Y-%m-%d}"
            files = (File(f"{stem}.csv", "text/csv; charset=utf-8", reports.summary_csv(result).encode("utf-8-sig")),
                     File(f"{stem}.svg", "image/svg+xml", reports.summary_svg(result).encode("utf-8")))
            _mail_report(app, conn, to, department, "report_summary", files, report=result, scope=department)
            return
    echo({"table": reports.summary_table, "csv": reports.summary_csv,
                "json": lambda r: reports.as_json(reports.summary_records(r))}[fmt](result).rstrip("\n"))


# -- what became of each message; the quarantine -----------------------------------------------
@command(main, "log")
@click.option("--since", help="From this date (see `maild report`; default: all).")
@click.option("--until", help="Up to this date, inclusive.")
@click.option("--disposition", help="Only this outcome (ticket-created, auto-reply-ignored, quarantined...).")
@click.option("--limit", type=int, default=200, show_default=True, help="The newest N.")
@click.option("--json", "as_json", is_flag=True, help="JSON array (see README for the shape).")
@click.pass_context
def log_command(ctx: click.Context, since, until, disposition, limit, as_json) -> None:
    """Every inbound message and its outcome: the disposition, the reason (the rule or header
    that decided it) and the ticket; quarantined ones too, oldest first."""
    from datetime import datetime, timezone
    from . import dates
    app = _app(ctx)
    today = datetime.now(timezone.utc).date()
    try:
        start = dates.since(since, today) if since else None
        end = dates.until(until, today) if until else None
    except dates.DateError as exc:
        raise click.BadParameter(str(exc)) from None
    with database_errors(), app.sessions() as session:
        rows = [views.inbound(r) for r in store.inbound_rows(session, start, end, disposition, limit)]
    if disposition in (None, "quarantined"):
        for item_id, reason in app.spool.quarantined():
            envelope = _quarantined_envelope(app, item_id)
            received = envelope.received if envelope else None
            if (start and received and received < start) or (end and received and received >= end):
                continue
            rows.append({"id": None, "spool_id": item_id, "received_at": received.isoformat(timespec="seconds")
                         if received else None, "from": envelope.mail_from if envelope else None,
                         "to": list(envelope.rcpt_to) if envelope else [], "subject": None,
                         "disposition": "quarantined", "reason": reason, "ticket": None})
    rows.sort(key=lambda r: r["received_at"] or "")
    rows = rows[-limit:]
    if as_json:
        echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        ident = r["id"] if r["id"] is not None else r["spool_id"]
        echo(f"{ident!s:>8}  {(r['received_at'] or '-')[:19]}  {r['disposition']:<20} "
                   f"{r['ticket'] or '-':<11} {r['from'] or '<>'}  {r['subject'] or ''}")
        echo(f"{'':>10}{r['reason']}")


def _quarantined_envelope(app: App, item_id: str):
    from .spool import read
    try:
        return read(app.spool.quarantine / item_id)[0]
    except (OSError, ValueError):
        return None


@command(main, "replay")
@click.argument("ident")
@click.option("--json", "as_json", is_flag=True, help="JSON (the shape of `rules test --json`).")
@click.pass_context
def replay(ctx: click.Context, ident: str, as_json: bool) -> None:
    """Run one stored message (an id from `maild log`: a number, or a quarantined spool id)
    through today's rules as a dry run. Touches nothing."""
    from .spool import read
    app = _app(ctx)
    path, recorded = None, None
    if ident.isdigit():
        with database_errors(), app.sessions() as session:
            row = store.inbound_row(session, int(ident))
            if row is None:
                raise Fail(f"no message {ident} in the log")
            path, recorded = app.config.data_dir / row.archive_path, (row.disposition, row.reason)
    else:
        path = app.spool.quarantine / ident
        if not app.spool.is_quarantined(ident):
            raise Fail(f"no message {ident}: neither a log number nor a quarantined spool id")
        recorded = ("quarantined", (app.spool.quarantine / f"{ident}.reason").read_text(encoding="utf-8").strip()
                    if (app.spool.quarantine / f"{ident}.reason").exists() else "")
    try:
        envelope, raw = read(path)
    except (OSError, ValueError) as exc:
        raise Fail(f"the stored message is not readable: {path}: {exc}") from None
    try:
        result = _dry_run(app.config, app.organisation.policy, app.sessions.kw["bind"], raw, envelope)
    except Exception as exc:        # a message that broke the worker may break the dry run too
        raise Fail(f"the message cannot be processed: {type(exc).__name__}: {exc}") from None
    if as_json:
        echo(json.dumps({"recorded": {"disposition": recorded[0], "reason": recorded[1]},
                               "today": result.as_dict()}, ensure_ascii=False, indent=2))
        return
    echo(f"recorded: {recorded[0]}: {recorded[1]}")
    echo("today (dry run):")
    echo(result.text())


@main.group()
def quarantine() -> None:
    """Messages that could not be processed, kept whole with the reason."""


@command(quarantine, "list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def quarantine_list(ctx: click.Context, as_json: bool) -> None:
    """Quarantined messages, oldest first: spool id, when received, from, why."""
    app = _app(ctx)
    rows = []
    for item_id, reason in app.spool.quarantined():
        envelope = _quarantined_envelope(app, item_id)
        rows.append({"spool_id": item_id, "received_at": envelope.received_at if envelope else None,
                     "from": envelope.mail_from if envelope else None, "reason": reason})
    if as_json:
        echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        echo(f"{r['spool_id']}  {(r['received_at'] or '-')[:19]}  {r['from'] or '<>'}  {r['reason']}")
    if not rows:
        echo("the quarantine is empty")


@command(quarantine, "show")
@click.argument("spool_id")
@click.pass_context
def quarantine_show(ctx: click.Context, spool_id: str) -> None:
    """The reason, the envelope and the message's headers."""
    from email.parser import BytesHeaderParser
    from .spool import read
    app = _app(ctx)
    path = app.spool.quarantine / spool_id
    if not app.spool.is_quarantined(spool_id):
        raise Fail(f"no quarantined message {spool_id}")
    try:
        envelope, raw = read(path)
    except (OSError, ValueError) as exc:
        raise Fail(f"the quarantined file is not readable: {path}: {exc}") from None
    reason_file = app.spool.quarantine / f"{spool_id}.reason"
    echo(f"reason: {reason_file.read_text(encoding='utf-8').strip() if reason_file.exists() else '-'}")
    echo(f"received: {envelope.received_at} from {envelope.peer or '-'}")
    echo(f"envelope: MAIL FROM:<{envelope.mail_from}> RCPT TO:{', '.join(envelope.rcpt_to)}")
    echo(f"size: {len(raw)} bytes; file: {path}")
    echo("")
    for name, value in BytesHeaderParser().parsebytes(raw).items():
        echo(f"{name}: {str(value)[:200]}")


@command(quarantine, "retry")
@click.argument("spool_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every quarantined message.")
@click.pass_context
def quarantine_retry(ctx: click.Context, spool_ids: tuple[str, ...], everything: bool) -> None:
    """Put messages back into the queue with their attempts forgotten (after a fix)."""
    app = _app(ctx)
    ids = [i for i, _ in app.spool.quarantined()] if everything else list(spool_ids)
    if not ids:
        raise Fail("name the spool ids to retry (see `maild quarantine list`), or give --all")
    missing = [i for i in ids if not app.spool.requeue(i)]
    for i in ids:
        if i not in missing:
            echo(f"requeued {i}")
    if missing:
        raise Fail(f"not in the quarantine: {', '.join(missing)}")


@command(outbox, "release")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Every held mail.")
@click.pass_context
def outbox_release(ctx: click.Context, ids: tuple[int, ...], everything: bool) -> None:
    """Send mail the loop guard held (status held) after all: it goes with the next round."""
    if not ids and not everything:
        raise Fail("name the outbox ids to release (see `maild outbox list --status held`), or give --all")
    with database_errors(), _app(ctx).engine_begin() as conn:
        count = store.release_held(conn, None if everything else list(ids))
    echo(f"released {count} held mail(s)")
