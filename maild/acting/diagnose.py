"""What went wrong with the storage (or a listening socket), as one sentence a person can act on and the sysexits
status that says what kind of trouble it is (issue 14).

An MTA behind ``maild inject`` and a supervisor behind ``maild serve`` read the status: 75
(``TEMPFAIL``) makes them try again, so it is only for what waiting can fix — a database
that is down or busy, a full disk. What a person must change is 78 (``CONFIG``: a database
that does not exist, a schema not made yet), 77 (``NOPERM``: a refused login, a read-only
file or directory) or 73 (``CANTCREAT``: a data directory that cannot be made, say because
a file is in its place). The driver's own words follow the sentence in brackets; the full
error goes to the debug log, never a SQL dump to the person.
"""
from __future__ import annotations

import errno
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from maild.acting.db import ForeignDatabase, SchemaMissing, SchemaOutdated, cause, is_unavailable, sqlite_file
from maild.values import Exit


@dataclass(frozen=True)
class Problem(Exception):
    """One sentence and its exit status."""
    sentence: str
    code: Exit

    def __str__(self) -> str:
        return self.sentence

    @property
    def temporary(self) -> bool:
        return self.code == Exit.TEMPFAIL


def shown(url: str) -> str:
    """A database URL fit to print: no password; a SQLite file as its path."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.drivername.startswith("sqlite"):
        return parsed.database or "an in-memory SQLite database"
    return parsed.render_as_string(hide_password=True)


_SCHEMA_SIGNS = ("no such table", "no such column", "has no column")
_RELATION = re.compile(r'(?:relation|column) "?[\w.]+"? (?:of relation "?\w+"? )?does not exist')
_BAD_URL = ("invalid port number", "invalid sslmode", "invalid connection option", "invalid integer value",
            "invalid uri", "invalid value for parameter", "unsupported frontend protocol")
_REFUSED = ("password authentication failed", "no pg_hba.conf entry", "permission denied",
            "must be owner", "not permitted to log in")


def of_database(exc: BaseException, url: str) -> Problem | None:
    """The problem ``exc`` says the database at ``url`` has; None when it is not one (a bug
    or a bad message: the caller lets it through)."""
    where = shown(url)
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, SchemaMissing):
        return Problem(f"the database {where} has no maild schema yet: run 'maild db init'", Exit.CONFIG)
    if isinstance(exc, SchemaOutdated):
        return Problem(str(exc), Exit.CONFIG)
    if isinstance(exc, ForeignDatabase):
        return Problem(f"the SQLite file {where} holds tables that are not maild's ({exc}): maild makes its "
                       "schema only in a new or empty file; choose another with --db", Exit.CONFIG)
    if not isinstance(exc, DBAPIError) and not is_unavailable(exc):
        return None
    said = cause(exc)
    low = said.lower()
    parsed = _url(url)
    if any(sign in low for sign in _SCHEMA_SIGNS) or _RELATION.search(low):
        return Problem(f"the database {where} has no maild schema yet, or an older one: run 'maild db init' "
                       f"({said})", Exit.CONFIG)
    if (found := re.search(r'database "([^"]+)" does not exist', said)) is not None:
        user = parsed.username if parsed is not None and parsed.username else "maild"
        return Problem(f"the database {found.group(1)} does not exist on {_host(parsed)}: create it "
                       f"(createdb -O {user} {found.group(1)}) or correct the database URL", Exit.CONFIG)
    if any(sign in low for sign in _REFUSED) or re.search(r'role "[^"]+" does not exist', low):
        return Problem(f"the database server {_host(parsed)} refused maild ({said}): check the user and "
                       "password in the database URL and the server's access rules", Exit.NOPERM)
    if "file is not a database" in low or "not a database" in low:
        return Problem(f"{where} is not a SQLite database: move it away or choose another file with --db",
                       Exit.CONFIG)
    if any(sign in low for sign in _BAD_URL):
        return Problem(f"the database URL {where} is wrong ({said}): correct it in --db or 'db'", Exit.CONFIG)
    if "readonly database" in low or "read-only" in low:
        return Problem(f"cannot write the database {where}: the file or its directory is read-only; let the "
                       "user running maild write both", Exit.NOPERM)
    if "unable to open database file" in low:
        return Problem(f"cannot open or create the database file {where}: check that its directory exists "
                       "and that the user running maild may write in it", Exit.CANTCREAT)
    if is_unavailable(exc):
        return Problem(f"the database {where} is unavailable, try again later ({said})", Exit.TEMPFAIL)
    return None


def of_sqlite_file(url: str) -> Problem | None:
    """What is wrong with a SQLite URL's file before anything opens it: not a file (a directory,
    a device), or not writable by this user — where SQLite itself would say "disk I/O error" or
    fail only at the first write, which looks temporary. None when it looks usable."""
    path = sqlite_file(url)
    if path is None:
        return None
    if path.exists() and not path.is_file():
        return Problem(f"the database {path} is not a file (a directory or a device): give --db a file",
                       Exit.CANTCREAT)
    folder = path.parent if path.parent.exists() else None
    if (path.exists() and not os.access(path, os.W_OK)) or (folder is not None and not os.access(folder, os.W_OK)):
        return Problem(f"cannot write the database {path}: the file or its directory {path.parent} is "
                       "read-only for this user; let the user running maild write both", Exit.NOPERM)
    return None


def of_data_dir(path: Path) -> Problem | None:
    """A data directory that exists but cannot serve: a file in its place, or not writable."""
    if path.exists() and not path.is_dir():
        return Problem(f"cannot create the data directory {path}: {path} is a file, not a directory; move it "
                       "or choose another with --data-dir", Exit.CANTCREAT)
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        return Problem(f"cannot write in the data directory {path} (Permission denied): let the user running "
                       "maild write there, or choose another with --data-dir", Exit.NOPERM)
    return None


def of_directory(exc: OSError, path: Path) -> Problem:
    """A data directory (or a file in it) that could not be made or written."""
    what = exc.strerror or str(exc)
    kind = _kind(exc)
    if kind == Exit.NOPERM:
        return Problem(f"cannot write in the data directory {path} ({what}): let the user running maild "
                       "write there, or choose another with --data-dir", kind)
    if kind == Exit.TEMPFAIL:
        return Problem(f"cannot write in the data directory {path} now, try again later ({what})", kind)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(Path(exc.filename) if exc.filename else path)
        return Problem(f"cannot create the data directory {path}: {blocker} is a file, not a "
                       "directory; move it or choose another with --data-dir", kind)
    where = f"{exc.filename} in the data directory {path}" if exc.filename and str(exc.filename) != str(path) \
        else f"the data directory {path}"
    return Problem(f"cannot create {where} ({what})", kind)


def of_file(exc: OSError) -> Problem:
    """A file maild could not read or write, named, with its directory as the thing to mend."""
    name = Path(exc.filename).absolute() if exc.filename else None
    what = exc.strerror or str(exc)
    if name is None:
        return Problem(f"a file could not be read or written ({what})", _kind(exc))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Problem(f"maild may not open {name} ({what}): give the user running maild access to it "
                       f"(and to {name.parent}, where maild writes)", Exit.NOPERM)
    return Problem(f"cannot use {name} ({what})", _kind(exc))


def _kind(exc: OSError) -> Exit:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Exit.NOPERM
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EMFILE, errno.ENFILE):
        return Exit.TEMPFAIL
    return Exit.CANTCREAT


def listen_kind(exc: OSError) -> Exit:
    """In use: the other may go (75). Not allowed: a person grants it (77). An address this
    machine does not have or a name that resolves to nothing: the configuration (78)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Exit.NOPERM
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return Exit.CONFIG
    return Exit.TEMPFAIL


def _file_in_the_way(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


def _url(url: str):
    try:
        return make_url(url)
    except ArgumentError:
        return None


def _host(parsed) -> str:
    if parsed is None or not parsed.host:
        return "the local socket"
    return f"{parsed.host}:{parsed.port or 5432}"
