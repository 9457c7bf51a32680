"""``maild rules``: check, test (the dry run), train, eval and diff the admin's rules and model."""
from __future__ import annotations

import json
from pathlib import Path

import click

from maild import config as config_mod
from maild.admin.cli.base import (
    EX_CONFIG,
    EX_DATAERR,
    Fail,
    _existing_engine,
    _rules_only,
    command,
    database_errors,
    echo,
    main,
    read_mail,
)
from maild.config import ConfigError
from maild.deciding import policy
from maild.values import Envelope, LocalTime, SystemClock


@main.group("rules")
def rules_group() -> None:
    """Check the rule files and try them on a mail."""

@command(rules_group, "calendar")
@click.argument("year", type=click.IntRange(2000, 2100))
def rules_calendar(year: int) -> None:
    """Print a draft [[year]] table for rules/calendar.toml (holidays, moved days off, working
    weekend days, shortened days) from the holidays library; check it against the decree."""
    from maild.deciding.calendar import draft
    try:
        echo(draft(year).rstrip("\n"))
    except ImportError:
        raise Fail("the holidays library is not installed: pip install 'holidays>=0.109'", 1) from None


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
    from maild.routing.reader import staleness
    org, table, reader = policy.load_policy(cfg.rules_dir, cfg.templates_dir)
    for warning in staleness(reader, org):
        echo(f"warning: {warning}", err=True)
    categories = sum(len(d.categories) for d in org.departments)
    echo(f"rules OK: {len(org.departments)} departments, {categories} categories, "
               f"{len(table)} rules ({cfg.rules_dir})")

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
    from maild.routing import admin
    cfg, (org, _, reader) = _rules_only(ctx)
    engine = None if no_db else _existing_engine(cfg)
    with database_errors(cfg.db_url):
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
    from maild.reports import dates
    from maild.routing import admin
    cfg, (org, table, reader) = _rules_only(ctx)
    local = LocalTime(cfg.timezone)
    start = _since(since, dates, local)
    engine = _existing_engine(cfg)
    if engine is None:
        raise Fail(f"no database at {cfg.db_url}: nothing archived to compare (run 'maild db init' first)", EX_CONFIG)
    with database_errors(cfg.db_url):
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
    echo(f"{len(found)} request(s) since {local.when(start)} would now be decided differently")

def _since(value: str, dates, local: LocalTime):
    import re as re_
    from datetime import timedelta
    now = SystemClock().now()           # rules only: no App to ask for its clock
    found = re_.fullmatch(r"(\d+)\s*([hdw])", value.strip())
    if found:
        amount, unit = int(found.group(1)), found.group(2)
        return now - timedelta(hours=amount * {"h": 1, "d": 24, "w": 168}[unit])
    try:
        return dates.since(value, local.date_of(now), local)
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
    from maild.routing import evaluate
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
    from maild.reading.parse import parse
    cfg, current = _rules_only(ctx)
    raw = read_mail(mail_file, cfg.smtp.max_message_size)
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

def _dry_run(cfg, current: policy.Policy, engine, raw: bytes, envelope: Envelope, fresh: bool = False):
    """What the worker would do with this mail today, touching nothing (dryrun.py)."""
    from maild.admin import dryrun
    from maild.sending.render import Renderer
    secret_file = cfg.data_dir / "reply-secret"
    secret = (cfg.auth.secret.encode() if cfg.auth.secret
              else secret_file.read_text().strip().encode() if secret_file.exists() else b"")
    with database_errors(cfg.db_url):
        return dryrun.explain(raw, envelope, current.org, current.rules, current.reader,
                              Renderer(cfg.templates_dir, cfg.hostname, LocalTime(cfg.timezone)), engine, cfg.auth,
                              secret, cfg.tickets.reopen_days, cfg.hostname, cfg.notifications,
                              cfg.tickets.max_participants, cfg.loop_guard.new_tickets_per_sender_hour, fresh,
                              web=(cfg.web.base_url, cfg.web.link_hours))
