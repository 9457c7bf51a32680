"""The web form and "мои заявки" over real HTTP (issue 15): the pages of ``maild web`` on a
loopback port, the real SMTP intake, worker and relay sink beside them, on both databases.
What the form files must be exactly what mail files; every refusal is a page in Russian
that files nothing."""
from __future__ import annotations

import email
import email.policy
import html
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from maild.acting import store
from maild.acting.models import Ticket
from maild.web.gate import Gate
from maild.web.state import WebState
from maild.web.tokens import Purpose

from conftest import TRUSTED_DKIM, mail
from web_client import Client, Pages, pages_for

IVAN = "ivan@torex.ru"
PETROV = "Пётр Петров <p.petrov@torex.ru>"
REQUEST = {"email": IVAN, "category": "OSA:printer", "subject": "Принтер мажет",
           "text": "Принтер в 305 кабинете печатает полосами.\nКартридж меняли на прошлой неделе."}


@pytest.fixture
def pages(maild):
    site, serving = pages_for(maild)
    with serving as base:
        yield Pages(maild, site, base)


def tickets(h) -> list:
    with h.session() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)))


def spooled(h) -> int:
    return sum(1 for _ in h.app.spool.incoming.iterdir())


def file_request(pages: Pages, fields: dict | None = None, files=()) -> str:
    """The whole way of a request on the form: submitted, confirmed from the mail; returns the
    path of the confirmation link."""
    c = pages.client()
    sent = c.submit("/", fields or REQUEST, files=list(files))
    assert sent.status == 303 and sent.headers["Location"] == "/sent", sent.text
    link = pages.link_in_mail_to((fields or REQUEST)["email"])
    page = c.get(link)
    assert page.status == 200 and "Подать заявку" in page.text
    done = c.post(link, {"csrf": page.csrf})
    assert done.status == 200 and "Заявка подана" in done.text, done.text
    pages.h.drain()
    return link


def test_a_request_on_the_form_becomes_the_ticket_a_mail_would_make(pages):
    h = pages.h
    form = pages.client().get("/")
    assert form.status == 200
    org = h.app.organisation()
    for department in org.departments:                    # both departments, every category
        assert f"<legend>{department.name} ({department.short})</legend>" in form.text
        assert f'value="{department.code}:"' in form.text      # "не знаю"
        for category in department.categories:
            assert f'value="{department.code}:{category.tag}"' in form.text
            assert html.escape(category.description, quote=False) in form.text
            assert html.escape(category.examples[0], quote=False) in form.text
    c = pages.client()
    sent = c.submit("/", REQUEST, files=[("files", "отчёт.txt", b"page 1 of the test print")])
    assert sent.status == 303
    assert tickets(h) == []                                # nothing filed before the address says so
    [confirm] = [m for m in (h.drain() and h.sent_to(IVAN))]
    assert "Подтвердите обращение" in confirm.subject and "«Принтер»" in confirm.body
    assert "Принтер мажет" not in confirm.body             # nothing typed on the form is mailed
    link = pages.link_in_mail_to(IVAN)
    for _ in range(3):                                     # a mail scanner opening the link files nothing
        page = c.get(link)
        assert page.status == 200 and "Принтер мажет" in page.text and "отчёт.txt" in page.text
    h.drain()
    assert tickets(h) == []
    done = c.post(link, {"csrf": page.csrf})
    assert "Заявка подана" in done.text
    h.drain()
    [t] = tickets(h)
    assert (t.source, t.department, t.category, t.subject) == ("web", "OSA", "Принтер", "Принтер мажет")
    with h.session() as s:
        full = store.ticket_with_entries(s, t.number)
        assert "печатает полосами" in full.entries[0].body
        assert [a.filename for a in full.entries[0].attachments] == ["отчёт.txt"]
    [ack] = [m for m in h.sent_to(IVAN) if t.number in m.subject]
    staff = [m for m in h.sink.messages if IVAN not in m.rcpt_tos and t.number in m.subject]
    assert staff, "the department is alerted as for mail"
    # A reply to the acknowledgement continues the same ticket, as for mail.
    h.send(mail(subject=f"Re: {ack.subject}", body="Забыл: принтер HP 400.",
                headers={"In-Reply-To": ack.msg["Message-ID"]}))
    outcome = h.drain().outcomes[-1]
    assert outcome.disposition == "reply-added" and outcome.ticket == t.number
    # The link again says so; pressing the button again (an old tab) files nothing more.
    assert "уже подана" in c.get(link).text
    again = c.post(link, {"csrf": page.csrf})
    assert again.status == 200 and "уже подана" in again.text
    h.drain()
    assert len(tickets(h)) == 1


