"""The command line's ground: the ``maild`` group and its global options, how errors become one
sentence and an exit status (sysexits), and the helpers every command uses."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import click
from sqlalchemy.exc import DBAPIError

from maild import config as config_mod
from maild.acting.db import is_unavailable
from maild.admin import views
from maild.app import App
from maild.config import ConfigError
from maild.deciding import policy
from maild.deciding.organisation import RulesError

# sysexits.h, for `maild inject` behind an MTA pipe transport.
EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 0, 65, 67, 75, 78

def echo(message=None, err: bool = False) -> None:
    """Every line the command line prints: mail-borne text made harmless to a terminal first
    (views.terminal_safe: no escape sequences, no C1 controls, no direction overrides)."""
    click.echo(views.terminal_safe(message) if isinstance(message, str) else message, err=err)

class Fail(click.ClickException):
    """An error the admin can act on: one sentence, and the exit status that says what kind."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click reads it per instance

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
    from maild.acting.db import make_engine
    url = cfg.db_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).is_file():
        return None
    return make_engine(url)

def _department(app: App, code: str | None):
    org = app.organisation()
    if code is None:
        return None
    found = org.department(code) or next((d for d in org.departments if d.short.lower() == code.lower()), None)
    if found is None:
        raise Fail(f"no department {code!r} (the rules have {', '.join(d.code for d in org.departments)})")
    return found
