"""Every configuration key: its type, its default and what it means — declared once. The
loader (config.py) checks a file against it; the reference (docs/config.md) is written
from it (admin/configref.py, ``make docs``), so the two cannot drift."""
from __future__ import annotations

# section -> key -> (type, default, description). None as default means "unset". The
# description is English, one or two sentences: docs/config.md is written from it
# (maild/admin/configref.py, `make docs`).
SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], object, str]]] = {
    "": {
        "data_dir": (str, "var",
                     "Where maild keeps its state: the SQLite database, the spool, the message archive, "
                     "attachments and the local outbox. A relative path is taken from the current directory."),
        "db": (str, "",
               "SQLAlchemy URL of the database, e.g. `postgresql+psycopg://user:pass@host/db`; "
               "empty: the SQLite file `<data_dir>/maild.db`."),
        "rules": (str, "",
                  "Directory of the rule files (departments, staff, domains, categories, the rule table); "
                  "empty: the project's `rules/`."),
        "templates": (str, "", "Directory of the mail templates; empty: the project's `templates/`."),
        "hostname": (str, "maild.localdomain",
                     "Our name in SMTP (the intake's greeting, EHLO at the relay) and the domain of the "
                     "Message-IDs maild makes."),
        "timezone": (str, "",
                     "The company's time zone, an IANA name such as `Europe/Saratov`: every time people read "
                     "(mails, reports, digests, the command line) is in it, and report days begin at its "
                     "midnight; empty: the machine's zone (`TZ`, else `/etc/localtime`). Storage and `--json` "
                     "stay UTC."),
    },
    "smtp": {
        "listen": (str, "127.0.0.1:2525",
                   "Where `maild serve` accepts SMTP, as HOST:PORT (an IPv6 address in brackets)."),
        "max_message_size": (int, 25 * 1024 * 1024,
                             "Bytes (25 MiB), as sent: a larger message is refused with `552 5.3.4` "
                             "(at `MAIL FROM … SIZE=`, or after DATA); `maild inject` refuses it too."),
        "data_timeout": (int, 300,
                         "Seconds DATA may stall (no bytes arriving) before `421 4.4.2` and the connection "
                         "closed, nothing kept; every chunk restarts the clock, so a long but moving DATA is fine."),
        "command_timeout": (int, 300,
                            "Seconds a client may sit idle between commands before `421 4.4.2` and the "
                            "connection closed."),
        "max_recipients": (int, 100, "Recipients per message; each one more gets `452 4.5.3`."),
        "max_connections_per_client": (int, 20,
                                       "Sessions at once from one client address; more get `421 4.7.0` in "
                                       "place of the greeting."),
        "max_sessions": (int, 200, "Sessions at once in all; more get `421 4.7.0` in place of the greeting."),
        "listeners": (int, 0,
                      "`maild serve`: SMTP listener processes sharing the port (`SO_REUSEPORT`: the kernel "
                      "spreads new connections over them), each with its own group commit; 0: one per two CPU cores "
                      "(the parsers and the worker need the others; docs/benchmarks.md). "
                      "`serve --listeners N` sets it for one run. The session limits are shared out among them."),
        "event_loop": (str, "auto",
                       "The listeners' event loop: `uvloop` (in C: about a sixth less CPU per connection, "
                       "docs/benchmarks.md), `asyncio` (the stdlib's), or `auto`: uvloop where it is installed."),
        "session_lifetime": (int, 1800,
                             "Seconds one session may last in all; after that it is dropped with `421 4.4.2`."),
        "min_data_rate": (int, 64,
                          "Bytes a second DATA must average once it has run `min_rate_after` seconds; a client "
                          "trickling slower is dropped with `421 4.4.2`, nothing kept."),
        "min_rate_after": (int, 30, "Seconds DATA may run before `min_data_rate` applies."),
    },
    "relay": {
        "host": (str, "",
                 "SMTP relay for outgoing mail; empty: mail is written into the Maildir "
                 "`<data_dir>/outbox` instead."),
        "port": (int, 25, "The relay's SMTP port."),
        "starttls": (bool, False, "Switch to TLS with STARTTLS after connecting to the relay."),
        "username": (str, "", "Login at the relay; empty: no login."),
        "password": (str, "", "Password of `username` at the relay."),
        "timeout": (int, 30, "Seconds to wait for the relay (to connect, and for each answer)."),
        "retry_base": (int, 60,
                       "Seconds before the first retry of a mail the relay deferred (`4xx`) or that could not "
                       "reach it; the wait doubles with each attempt, up to `retry_max`."),
        "retry_max": (int, 3600, "The longest wait between two attempts at one mail, in seconds."),
        "lifetime": (int, 5 * 24 * 3600,
                     "Seconds (5 days) from queueing during which a deferred mail is retried; deferred "
                     "after that, it is marked `failed`."),
    },
    "tickets": {
        "reopen_days": (int, 14,
                        "A reply to a ticket closed more than this many days ago opens a new ticket linked to "
                        "the old one."),
        "max_participants": (int, 10,
                             "People in copy of one ticket (so one answer has at most this + 1 recipients); "
                             "only proven mail, or `#копия`, adds them."),
    },
    "attachments": {
        "max_size": (int, 20 * 1024 * 1024,
                     "Bytes (20 MiB): a larger attachment is listed but not stored apart (the archived raw "
                     "message still holds it)."),
        "max_total": (int, 40 * 1024 * 1024,
                      "Bytes (40 MiB) of attachments per message: once a message's attachments add up to "
                      "more, the rest are listed but not stored apart."),
    },
    "auth": {
        "methods": (list, ["authentication-results", "signed-address"],
                    "How a mail from a staff address proves it is from that person (so its answer reaches the "
                    "requester and its commands apply), tried in order: `authentication-results` (the topmost "
                    "`Authentication-Results` header, by one of `trusted_hosts`), `trusted-network` (the SMTP "
                    "client is in `trusted_networks`), `signed-address` (sent to the reply address maild signed "
                    "for that person and ticket)."),
        "trusted_hosts": (list, [],
                          "Authserv-ids of the company's mail servers (e.g. `mail.torex.ru`): only their topmost "
                          "`Authentication-Results` header is believed."),
        "trusted_networks": (list, ["127.0.0.0/8", "::1/128"],
                             "CIDRs the company's relay connects from: only mail from here has its "
                             "`Authentication-Results` believed or may use a signed reply address. With "
                             "`trusted-network` in `methods`, a connection from here is proof on its own."),
        "secret": (str, "",
                   "HMAC key of the signed reply addresses and of the bounce (VERP) return paths; empty: "
                   "generated once into `<data_dir>/reply-secret`."),
        "signed_address_days": (int, 60,
                                "Days a signed reply address proves anything after it was issued (at least 1)."),
    },
    "notifications": {
        "ack": (bool, True, "Acknowledgements of new tickets, to the requester."),
        "response": (bool, True, "Staff responses, to the requester and the participants."),
        "status": (bool, True, "Closed, reopened, transferred and merged notices, to the requester and "
                               "the participants."),
        "closed_unprocessed": (bool, True, "\"Closed without processing\" by the rules, to the requester."),
        "new_ticket": (bool, True, "New-ticket alerts, to staff (see `new_ticket_to`)."),
        "reply": (bool, True, "A requester's reply, to the assignee (else the department's staff)."),
        "assignment": (bool, True, "\"Assigned to you\", to the staff member."),
        "transfer": (bool, True, "\"Transferred to your department\", to its staff."),
        "note": (bool, True, "A colleague's internal note, to staff."),
        "digest": (bool, True, "The daily digest of open and overdue tickets, to staff (`maild digest`)."),
        "new_ticket_to": (str, "assignee",
                          "`\"assignee\"`: a new-ticket alert goes only to the assignee when a rule assigned one; "
                          "`\"all\"`: always to all the department's staff."),
        "overdue_days": (int, 2,
                         "Digest: an `open` ticket (waiting for the department) untouched this many days is "
                         "overdue. For all departments only."),
    },
    "web": {
        "enabled": (bool, False, "`maild serve` starts `maild web` beside the SMTP intake (`serve --web` does too; "
                                 "`make run` gives it)."),
        "listen": (str, "127.0.0.1:8025",
                   "Where `maild web` serves the employees' pages, as HOST:PORT. "
                   "Put a TLS-terminating proxy in front of it for anything beyond localhost."),
        "url": (str, "",
                "The pages' address as employees reach it (through the proxy), for the links maild mails: "
                "`https://helpdesk.torex.ru`. Empty: `http://` and `listen`."),
        "link_hours": (int, 24,
                       "How many hours a mailed link works: confirming a request filed on the form, signing in "
                       "to \"мои заявки\". A session in the browser lasts as long."),
        "per_client_hour": (int, 30,
                            "Forms (requests, sign-ins, replies, buttons) one client address may send to the pages "
                            "in an hour; more get a page saying to wait. Behind a proxy every client is the proxy."),
        "per_address_hour": (int, 5,
                             "Links (confirm a request, sign in) one mail address may be sent in an hour; the "
                             "worker's `loop_guard.per_recipient_hour` bounds them too."),
    },
    "metrics": {
        "listen": (str, "",
                   "Where `maild serve` serves its metrics in the Prometheus text format, as HOST:PORT "
                   "(`127.0.0.1:9125`); empty: none. Keep it local or behind the scraper's network: it tells "
                   "volumes, not contents."),
    },
    "cluster": {
        "node": (str, "",
                 "This node's name among the `maild serve` nodes that share one PostgreSQL database "
                 "(`maild status` lists them); empty: the machine's host name. Each node needs its own."),
        "lease": (int, 30,
                  "PostgreSQL: seconds a node's claim on an accepted message lasts; a node that dies or stalls "
                  "loses its claims after this long and another node processes the mail. At least 5."),
    },
    "loop_guard": {
        "per_recipient_hour": (int, 20,
                               "Automatic mails to one address outside the staff in the last hour; more are held "
                               "and the department is told."),
        "per_ticket_hour": (int, 30,
                            "Automatic mails about one ticket to people outside the staff in the last hour; more "
                            "are held and the department is told."),
        "new_tickets_per_sender_hour": (int, 20,
                                        "New tickets from one sender in an hour; more mail is recorded "
                                        "(`held-over-budget`, see `maild log`) but opens no ticket and alerts "
                                        "nobody, and the department is told once an hour."),
    },
    "reports": {
        "phone_to": (str, "",
                     "Where `maild report phone --mail` (the monthly timer) sends the phone-ticket report (HR); "
                     "one plain address, checked at start."),
        "summary_to": (str, "",
                       "Where `maild report summary --mail` sends the summary report; one plain address, "
                       "checked at start."),
    },
    "worker": {
        "batch_size": (int, 200, "Messages per database transaction."),
        "poll_interval": ((int, float), 0.2,
                          "Seconds between looks at an idle spool (and, in `maild serve`, at the outbox)."),
        "max_attempts": (int, 3, "Failed processing attempts of one message, in all, before it is quarantined."),
        "retry_delay": (int, 60,
                        "Seconds a message whose processing failed waits before the next attempt, doubled "
                        "after each failure."),
        "parse_processes": (int, 2,
                            "`maild serve`: processes that parse, classify and route mail beside the database "
                            "work (0: in the worker)."),
    },
}

