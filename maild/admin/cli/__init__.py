"""The command line for people and scripts: ``maild --help``. One module per group of
commands; importing them registers them on ``main``."""
from maild.admin.cli import messages, reports, rules, running, tickets, web  # noqa: F401  (they register)
from maild.admin.cli.base import main

__all__ = ["main"]
