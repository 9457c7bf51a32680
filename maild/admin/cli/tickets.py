"""``maild tickets``, ``outbox`` and ``digest``: the tickets and the mail maild sends."""
from __future__ import annotations

import json

import click

from maild.acting import search, store
from maild.admin import views
from maild.admin.cli.base import Fail, _app, _department, command, echo, job_done, main, using_database
from maild.deciding import match
from maild.values import Status


@main.group()
def tickets() -> None:
    """Look at tickets."""

@command(tickets, "list")
@click.option("--dept", help="Only this department (OSA, DAB, ...).")
@click.option("--status", type=click.Choice([s.value for s in Status], case_sensitive=False),
              help="Only this status.")
@click.option("--json", "as_json", is_flag=True, help="JSON, one array (see docs/cli.md for the shape).")
@click.pass_context
def tickets_list(ctx: click.Context, dept, status, as_json) -> None:
    """List tickets, oldest first."""
    app = _app(ctx)
    department = _department(app, dept)       # an unknown one is an error naming the real ones
    with using_database(app), app.sessions() as session:
        rows = store.tickets(session, department.code if department else None, status.lower() if status else None)
        if as_json:
            echo(json.dumps([views.ticket(t) for t in rows], ensure_ascii=False, indent=2))
        else:
            for line in views.ticket_lines(rows, app.local):
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
    with using_database(app), app.sessions() as session:
        ticket = store.ticket_with_entries(session, normalised) if normalised else None
        if ticket is None:
            raise Fail(f"no ticket {number}")
        if as_json:
            echo(json.dumps(views.ticket(ticket, entries=True), ensure_ascii=False, indent=2))
        else:
            echo(views.ticket_text(ticket, app.local, full=full))

@command(tickets, "search")
@click.argument("words", nargs=-1, required=True)
@click.option("--dept", help="Only this department's tickets.")
@click.option("--requester", metavar="ADDRESS",
              help="Only this person's tickets, as they see them (#найти from them): no internal notes.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="At most this many tickets.")
@click.option("--json", "as_json", is_flag=True, help="JSON object (see docs/cli.md for the shape).")
@click.pass_context
def tickets_search(ctx: click.Context, words: tuple[str, ...], dept, requester, limit: int, as_json: bool) -> None:
    """Tickets whose subject or one message holds every word, in any form, newest first."""
    app = _app(ctx)
    department = _department(app, dept)
    with using_database(app), app.sessions() as session:
        conn = session.connection()
        scope = search.Scope(department=department.code if department else None)
        if requester:
            person = store.person_ref(conn, requester.strip().lower())
            if person is None:
                raise Fail(f"nobody with the address {requester} has written to the helpdesk")
            scope = search.Scope(department=scope.department, requester_id=person.id, public_only=True)
        found = search.search(conn, " ".join(words), scope, limit)
    if not found.words:
        raise Fail("nothing to search for: every word given is too common to narrow a search (и, в, не...)")
    if as_json:
        echo(json.dumps({"words": list(found.words), "cut": found.cut,
                         "tickets": [views.search_hit(h) for h in found.hits]}, ensure_ascii=False, indent=2))
        return
    for line in views.search_lines(found, app.local):
        echo(line)
    if not found.hits:
        echo("no ticket matches")
    elif found.cut:
        echo(f"(the newest {limit} shown; --limit shows more)")


@main.group()
def outbox() -> None:
    """Look at outgoing mail."""

@command(outbox, "list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "held"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_list(ctx: click.Context, status, as_json) -> None:
    """List outgoing mail, oldest first."""
    with using_database(app := _app(ctx)), app.sessions() as session:
        rows = store.outbox_rows(session, status)
        if as_json:
            echo(json.dumps([views.outbox(r) for r in rows], ensure_ascii=False, indent=2))
        else:
            for row in rows:
                o = views.outbox(row)
                echo(f"{o['id']:>6}  {o['status']:<8} {o['kind']:<8} {o['ticket'] or '-':<11} "
                           f"{o['to']:<30} {o['subject']}")


# -- staff digests and reports ---------------------------------------------------------------

@command(main, "digest")
@click.option("--dept", help="Only this department (default: all).")
@click.option("--once", is_flag=True, help="Not if a node of this database already queued today's "
              "(the timer's way: each node of a cluster has one).")
@click.pass_context
def digest_command(ctx: click.Context, dept, once: bool) -> None:
    """Queue the daily digest of open and overdue tickets to each department's staff
    (systemd/maild-digest.timer runs this each working morning)."""
    from maild.reports import digest
    app = _app(ctx)
    department = _department(app, dept)
    with using_database(app), app.engine_begin() as conn:
        period = f"{app.local.today(app.clock):%Y-%m-%d}"
        if once and (done := job_done(app, conn, f"digest:{department.code if department else '*'}", period)):
            echo(done)
            return
        count = digest.send(app.actions(conn), app.organisation(), app.clock.now(),
                            department.code if department else None)
    echo(f"queued {count} digest mail(s)")

@command(outbox, "release")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Every held mail.")
@click.pass_context
def outbox_release(ctx: click.Context, ids: tuple[int, ...], everything: bool) -> None:
    """Send mail the loop guard held (status held) after all: it goes with the next round."""
    if not ids and not everything:
        raise Fail("name the outbox ids to release (see `maild outbox list --status held`), or give --all")
    app = _app(ctx)
    with using_database(app), app.engine_begin() as conn:
        count = store.release_held(conn, None if everything else list(ids), app.clock.now())
    echo(f"released {count} held mail(s)")