def test_not_knowing_the_category_leaves_it_to_the_reading(pages):
    file_request(pages, REQUEST | {"category": "DAB:", "subject": "Вопрос", "text": "Не проводится документ в 1С"})
    [t] = tickets(pages.h)
    assert t.department == "DAB" and t.source == "web"


def test_a_refusal_files_nothing_and_keeps_what_was_typed(pages):
    h = pages.h
    for fields, said in [
        (REQUEST | {"email": "ivan@gmail.com"}, "только с корпоративных адресов"),
        (REQUEST | {"email": "osticket@torex.ru"}, "только с корпоративных адресов"),
        (REQUEST | {"email": "не адрес"}, "Укажите адрес"),
        (REQUEST | {"category": "OSA:nothing"}, "Выберите отдел и категорию"),
        (REQUEST | {"category": "XYZ:printer"}, "Выберите отдел и категорию"),
        (REQUEST | {"text": "  "}, "Опишите проблему"),
        (REQUEST | {"subject": ""}, "Напишите тему"),
    ]:
        answer = pages.client().submit("/", fields)
        assert answer.status == 422 and said in answer.text, fields
        assert "печатает полосами" in answer.text or fields["text"].strip() == ""     # kept for the next try
    assert spooled(h) == 0 and not any((h.app.config.data_dir / "web" / "pending").iterdir())


@pytest.mark.parametrize("how", ["no cookie", "another browser's field", "foreign origin", "cross-site fetch",
                                 "null origin alone", "no field", "forged field"])
def test_a_forged_form_is_refused(pages, how):
    h, c = pages.h, pages.client()
    page = c.get("/")
    token = page.csrf
    headers, origin = {}, "same"
    if how == "no cookie":
        c.jar.clear()
    elif how == "another browser's field":
        token = pages.client().get("/").csrf
    elif how == "foreign origin":
        origin = "http://evil.example"
    elif how == "cross-site fetch":
        headers = {"Sec-Fetch-Site": "cross-site"}
    elif how == "null origin alone":        # a sandboxed frame, a data: page
        origin, headers = None, {"Origin": "null"}
    elif how == "no field":
        token = ""
    elif how == "forged field":
        token = URLSafeTimedSerializer(b"not the secret", salt="maild-web-form").dumps({"n": "x" * 32})
    answer = c.post("/", {"csrf": token, **REQUEST}, headers=headers, origin=origin)
    assert answer.status == 403 and "Форма" in answer.text
    assert spooled(h) == 0


