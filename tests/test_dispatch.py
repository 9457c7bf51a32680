"""The dry run is the worker's decision: ``maild rules test`` / ``maild replay`` and the worker
run the same table (deciding/dispatch.py), so for every mail they give the same disposition
and the dry run's plan names the mail the worker then sends. The dry run writes nothing:
its connection refuses writes, and every table is unchanged after it."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from maild.acting.models import Inbound, Outbox, Person
from maild.admin import dryrun
from maild.admin.cli import main
from maild.deciding import dispatch
from maild.reading.mail import ParseError
from maild.values import Envelope

from conftest import TRUSTED_DKIM, mail, require_corpus

ENVELOPE = Envelope(mail_from="sender@example.com", rcpt_to=("osticket@torex.ru",), peer="127.0.0.1")


def dry(h, raw: bytes, envelope: Envelope) -> dryrun.DryRun:
    cfg, current = h.app.config, h.app.organisation.policy
    return dryrun.explain(raw, envelope, current.org, current.rules, current.reader, h.worker().renderer,
                          h.app.engine, cfg.auth, h.worker().secret, cfg.tickets.reopen_days, cfg.hostname,
                          cfg.notifications, cfg.tickets.max_participants,
                          cfg.loop_guard.new_tickets_per_sender_hour)


def counts(h) -> dict[str, int]:
    with h.app.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in inspect(conn).get_table_names()}


def processed(h, raw: bytes, envelope: Envelope) -> tuple[str, list[tuple[str, str]]]:
    """The worker's disposition for one mail, and the mail it queued (kind, recipient)."""
    with h.session() as s:
        before = s.scalar(select(func.max(Outbox.id))) or 0
    item = h.app.spool.put(envelope, raw)
    h.worker().drain(relay=False)
    with h.session() as s:
        row = s.scalars(select(Inbound).where(Inbound.spool_id == item)).one()
        queued = [(o.kind, o.recipient) for o in s.scalars(select(Outbox).where(Outbox.id > before))
                  if o.kind != "loop"]
    return row.disposition, queued


def same_decision(h, raw: bytes, envelope: Envelope) -> str:
    before = counts(h)
    told = dry(h, raw, envelope)
    assert counts(h) == before, "the dry run wrote to the database"
    disposition, queued = processed(h, raw, envelope)
    assert told.disposition == disposition, (told.disposition, told.reason, disposition)
    # What the plan would send is what the worker queued (the loop guard may hold some
    # of it back, but it is queued all the same).
    assert Counter(m["to"].lower() for m in told.mail) == Counter(r.lower() for _, r in queued), told.plan
    return disposition


def test_every_corpus_file_gets_the_dry_runs_disposition(harness_factory, corpus_rules):
    corpus = require_corpus()
    h = harness_factory(rules=corpus_rules)
    seen = Counter()
    # Every file on SQLite; every other on PostgreSQL, whose part is the same read-only
    # connection (the whole corpus twice took a minute of CI's 15).
    step = 1 if h.app.config.db_url.startswith("sqlite") else 2
    for path in sorted(corpus.glob("*/*.eml"))[::step]:
        raw = path.read_bytes()
        try:
            seen[same_decision(h, raw, ENVELOPE)] += 1
        except ParseError:      # the worker quarantines what cannot be parsed; so must the dry run refuse it
            item = h.app.spool.put(ENVELOPE, raw)
            assert h.worker().drain(relay=False).quarantined == 1, path
            assert h.app.spool.is_quarantined(item)
            seen["quarantined"] += 1
        except AssertionError as exc:
            raise AssertionError(f"{path.parent.name}/{path.name}: {exc}") from None
    assert sum(seen.values()) > 300 // step
    # The corpus is mostly new mail and robots: both sides of the table are exercised.
    assert seen["ticket-created"] > 100 // step and seen["auto-reply-ignored"] + seen["bounce-recorded"] > 50 // step, \
        seen


STAFF = "Пётр Петров <p.petrov@torex.ru>"


