"""What every child process of ``maild serve`` does first (the worker, the sender, the
parser processes): stop with the parent, leave signals to it, yield the CPU to intake.
Its own module so that the composition root (``app``) and the process tree (``daemon``)
both use it without importing each other."""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal

WORKER_NICENESS = 19
PR_SET_PDEATHSIG = 1


PR_SET_NAME = 15


def child_setup(close_fds: tuple[int, ...] = (), nice: bool = True, name: str = "maild-parser") -> None:
    """In a child: drop what fork copied from the listener (its asyncio signal wake-up fd,
    which would replay every signal of ours in the parent, and its listening sockets),
    stop with the parent even if it is killed outright, leave SIGINT to the parent, and
    yield the CPU to intake. Also the parser processes' initializer."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError, AttributeError):   # not Linux: the parent's shutdown still stops us
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # Its role as the process name (ps, top, /proc/PID/comm; bench/ingest.py's CPU by role).
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Accept fast, process later: when both want the CPU, the SMTP listener goes first
    # (a sender waits for its 250; a spooled message can wait a moment for its ticket).
    if nice:        # not an SMTP listener (issue 16: several share the port)
        os.nice(WORKER_NICENESS)
