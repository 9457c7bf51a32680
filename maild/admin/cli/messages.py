"""``maild log``, ``replay`` and ``quarantine``: what became of each inbound message."""
from __future__ import annotations

import json

import click

from maild.acting import store
from maild.admin import views
from maild.admin.cli.base import Fail, _app, command, echo, main, using_database
from maild.admin.cli.rules import _dry_run
from maild.app import App


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
    from maild.reports import dates
    app = _app(ctx)
    today = app.local.today(app.clock)
    try:
        start = dates.since(since, today, app.local) if since else None
        end = dates.until(until, today, app.local) if until else None
    except dates.DateError as exc:
        raise click.BadParameter(str(exc)) from None
    with using_database(app), app.sessions() as session:
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
        echo(f"{ident!s:>8}  {views.shown(app.local, r['received_at']):<22}  {r['disposition']:<20} "
                   f"{r['ticket'] or '-':<11} {r['from'] or '<>'}  {r['subject'] or ''}")
        echo(f"{'':>10}{r['reason']}")

def _quarantined_envelope(app: App, item_id: str):
    try:
        return _stored(app, item_id)[0]
    except Fail:
        return None


def _stored(app: App, item_id: str) -> tuple:
    """A spool message's envelope and bytes: this node's quarantine file, else the copy in
    the cluster's spool table (a message another node took in or quarantined)."""
    from maild.intake.spool import read
    path = app.spool.quarantine_file(item_id)      # no listing of the quarantine per message
    try:
        if path is not None:
            return read(path)
        kept = app.spool.kept(item_id)
    except (OSError, ValueError) as exc:
        raise Fail(f"the stored message {item_id} is not readable: {exc}") from None
    if kept is None:
        raise Fail(f"no stored message {item_id}")
    return kept


def _reason(app: App, item_id: str) -> str:
    return dict(app.spool.quarantined()).get(item_id, "")


@command(main, "replay")
@click.argument("ident")
@click.option("--json", "as_json", is_flag=True, help="JSON (the shape of `rules test --json`).")
@click.pass_context
def replay(ctx: click.Context, ident: str, as_json: bool) -> None:
    """Run one stored message (an id from `maild log`: a number, or a quarantined spool id)
    through today's rules as a dry run. Touches nothing."""
    from maild.intake.spool import read
    app = _app(ctx)
    path, recorded = None, None
    spool_id = ident
    if ident.isdigit():
        with using_database(app), app.sessions() as session:
            row = store.inbound_row(session, int(ident))
            if row is None:
                raise Fail(f"no message {ident} in the log")
            path, recorded = app.config.data_dir / row.archive_path, (row.disposition, row.reason)
            spool_id = row.spool_id
    else:
        if not app.spool.is_quarantined(ident):
            raise Fail(f"no message {ident}: neither a log number nor a quarantined spool id")
        recorded, spool_id = ("quarantined", _reason(app, ident)), ident
    try:
        envelope, raw = read(path) if path is not None else _stored(app, spool_id)
    except (OSError, ValueError) as exc:
        # This node's archive lacks it (another node of the cluster took it in): the shared copy.
        try:
            envelope, raw = _stored(app, spool_id)
        except Fail:
            raise Fail(f"the stored message is not readable: {path}: {exc}") from None
    try:
        result = _dry_run(app.config, app.organisation.policy, app.sessions.kw["bind"], raw, envelope,
                          fresh=recorded[0] != "quarantined")
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
    """Quarantined messages, oldest first: spool id, when received, from, why. With
    PostgreSQL: those of every node."""
    app = _app(ctx)
    rows = []
    with using_database(app):
        found = app.spool.quarantined()
    for item_id, reason in found:
        envelope = _quarantined_envelope(app, item_id)
        rows.append({"spool_id": item_id, "received_at": envelope.received_at if envelope else None,
                     "from": envelope.mail_from if envelope else None, "reason": reason})
    if as_json:
        echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        echo(f"{r['spool_id']}  {views.shown(app.local, r['received_at']):<22}  {r['from'] or '<>'}  {r['reason']}")
    if not rows:
        echo("the quarantine is empty")

@command(quarantine, "show")
@click.argument("spool_id")
@click.pass_context
def quarantine_show(ctx: click.Context, spool_id: str) -> None:
    """The reason, the envelope and the message's headers."""
    from email.parser import BytesHeaderParser
    app = _app(ctx)
    path = app.spool.quarantine / spool_id
    if not app.spool.is_quarantined(spool_id):
        raise Fail(f"no quarantined message {spool_id}")
    envelope, raw = _stored(app, spool_id)
    echo(f"reason: {_reason(app, spool_id) or '-'}")
    echo(f"received: {views.shown(app.local, envelope.received_at)} from {envelope.peer or '-'}")
    echo(f"envelope: MAIL FROM:<{envelope.mail_from}> RCPT TO:{', '.join(envelope.rcpt_to)}")
    echo(f"size: {len(raw)} bytes; " + (f"file: {path}" if path.is_file() else "in the cluster's spool table"))
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


@main.group("spool")
def spool_group() -> None:
    """The cluster's spool table (PostgreSQL): every accepted message, kept after processing."""


@command(spool_group, "prune")
@click.option("--older-than", "days", type=click.IntRange(min=1), required=True, metavar="DAYS",
              help="Forget processed messages done more than DAYS days ago.")
@click.option("--json", "as_json", is_flag=True, help='{"pruned": N}')
@click.pass_context
def spool_prune(ctx: click.Context, days: int, as_json: bool) -> None:
    """Delete processed messages from the cluster's spool table. Mail waiting or
    quarantined is never pruned; each node's archive of files is not touched. Without
    PostgreSQL there is no such table in use, and nothing is pruned."""
    app = _app(ctx)
    with using_database(app):
        pruned = app.spool.prune(days)
    if as_json:
        echo(json.dumps({"pruned": pruned}))
    elif app.config.db_url.startswith("sqlite"):
        echo("nothing to prune: the spool table is used only with PostgreSQL (a single node keeps "
             "its processed mail in data_dir/archive)")
    else:
        echo(f"pruned {pruned} processed messages done more than {days} days ago")
