"""The event loop the SMTP listeners run on: uvloop where it is installed (the default,
``smtp.event_loop = "auto"``), else the stdlib's.

Why: with a new connection per message most of a listener's CPU is the event loop's own
work (accepting, the transports, callbacks). uvloop does it in C: an aiosmtpd server on it
took 0.67-0.73 ms of CPU per message against 0.81-0.87 on asyncio, and accepted 17-27% more
(docs/benchmarks.md). The protocol code is the same on both, so ``asyncio`` stays a switch
an admin can flip, and the one the tests run beside it."""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CHOICES = ("auto", "uvloop", "asyncio")


def available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def chosen(setting: str) -> str:
    """The loop ``setting`` gives on this machine: ``uvloop`` or ``asyncio``."""
    if setting == "asyncio" or (setting == "auto" and not available()):
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T], setting: str = "auto") -> T:
    """``asyncio.run`` on the chosen loop (Python 3.11's ``asyncio.run`` takes no loop
    factory, so the runner is made here)."""
    if chosen(setting) == "asyncio":
        return asyncio.run(main)
    import uvloop
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
