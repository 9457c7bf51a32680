"""The configuration's sections as typed values (config.py loads and validates them; each
key's type, default and meaning is declared in config_schema.py)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_size: int = 25 * 1024 * 1024
    data_timeout: int = 300             # seconds DATA may stall between two chunks
    command_timeout: int = 300          # seconds a client may sit idle between commands
    max_recipients: int = 100           # per message; more get 452 4.5.3
    max_connections_per_client: int = 20    # at once from one address; more get 421 4.7.0
    max_sessions: int = 200             # at once in all; more get 421 4.7.0
    session_lifetime: int = 1800        # seconds one session may last in all (then 421 4.4.2)
    min_data_rate: int = 64             # bytes a second DATA must average ...
    min_rate_after: int = 30            # ... once it has run this many seconds (a byte every 3 s is no mail)
    listeners: int = 0                  # serve: SMTP listener processes on the one port (0: one per two cores)
    event_loop: str = "auto"            # the listeners' loop: uvloop, asyncio, or auto (uvloop if installed)

    @property
    def listener_count(self) -> int:
        # One per two cores: the parsers and the worker need the rest (bench/ingest.py: on two
        # cores a second listener took acceptance from 0.87-1.00 to 0.73-0.84 of the trivial server).
        return self.listeners or max(1, (os.cpu_count() or 1) // 2)


@dataclass(frozen=True)
class RelayConfig:
    host: str = ""            # empty: deliver into the local Maildir instead
    port: int = 25
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: int = 30
    retry_base: int = 60      # first retry after a 4xx, doubled each time ...
    retry_max: int = 3600     # ... up to this
    lifetime: int = 5 * 24 * 3600  # then the mail is marked failed


@dataclass(frozen=True)
class WorkerConfig:
    batch_size: int = 200
    poll_interval: float = 0.2
    max_attempts: int = 3
    retry_delay: int = 60        # a failed message waits this long, doubled each time
    parse_processes: int = 2     # serve: processes that parse (and route) beside the database work


@dataclass(frozen=True)
class TicketsConfig:
    reopen_days: int = 14        # a reply to a ticket closed longer ago opens a new one
    max_participants: int = 10   # people copied on one ticket (so one answer has at most this + 1 recipients)


@dataclass(frozen=True)
class AttachmentsConfig:
    max_size: int = 20 * 1024 * 1024    # larger attachments are listed, not stored apart
    max_total: int = 40 * 1024 * 1024   # per message; the raw message keeps them all

    def keeps(self, size: int, total_so_far: int) -> bool:
        """Whether an attachment is stored apart (``total_so_far`` includes it)."""
        return size <= self.max_size and total_so_far <= self.max_total


AUTH_METHODS = ("authentication-results", "trusted-network", "signed-address")


@dataclass(frozen=True)
class AuthConfig:
    """How a mail proves it comes from the staff member its From names (see auth.py)."""
    methods: tuple[str, ...] = ("authentication-results", "signed-address")
    trusted_hosts: tuple[str, ...] = ()      # authserv-ids of the company's mail servers
    # CIDRs the company's relays connect from: only their Authentication-Results headers are
    # believed, and only mail through them may use a signed reply address. Loopback by default
    # (a local MTA, as Postfix's mynetworks); the "trusted-network" method (off by default)
    # would make a connection from here proof on its own.
    trusted_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    secret: str = ""                         # HMAC key of signed reply addresses ("" : generated)
    signed_address_days: int = 60            # how long a signed reply address proves anything


# Which switch of [notifications] a template's mail answers to (templates not listed always go).
SWITCH_OF_TEMPLATE = {
    "ack": "ack", "response": "response",
    "closed": "status", "reopened": "status", "transferred": "status", "merged": "status",
    "uncategorised": "closed_unprocessed", "not_handled": "closed_unprocessed",
    "new_ticket_alert": "new_ticket", "reply_alert": "reply", "assigned": "assignment",
    "transfer_alert": "transfer", "note_alert": "note", "digest": "digest",
}
NEW_TICKET_TO = ("all", "assignee")


@dataclass(frozen=True)
class NotificationsConfig:
    """What maild mails, per department: the switches of ``[notifications]`` and of
    ``[notifications.<DEPT>]``, as (department or "*", key, value); the department's wins."""
    settings: tuple[tuple[str, str, object], ...] = ()
    overdue_days: int = 2

    def _value(self, department: str, key: str, default: object) -> object:
        found = {code: value for code, k, value in self.settings if k == key}
        return found.get(department, found.get("*", default))

    def allows(self, department: str, template: str) -> bool:
        switch = SWITCH_OF_TEMPLATE.get(template)
        return switch is None or bool(self._value(department, switch, True))

    def new_tickets_to_all(self, department: str) -> bool:
        return self._value(department, "new_ticket_to", "assignee") == "all"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    enabled: bool = False
    url: str = ""               # the pages' address in mailed links ("": http://host:port)
    link_hours: int = 24        # how long a mailed link (confirm, sign in) works
    per_client_hour: int = 30   # forms one client address may send in an hour
    per_address_hour: int = 5   # links one mail address may be sent in an hour

    @property
    def base_url(self) -> str:
        return (self.url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 9125
    enabled: bool = False       # [metrics] listen given


@dataclass(frozen=True)
class ClusterConfig:
    node: str = ""              # this node's name among those sharing a PostgreSQL ("": the host name)
    lease: int = 30             # seconds a node's claim on a spooled message lasts without renewal

    @property
    def node_name(self) -> str:
        return self.node or socket.gethostname()


@dataclass(frozen=True)
class LoopGuardConfig:
    per_recipient_hour: int = 20
    per_ticket_hour: int = 30
    new_tickets_per_sender_hour: int = 20   # past it: recorded (maild log), no ticket, one alert


@dataclass(frozen=True)
class ReportsConfig:
    phone_to: str = ""
    summary_to: str = ""
