"""The admin's view of every message: `maild log`, `maild replay`, `maild quarantine`."""
from __future__ import annotations

import json
from dataclasses import replace

from click.testing import CliRunner

from maild.admin.cli import main

from conftest import mail


def cli(h, *args):
    return CliRunner().invoke(main, [*args, "--data-dir", str(h.app.config.data_dir), "--db", h.app.config.db_url],
                              catch_exceptions=False)


def scene(h, tmp_path) -> str:
    """A ticket, a robot, and a message whose processing fails until it is quarantined;
    returns the quarantined spool id."""
    h.send(mail(subject="Не печатает принтер"))
    h.send(mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    h.drain()
    good = h.app.config
    empty = tmp_path / "no-templates"
    empty.mkdir()
    h.app.config = replace(good, templates_dir=empty)            # every ack fails now
    h.send(mail(subject="Не открывается папка", message_id="broken@torex.ru"))
    for _ in range(3):
        h.drain()
    h.app.config = good
    [(item, reason)] = h.app.spool.quarantined()
    assert "failed 3 times" in reason
    return item


def test_log_shows_every_message_with_its_outcome(maild, tmp_path):
    item = scene(maild, tmp_path)
    rows = json.loads(cli(maild, "log", "--json").output)
    assert [r["disposition"] for r in rows] == ["ticket-created", "auto-reply-ignored", "quarantined"]
    assert rows[0]["ticket"] == "OSA-000001" and "Принтер" in rows[0]["reason"]
    assert "auto-submitted: auto-replied" in rows[1]["reason"] and rows[1]["ticket"] is None
    assert rows[2]["spool_id"] == item and "TemplateMissing" in rows[2]["reason"]
    only = json.loads(cli(maild, "log", "--disposition", "auto-reply-ignored", "--json").output)
    assert [r["subject"] for r in only] == ["Out of office"]
    text = cli(maild, "log", "--since", "today").output
    assert "ticket-created" in text and "quarantined" in text
    assert cli(maild, "log", "--since", "позавчера").exit_code == 2


def test_replay_runs_a_stored_message_through_todays_rules(maild, tmp_path):
    item = scene(maild, tmp_path)
    rows = json.loads(cli(maild, "log", "--json").output)
    result = json.loads(cli(maild, "replay", str(rows[1]["id"]), "--json").output)
    assert result["recorded"]["disposition"] == "auto-reply-ignored"
    assert result["today"]["disposition"] == "auto-reply-ignored"
    out = cli(maild, "replay", item).output             # the quarantined one, with today's templates
    assert out.startswith("recorded: quarantined") and "disposition: ticket-created" in out
    assert "Не открывается папка" in out
    with maild.session() as s:                          # a dry run: nothing written
        from maild.acting import store
        assert len(store.tickets(s)) == 1
    assert cli(maild, "replay", "999").exit_code == 1 and cli(maild, "replay", "../x").exit_code == 1


def test_quarantine_list_show_and_retry(maild, tmp_path):
    item = scene(maild, tmp_path)
    listed = json.loads(cli(maild, "quarantine", "list", "--json").output)
    assert [r["spool_id"] for r in listed] == [item] and listed[0]["from"] == "ivan@torex.ru"
    shown = cli(maild, "quarantine", "show", item).output
    assert "TemplateMissing" in shown and "Message-ID: <broken@torex.ru>" in shown
    result = cli(maild, "quarantine", "retry", item)
    assert result.exit_code == 0 and f"requeued {item}" in result.output
    assert maild.app.spool.quarantined() == []
    assert maild.drain().created == 1                   # the fix is in: it goes through
    assert "the quarantine is empty" in cli(maild, "quarantine", "list").output
    result = cli(maild, "quarantine", "retry", "nope")
    assert result.exit_code == 1 and "not in the quarantine: nope" in result.output


def test_a_second_delivery_of_the_same_mail_has_its_own_record(maild):
    raw = mail(message_id="twice@torex.ru")
    maild.send(raw)
    maild.send(raw, rcpt="osticket-1c@torex.ru")          # the same mail to both addresses
    maild.drain()
    rows = json.loads(cli(maild, "log", "--json").output)
    assert [(r["disposition"], r["ticket"]) for r in rows] == [("ticket-created", "OSA-000001"),
                                                              ("duplicate", "OSA-000001")]
    assert "same Message-ID" in rows[1]["reason"]


def test_a_duplicate_processed_again_after_a_crash_is_still_one_record(maild):
    import shutil
    raw = mail(message_id="same@torex.ru")
    maild.send(raw)
    maild.drain()
    maild.send(raw)
    maild.drain()
    # kill -9 between the commit and the archiving: the file is back in incoming/.
    archived = sorted(maild.app.config.mail_dir.rglob("*.msg"))[-1]
    shutil.copy(archived, maild.app.spool.incoming / archived.stem)
    summary = maild.drain()
    if maild.app.config.db_url.startswith("postgresql"):
        # The shared spool marked it done in the commit: the copy is recognised before it is
        # processed (intake/shared.py), and leaves nothing behind.
        assert (summary.processed, summary.retried, summary.quarantined) == (0, 0, 0)
        assert list(maild.app.spool.incoming.iterdir()) == []
    else:
        assert (summary.duplicates, summary.retried, summary.quarantined) == (1, 0, 0)
    rows = json.loads(cli(maild, "log", "--json").output)
    assert [r["disposition"] for r in rows] == ["ticket-created", "duplicate"]


def test_an_unreadable_spool_file_is_quarantined_and_the_queue_flows(maild):
    (maild.app.spool.incoming / "0000-garbage").write_bytes(b"\xff\xfe not a spool file")
    maild.send(mail())
    summary = maild.drain()
    assert summary.created == 1 and summary.quarantined == 1
    [(item, reason)] = maild.app.spool.quarantined()
    assert item == "0000-garbage" and "unreadable spool file" in reason
    result = cli(maild, "quarantine", "retry", f"{item}.reason")
    assert result.exit_code == 1 and "not in the quarantine" in result.output
    assert cli(maild, "quarantine", "show", f"{item}.reason").exit_code == 1
    shown = cli(maild, "quarantine", "show", item)
    assert shown.exit_code == 1 and "not readable" in shown.output and "Traceback" not in shown.output


def test_spool_prune_keeps_waiting_mail_and_says_what_it_did(maild):
    maild.send(mail(subject="Не печатает принтер"))         # waiting: never pruned, whatever its age
    done = cli(maild, "spool", "prune", "--older-than", "1")
    assert done.exit_code == 0
    if maild.app.config.db_url.startswith("sqlite"):
        assert done.output.startswith("nothing to prune: the spool table is used only with PostgreSQL")
    else:
        assert done.output.strip() == "pruned 0 processed messages done more than 1 days ago"
    assert maild.drain().created == 1
    assert json.loads(cli(maild, "spool", "prune", "--older-than", "1", "--json").output) == {"pruned": 0}
