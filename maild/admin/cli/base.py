"""The command line's ground: the ``maild`` group and its global options, how errors become one
sentence and an exit status (sysexits), and the helpers every command uses."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from maild import config as config_mod
from maild.acting import diagnose
from maild.admin import views
from maild.app import App
from maild.config import ConfigError
from maild.deciding import policy
from maild.deciding.organisation import RulesError
from maild.values import Exit

# sysexits.h (values.Exit), for `maild inject` behind an MTA pipe transport and for supervisors.
EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = Exit.OK, Exit.DATAERR, Exit.NOUSER, Exit.TEMPFAIL, Exit.CONFIG

def echo(message=None, err: bool = False) -> None:
    """Every line the command line prints: mail-borne text made harmless to a terminal first
    (views.terminal_safe: no escape sequences, no C1 controls, no direction overrides)."""
    click.echo(views.terminal_safe(message) if isinstance(message, str) else message, err=err)

class Fail(click.ClickException):
    """An error the admin can act on: one sentence, and the exit status that says what kind."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click reads it per instance

    @classmethod
    def of(cls, problem: diagnose.Problem) -> Fail:
        return cls(problem.sentence, problem.code)

@contextlib.contextmanager
def database_errors(url: str):
    """Database trouble as one sentence and the sysexits status of its kind, never a traceback
    nor SQL (acting/diagnose.py)."""
    try:
        yield
    except Exception as exc:
        problem = diagnose.of_database(exc, url)
        if problem is None:
            raise
        raise Fail.of(problem) from None

@contextlib.contextmanager
def using_database(app: App):
    """The database ready for a command: the embedded SQLite file is made on its first use,
    any other database must have had ``maild db init``."""
    with database_errors(app.config.db_url):
        app.init_db()
        yield

def read_mail(file: str, limit: int) -> bytes:
    """One message from FILE or standard input (``-``), as ``inject`` and ``rules test`` take it:
    unreadable (65, or 77 for a permission), empty or over ``limit`` (65) is one sentence. No
    more than one byte over the limit is read: a huge input is not held in memory."""
    try:
        if file == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(file, "rb") as fh:
                raw = fh.read(limit + 1)
    except OSError as exc:
        raise Fail(f"cannot read {file}: {exc.strerror or exc}",
                   Exit.NOPERM if isinstance(exc, PermissionError) else EX_DATAERR) from None
    if not raw.strip():
        raise Fail(f"{'standard input' if file == '-' else file}: empty message", EX_DATAERR)
    if len(raw) > limit:
        raise Fail(f"{'standard input' if file == '-' else file}: the message is over the limit of {limit} "
                   "bytes (smtp.max_message_size)", EX_DATAERR)
    return raw

def require_web() -> None:
    """The web pages' libraries, or one sentence saying how to get them."""
    try:
        import maild.web.server  # noqa: F401 - only to know it loads
    except ImportError as exc:
        raise Fail(f"the web pages need the package {exc.name!r}, which is not installed: run 'make install' "
                   "(or pip install -e . in the project)", EX_CONFIG) from None

def _app(ctx: click.Context) -> App:
    if "app" not in ctx.obj:
        opts = ctx.obj["opts"]
        try:
            cfg = config_mod.load(opts["config"], data_dir=opts["data_dir"], db=opts["db"],
                                  rules=opts["rules"], listen=ctx.obj.get("listen"))
            ctx.obj["app"] = App.create(cfg)
        except (ConfigError, RulesError) as exc:
            raise Fail(str(exc), EX_CONFIG) from None
        except diagnose.Problem as exc:
            raise Fail.of(exc) from None
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
        # readable=False: an unreadable file is maild's one sentence (77), not click's usage error.
        kind = click.Path(path_type=Path, readable=False) if name == "config" else None
        if on_command:
            command = click.option(flag, name, type=kind, help=help_text, expose_value=False,
                                   callback=_remember)(command)
        else:
            command = click.option(flag, name, type=kind, envvar=env, help=help_text)(command)
    return command

def _remember(ctx: click.Context, param: click.Parameter, value) -> None:
    if value is not None:
        root = ctx.find_root().obj
        root["opts"][param.name] = value
        root["given_by"][param.name] = param.opts[0]

def command(group, *args, **kwargs):
    """``group.command`` with the global options added."""
    def decorate(f):
        return group.command(*args, **kwargs)(_global_options(f, on_command=True))
    return decorate

class MaildGroup(click.Group):
    """The ``maild`` group: a file maild could not read or write, wherever it happened, is one
    sentence naming it and the status of its kind (diagnose.of_file), not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`maild log | head`): not maild's failure. Quiet, as git does.
            sys.stdout = open(os.devnull, "w")      # noqa: SIM115 - the interpreter flushes it at exit
            ctx.exit(141)
        except OSError as exc:
            raise Fail.of(diagnose.of_file(exc)) from None


@click.group(cls=MaildGroup)
@_global_options
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx: click.Context, config, data_dir, db, rules, verbose) -> None:
    """maild: an email-first helpdesk daemon."""
    # The log's times carry their offset: the machine's zone may not be the 'timezone' of mails.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S%z")
    # aiosmtpd logs every SMTP command at INFO: too much for a mail server's log.
    logging.getLogger("mail.log").setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.ensure_object(dict)
    ctx.obj["opts"] = {"config": config, "data_dir": data_dir, "db": db, "rules": rules}
    # How each given option was given (``maild status`` says why it uses what it uses).
    ctx.obj["given_by"] = {name: env if ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT else flag
                           for flag, name, env, _ in GLOBAL_OPTIONS if ctx.params.get(name) is not None}

def _rules_only(ctx: click.Context):
    """The configuration and the policy of the rules directory, no data directory touched."""
    opts = ctx.find_root().obj["opts"]
    try:
        cfg = config_mod.load(opts["config"], data_dir=opts["data_dir"], db=opts["db"], rules=opts["rules"])
        return cfg, policy.load_policy(cfg.rules_dir, cfg.templates_dir, cfg.timezone)
    except (ConfigError, RulesError) as exc:
        raise Fail(str(exc), EX_CONFIG) from None

def _existing_engine(cfg):
    """The database if it exists (read only here); None for a SQLite file not yet made."""
    from maild.acting.db import make_engine, sqlite_file
    path = sqlite_file(cfg.db_url)
    if path is not None and not path.is_file():
        return None
    return make_engine(cfg.db_url)

def _department(app: App, code: str | None):
    org = app.organisation()
    if code is None:
        return None
    found = org.department(code) or next((d for d in org.departments if d.short.lower() == code.lower()), None)
    if found is None:
        raise Fail(f"no department {code!r} (the rules have {', '.join(d.code for d in org.departments)})")
    return found


def job_done(app, conn, job: str, period: str) -> str:
    """``--once``: claim ``job`` for ``period`` in ``conn``'s transaction (acting/cluster.py);
    "" when it is this run's to do, else the sentence saying who did it."""
    from maild.acting import cluster
    earlier = cluster.once(conn, job, period, app.config.cluster.node_name, app.clock.now())
    if earlier is None:
        return ""
    return (f"{job} for {period} was already queued by node {earlier.node} at {app.local.when(earlier.at)}; "
            "nothing sent (without --once it is sent again)")
