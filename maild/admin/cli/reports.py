"""``maild report phone|summary``: the reports managers and HR ask for, printed or mailed."""
from __future__ import annotations

import click

from maild import config as config_mod
from maild.admin.cli.base import EX_CONFIG, Fail, _app, _department, command, echo, job_done, main, using_database
from maild.app import App
from maild.values import OutboxKind


@main.group()
def report() -> None:
    """Reports for managers and HR (dates: 2026-11-01, 01.11.2026, last month, this week...)."""

def _period(app: App, since: str | None, until: str | None):
    from maild.reports import dates
    today = app.local.today(app.clock)        # the company's day, not UTC's
    # Neither given: last month, whole. Only --since: up to today, inclusive.
    since_text = since or "last month"
    until_text = until or ("today" if since else "last month")
    try:
        start, end = dates.since(since_text, today, app.local), dates.until(until_text, today, app.local)
    except dates.DateError as exc:
        raise click.BadParameter(str(exc)) from None
    if end <= start:
        raise click.BadParameter(f"--until ({until_text}) ends before --since ({since_text}) begins")
    return start, end

def _stamp(app: App, start, end) -> str:
    """The period in a file name: the company's dates of its first moment and of its end."""
    return f"{app.local.date_of(start):%Y-%m-%d}-{app.local.date_of(end):%Y-%m-%d}"

def _report_options(f):
    f = click.option("--once", is_flag=True, help="Mailed: not if a node of this database already mailed "
                     "this report for this period to this address (the timer's way).")(f)
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
    from maild.values import Notice, Recipient
    actions = app.actions(conn)
    dept = department or app.organisation().departments[0]
    actions.queue(None, dept, Notice(OutboxKind.REPORT, template, "auto-generated"), [Recipient(to)], None,
                  files=files, **context)
    actions.finish()
    echo(f"report queued for {to}; maild's sender (or `maild drain`) delivers it")

@command(report, "phone")
@_report_options
@click.pass_context
def report_phone(ctx: click.Context, since, until, dept, fmt, mail_to, mail_configured, once) -> None:
    """Employees who had tickets filed by phone (#new) in the period, most first: the
    report for HR. With --mail-to or --mail it goes as mail with a CSV attachment."""
    from maild.reports import report as reports
    from maild.sending.render import File
    app = _app(ctx)
    start, end = _period(app, since, until)
    department = _department(app, dept)
    to = _report_address(app, mail_to, mail_configured, "phone_to")
    with using_database(app), app.engine_begin() as conn:
        rows = reports.phone(conn, start, end, department.code if department else None)
        if to and once and (done := job_done(app, conn, f"report-phone:{dept or '*'}",
                                             f"{_stamp(app, start, end)}:{to}")):
            echo(done)
            return
        if to:
            data = reports.phone_csv(rows, app.local).encode("utf-8-sig")     # the BOM: Excel reads it as UTF-8
            _mail_report(app, conn, to, department, "report_phone",
                         (File(f"phone-{_stamp(app, start, end)}.csv", "text/csv; charset=utf-8", data),),
                         rows=rows, since=start, until=end, scope=department)
            return
    echo({"table": lambda r: reports.phone_table(r, app.local), "csv": lambda r: reports.phone_csv(r, app.local),
          "json": lambda r: reports.as_json(reports.phone_records(r))}[fmt](rows).rstrip("\n"))

@command(report, "summary")
@_report_options
@click.pass_context
def report_summary(ctx: click.Context, since, until, dept, fmt, mail_to, mail_configured, once) -> None:
    """Per department and category: opened, closed, closed without processing, transferred,
    median time to first response and to close; and the open backlog by age. Mailed, it
    carries the CSV and an SVG chart."""
    from maild.reports import report as reports
    from maild.sending.render import File
    app = _app(ctx)
    start, end = _period(app, since, until)
    department = _department(app, dept)
    to = _report_address(app, mail_to, mail_configured, "summary_to")
    with using_database(app), app.engine_begin() as conn:
        result = reports.summary(conn, start, end, department.code if department else None)
        if to and once and (done := job_done(app, conn, f"report-summary:{dept or '*'}",
                                             f"{_stamp(app, start, end)}:{to}")):
            echo(done)
            return
        if to:
            stem = f"summary-{_stamp(app, start, end)}"
            files = (File(f"{stem}.csv", "text/csv; charset=utf-8", reports.summary_csv(result).encode("utf-8-sig")),
                     File(f"{stem}.svg", "image/svg+xml", reports.summary_svg(result, app.local).encode("utf-8")))
            _mail_report(app, conn, to, department, "report_summary", files, report=result, scope=department)
            return
    echo({"table": reports.summary_table, "csv": reports.summary_csv,
                "json": lambda r: reports.as_json(reports.summary_records(r))}[fmt](result).rstrip("\n"))


# -- what became of each message; the quarantine -----------------------------------------------