def test_an_older_browser_without_origin_headers_still_works(pages):
    c = pages.client()
    page = c.get("/")
    assert c.post("/", {"csrf": page.csrf, **REQUEST}, origin=None).status == 303
    # Chromium on a page without a referrer: Origin null, but its own word that it is ours.
    assert c.post("/", {"csrf": page.csrf, **REQUEST | {"email": "o.belova@torex.ru"}}, origin=None,
                  headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"}).status == 303


class _Past(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 24 * 3600


def _old(site, purpose: Purpose, payload: dict) -> str:
    """A link made two days ago with the real key (as if the clock had moved)."""
    return URLSafeTimedSerializer(site.signer.secret, salt=f"maild-web-{purpose.value}", signer=_Past).dumps(payload)


def test_expired_tampered_and_misused_links_are_refused(pages):
    h, c = pages.h, pages.client()
    c.submit("/", REQUEST)
    link = pages.link_in_mail_to(IVAN)
    token = link.rsplit("/", 1)[1]
    pending = pages.site.signer.loads(Purpose.CONFIRM, token, 3600)
    expired = c.get("/confirm/" + _old(pages.site, Purpose.CONFIRM, pending))
    assert expired.status == 410 and "устарела" in expired.text
    tampered = c.get("/confirm/" + token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    assert tampered.status == 404 and "неверна" in tampered.text
    # A sign-in link is no confirmation link, and the other way round.
    sign_in = pages.site.signer.dumps(Purpose.SIGN_IN, {"a": IVAN, "g": 0})
    assert c.get("/confirm/" + sign_in).status == 404
    assert c.get("/my/enter/" + token).status == 404
    # Pressing an expired link's button files nothing either.
    page = c.get(link)
    assert c.post("/confirm/" + _old(pages.site, Purpose.CONFIRM, pending), {"csrf": page.csrf}).status == 410
    h.drain()
    assert tickets(h) == []


def test_files_over_the_mail_limit_are_refused_before_they_are_read(maild_small, tmp_path):
    h, pages = maild_small
    c = pages.client()
    limit = pages.site.max_upload
    answer = c.submit("/", REQUEST, files=[("files", "big.bin", b"x" * (limit + 1))])
    assert answer.status == 413 and "МБ" in answer.text
    assert spooled(h) == 0
    fits = c.submit("/", REQUEST, files=[("files", "fits.bin", b"x" * (limit - 10_000))])
    assert fits.status == 303


@pytest.fixture
def maild_small(harness_factory):
    from dataclasses import replace
    h = harness_factory(configure=lambda cfg: replace(cfg, smtp=replace(cfg.smtp, max_message_size=400_000)))
    site, serving = pages_for(h)
    with serving as base:
        yield h, Pages(h, site, base)


def test_rate_limits_per_address_and_per_client(pages):
    h = pages.h
    allowed = h.app.config.web.per_address_hour
    answers = [pages.client().submit("/", REQUEST).status for _ in range(allowed + 1)]
    assert answers == [303] * allowed + [429]
    other = pages.client().submit("/", REQUEST | {"email": "o.belova@torex.ru"})
    assert other.status == 303                            # another address is not held up
    per_client = h.app.config.web.per_client_hour
    statuses = [pages.client().submit("/", REQUEST | {"email": f"user{i}@torex.ru"}).status
                for i in range(per_client)]
    assert statuses[-1] == 429 and "Слишком много запросов" in pages.client().submit("/", REQUEST).text


def _signed_in(pages: Pages, address: str = IVAN):
    c = pages.client()
    sent = c.submit("/my", {"email": address})
    assert sent.status == 303 and sent.headers["Location"] == "/my/sent"
    link = pages.link_in_mail_to(address)
    page = c.get(link)
    assert page.status == 200 and "Войти" in page.text and address in page.text
    entered = c.post(link, {"csrf": page.csrf})
    assert entered.status == 303 and entered.headers["Location"] == "/my"
    return c, link


def test_my_requests_shows_only_ones_own_public_conversation_and_files_a_reply(pages):
    h = pages.h
    file_request(pages)
    [t] = tickets(h)
    h.send(mail(subject=f"Re: [#{t.number}] Принтер мажет", sender=PETROV, body="Заменим барабан сегодня.",
                headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    h.send(mail(subject=f"Re: [#{t.number}] Принтер мажет", sender=PETROV,
                body="#заметка\nБарабан списан, акт СЕКРЕТ-77", headers=TRUSTED_DKIM), sender="p.petrov@torex.ru")
    h.send(mail(subject="Не работает мышь", sender="Ольга Белова <o.belova@torex.ru>", body="Мышь не двигается."),
           sender="o.belova@torex.ru")
    h.drain()
    other = [x for x in tickets(h) if x.number != t.number][0]
    c, _ = _signed_in(pages)
    listing = c.get("/my")
    assert t.number in listing.text and other.number not in listing.text and "Выйти везде" in listing.text
    page = c.get(f"/my/{t.number}")
    assert "Заменим барабан сегодня" in page.text and "печатает полосами" in page.text
    assert "СЕКРЕТ-77" not in page.text                    # never an internal note
    for number in (other.number, "OSA-999999", "x%22%3E%3Cb%3E"):  # not theirs, not there: the same page
        answer = c.get(f"/my/{number}")
        assert answer.status == 404 and "нет заявки" in answer.text and "Мышь" not in answer.text
    assert c.post(f"/my/{other.number}", {"csrf": page.csrf, "text": "чужое"}).status == 404
    replied = c.post(f"/my/{t.number}", {"csrf": page.csrf, "text": "Спасибо, жду."})
    assert replied.status == 303
    outcome = h.drain().outcomes[-1]
    assert outcome.disposition == "reply-added" and outcome.ticket == t.number
    assert "Спасибо, жду." in c.get(f"/my/{t.number}").text
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 2


def test_sign_in_tells_nothing_about_the_address(pages):
    h = pages.h
    file_request(pages)
    with_tickets = pages.client().submit("/my", {"email": IVAN})
    without = pages.client().submit("/my", {"email": "nobody.here@torex.ru"})
    assert with_tickets.status == without.status == 303
    assert with_tickets.headers["Location"] == without.headers["Location"]
    assert pages.client().get("/my/sent").text.count("Если адрес верен") == 1
    outside = pages.client().submit("/my", {"email": "ivan@gmail.com"})
    assert outside.status == 422 and "корпоративных" in outside.text
    h.drain()


def test_leaving_everywhere_ends_every_link_and_session(pages):
    c, link = _signed_in(pages)
    second, _ = _signed_in(pages)
    listing = c.get("/my")
    assert "Выйти везде" in listing.text
    assert c.post("/my/leave", {"csrf": listing.csrf}).status == 303
    for browser in (c, second):
        assert "Получить ссылку" in browser.get("/my").text     # signed out, both
    revoked = pages.client().get(link)
    assert revoked.status == 410 and "отозвана" in revoked.text
    _signed_in(pages)                                           # a new link works


def test_a_job_is_believed_only_from_the_web_pages(pages):
    """The header the web pages write means nothing on mail that came by SMTP."""
    h = pages.h
    h.send(mail(subject="web confirm", headers={"X-Maild-Web": "confirm", "X-Maild-Web-Link": "/confirm/x"}))
    outcome = h.drain().outcomes[-1]
    assert outcome.disposition == "ticket-created"
    [t] = tickets(h)
    assert t.source == "email"
    assert not [m for m in h.sent_to(IVAN) if "Подтвердите" in m.subject]


def test_the_confirmation_goes_through_the_loop_guard_and_the_log(pages):
    h = pages.h
    pages.client().submit("/", REQUEST)
    outcome = h.drain().outcomes[-1]
    assert outcome.disposition == "web-link-sent"
    with h.session() as s:
        [row] = [r for r in store.outbox_rows(s) if r.kind == "web-link"]
        assert row.recipient == IVAN
        body = email.message_from_string(row.raw, policy=email.policy.default).get_content()
        assert "/confirm/" in body


def test_an_admin_revokes_an_address_from_the_command_line(pages):
    c, link = _signed_in(pages)
    cfg = pages.h.app.config
    done = subprocess.run([str(Path(sys.executable).with_name("maild")), "--data-dir", str(cfg.data_dir),
                           "--db", cfg.db_url, "web", "--revoke", "Ivan@torex.ru"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "every link and session of ivan@torex.ru ended" in done.stdout, done.stderr
    assert "Получить ссылку" in c.get("/my").text
    assert pages.client().get(link).status == 410


def _connect(base: str, source: str = "127.0.0.1") -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")          # headers begun, never finished
    return s


def _closed(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_client_holding_connections_cannot_take_the_pages_from_others(maild):
    """Slowloris: connections that never finish their headers, or trickle a body, are counted
    per client and closed when they send too little (web/gate.py)."""
    site, serving = pages_for(maild, Gate(per_client=3, window=1.0, min_rate=64))
    with serving as base:
        held = [_connect(base) for _ in range(3)]
        over = _connect(base)
        assert _closed(over, 2.0)                          # the fourth of one client: closed at once
        other = _connect(base, source="127.0.0.2")          # another client is served meanwhile
        other.sendall(b"\r\n")
        assert other.recv(100).startswith(b"HTTP/1.1 200")
        assert all(_closed(s, 3.0) for s in held)          # too little sent: closed by the gate
        slow = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=5)
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\n")
        assert _closed(slow, 3.0)                          # a trickled body too
        assert Client(base).get("/categories").status == 200   # and the pages go on
        for s in (*held, over, slow, other):
            s.close()


# -- found by a black-box attack ------------------------------------------------------------------
def test_an_address_with_a_tag_is_refused(pages):
    for path, fields in (("/", REQUEST | {"email": "ivan+srochno.smenite.parol@torex.ru"}),
                         ("/my", {"email": "ivan+x1@torex.ru"})):
        answer = pages.client().submit(path, fields)
        assert answer.status == 422 and "без «+…»" in answer.text
    assert spooled(pages.h) == 0


def test_a_sign_in_link_signs_in_once(pages):
    c, link = _signed_in(pages)
    stranger = pages.client()
    page = stranger.get(link)                       # still shows its button (a GET does nothing) ...
    used = stranger.post(link, {"csrf": page.csrf})
    assert used.status == 410 and "уже использована" in used.text     # ... but opens nothing
    assert "Получить ссылку" in stranger.get("/my").text
    assert "Выйти везде" in c.get("/my").text       # the one who used it stays signed in


@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1:{port}", "http://127.0.0.1:1"])
def test_the_origin_must_be_our_pages_whatever_the_host_header_says(pages, origin):
    c = pages.client()
    page = c.get("/")
    port = pages.base.rsplit(":", 1)[1]
    host = origin.format(port=port).split("//", 1)[1]
    answer = c.post("/", {"csrf": page.csrf, **REQUEST}, origin=None,          # DNS rebinding: Host agrees
                    headers={"Origin": origin.format(port=port), "Host": host})
    assert answer.status == 403 and spooled(pages.h) == 0


def test_a_subject_that_looks_like_an_encoded_word_stays_text(pages):
    file_request(pages, REQUEST | {"subject": "=?utf-8?q?Bcc=3A_evil?= принтер"})
    [t] = tickets(pages.h)
    assert t.subject.startswith("=") and "Bcc: evil" not in t.subject


def test_presses_at_once_file_one_ticket_and_all_say_it_is_filed(pages):
    c = pages.client()
    c.submit("/", REQUEST)
    link = pages.link_in_mail_to(IVAN)
    csrf = c.get(link).csrf
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: c.post(link, {"csrf": csrf}), range(10)))
    assert all(a.status == 200 and "подана" in a.text for a in answers), [a.status for a in answers]
    pages.h.drain()
    assert len(tickets(pages.h)) == 1


def test_what_waits_for_confirmation_only_maild_may_read(pages):
    pages.client().submit("/", REQUEST)
    [kept] = list((pages.h.app.config.data_dir / "web" / "pending").iterdir())
    assert kept.stat().st_mode & 0o077 == 0


def test_head_is_answered_and_https_pages_ask_for_https(pages):
    answer = pages.client().request("HEAD", "/")
    assert answer.status == 200 and "Strict-Transport-Security" not in answer.headers
    pages.site.public_url = "https://helpdesk.torex.ru"
    assert pages.client().get("/categories").headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_press_the_process_died_in_can_be_pressed_again(pages):
    """Killed between taking the request and spooling it: the next start puts it back."""
    c = pages.client()
    c.submit("/", REQUEST)
    link = pages.link_in_mail_to(IVAN)
    pending = pages.h.app.config.data_dir / "web" / "pending"
    [kept] = list(pending.iterdir())
    kept.rename(pending / f".{kept.name}.taken")            # as a press leaves it mid-way
    WebState(pending.parent, 3600)                          # the pages start again
    done = c.post(link, {"csrf": c.get(link).csrf})
    assert "Заявка подана" in done.text
    pages.h.drain()
    assert len(tickets(pages.h)) == 1