# What each table is for, and the per-department tables ``[notifications.<DEPT>]``.
SECTION_DOCS: dict[str, str] = {
    "": "Keys before any table.",
    "smtp": "The SMTP intake of `maild serve` and its limits; each refusal is a status code a client understands.",
    "relay": "How outgoing mail leaves: through an SMTP relay, or into a local Maildir.",
    "tickets": "Conversations and who is in copy.",
    "web": "The employees' pages of `maild web` (the form, the category catalogue, \"мои заявки\"), a process of "
           "its own.",
    "attachments": "Attachments are stored apart from the message within these limits; the archived raw "
                   "message always keeps everything.",
    "auth": "How maild knows that a mail from a staff address really comes from that person (README, "
            "\"Trust model\").",
    "notifications": "Each kind of mail maild sends on its own can be switched off (`false`). Receipts of staff "
                     "commands, security notices and the answers the rules send always go.",
    "notifications.<DEPT>": "The switches and `new_ticket_to` of `[notifications]` for one department, named by "
                            "its code in capitals (`[notifications.OSA]`); what it sets wins over "
                            "`[notifications]`. The code must be a department of the rules, otherwise maild "
                            "stops (exit 78).",
    "loop_guard": "Budgets for automatic mail to people outside the staff (acknowledgements, answers, notices): "
                  "held mail is not sent (outbox status `held`, `maild outbox release` sends it), so maild and "
                  "another robot never answer each other for ever.",
    "metrics": "Counters and queue depths of `maild serve` for Prometheus (docs/operations.md#metrics).",
    "cluster": "Several `maild serve` nodes on one PostgreSQL database (docs/cluster.md); with SQLite there is "
               "one node and these keys do nothing.",
    "reports": "Where `maild report … --mail` sends the reports.",
    "worker": "The processing of the spool.",
}
# Keys of [notifications] a [notifications.<DEPT>] table may not set.
ALL_DEPARTMENTS_ONLY = ("overdue_days",)