def test_every_case_of_the_table_gets_the_dry_runs_disposition(maild):
    """One conversation through every row of the table, each mail told by the dry run first."""
    h = maild
    env = Envelope(mail_from="ivan@torex.ru", rcpt_to=("osticket@torex.ru",), peer="127.0.0.1")
    staff_env = Envelope(mail_from="p.petrov@torex.ru", rcpt_to=("osticket@torex.ru",), peer="127.0.0.1")
    web_env = Envelope(mail_from="ivan@torex.ru", rcpt_to=("osticket@torex.ru",), peer="web")
    steps = [
        (mail(message_id="first@torex.ru", sender="Иван <ivan@torex.ru>"), env, "ticket-created"),
        (mail(message_id="first@torex.ru", sender="Иван <ivan@torex.ru>"), env, "duplicate"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", body="Всё ещё не печатает."), env, "reply-added"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=STAFF, body="Посмотрим сегодня.",
              headers=TRUSTED_DKIM), staff_env, "response-added"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=STAFF, body="Без подписи."),
         Envelope("p.petrov@torex.ru", ("osticket@torex.ru",), "127.0.0.2"), "unauthenticated-staff"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=STAFF, body="#взять\n#заметка\nсам",
              headers=TRUSTED_DKIM), staff_env, "command-applied"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", sender=STAFF, body="#непонятно",
              headers=TRUSTED_DKIM), staff_env, "command-refused"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", sender="Анна <a.kozlova@torex.ru>",
              body="Я тоже"), Envelope("a.kozlova@torex.ru", ("osticket@torex.ru",), "127.0.0.1"),
         "ticket-created"),
        (mail(subject="история"), env, "history-sent"),
        (mail(subject="Профиль", body="#профиль\nТелефон: 2-34-56"), env, "profile-pending"),
        # (an outside envelope sender is refused at MAIL FROM, by intake: through the relay)
        (mail(sender="Некто <someone@example.org>"), env, "refused-domain"),
        (mail(sender="osticket@torex.ru"), env, "refused-own-address"),
        (mail(subject="Автоответ: Не печатает принтер", headers={"Auto-Submitted": "auto-replied"}), env,
         "auto-reply-ignored"),
        (mail(subject="Re: [#OSA-000001] Не печатает принтер", headers={"Auto-Submitted": "auto-replied"},
              body="Я в отпуске"), env, "auto-reply-recorded"),
        # What the web pages spool (peer "web"): a job mails a link; a confirmed request is mail.
        (mail(subject="web confirm", headers={"X-Maild-Web": "confirm", "X-Maild-Web-Link": "/confirm/abc"}),
         web_env, "web-link-sent"),
        (mail(subject="web sign-in", sender="x@example.org",
              headers={"X-Maild-Web": "sign-in", "X-Maild-Web-Link": "/my/enter/abc"}), web_env, "web-link-refused"),
        (mail(subject="С формы", headers={"X-Maild-Web": "request"}), web_env, "ticket-created"),
    ]
    got = []
    for raw, envelope, _ in steps:
        got.append(same_decision(h, raw, envelope))
    assert got == [expected for _, _, expected in steps]


def test_refused_and_robot_mail_adds_nobody_to_people(maild):
    """Deciding first: a refused outsider or a robot naming no ticket leaves no person behind
    (the worker used to store every sender before it knew what the mail was)."""
    outsider = Envelope("someone@example.org", ("osticket@torex.ru",), "127.0.0.1")
    maild.app.spool.put(outsider, mail(sender="someone@example.org"))
    maild.app.spool.put(Envelope("", ("osticket@torex.ru",), "127.0.0.1"),
                        mail(sender="MAILER-DAEMON@torex.ru", headers={"Auto-Submitted": "auto-replied"}))
    maild.worker().drain(relay=False)
    with maild.session() as s:
        assert s.scalars(select(Inbound.disposition)).all() == ["refused-domain", "bounce-recorded"]
        assert s.scalars(select(Person.email)).all() == []


def test_the_dry_run_connection_refuses_writes(maild):
    """Should a case ever try to write, the dry run fails loudly instead of writing."""
    notes: list[str] = []
    with dryrun._read_only(maild.app.engine, notes) as conn, pytest.raises(DBAPIError):   # the database refuses
        conn.execute(text("INSERT INTO ticket_counters (department, last_number) VALUES ('X', 1)"))
    assert counts(maild).get("ticket_counters", 0) == 0 and notes == []


def test_replay_decides_a_stored_message_as_if_new(maild):
    """``maild replay`` of a processed message: today's decision, not "a duplicate of itself"."""
    maild.app.spool.put(Envelope("ivan@torex.ru", ("osticket@torex.ru",), "127.0.0.1"),
                        mail(message_id="again@torex.ru"))
    maild.worker().drain(relay=False)
    with maild.session() as s:
        ident = s.scalars(select(Inbound.id)).one()
    result = CliRunner().invoke(main, ["replay", str(ident), "--json", "--data-dir",
                                       str(maild.app.config.data_dir), "--db", maild.app.config.db_url])
    out = json.loads(result.output)
    assert out["recorded"]["disposition"] == out["today"]["disposition"] == "ticket-created", out


def test_the_table_ends_with_the_case_that_takes_everything():
    assert dispatch.CASES[0] is dispatch.duplicate and dispatch.CASES[-1] is dispatch.new_request
    assert dispatch.CASES[1] is dispatch.web_link       # before anything reads the mail as a person's
    assert len(set(dispatch.CASES)) == len(dispatch.CASES)
