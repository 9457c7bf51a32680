"""Unit tests on inline mail: decoding, charsets, attachments, tokens, classification."""
from __future__ import annotations

import base64

import pytest

from maild.deciding.match import parse_number, subject_tokens
from maild.reading import charset
from maild.reading.classify import Kind, classify
from maild.reading.parse import parse
from maild.values import Envelope

RUSSIAN = "Добрый день! Не открывается сетевая папка бухгалтерии, пишет нет доступа."


@pytest.mark.parametrize("codec", ["cp1251", "koi8-r", "cp866", "utf-8"])
def test_undeclared_8bit_body_detected(codec):
    raw = b"From: a@torex.ru\r\nSubject: test\r\n\r\n" + RUSSIAN.encode(codec)
    assert parse(raw).text == RUSSIAN


@pytest.mark.parametrize("declared,actual", [("us-ascii", "cp1251"), ("windows-1251", "utf-8"),
                                             ("x-unknown", "koi8-r"), ("utf-8", "cp1251")])
def test_mislabelled_body_detected(declared, actual):
    raw = (f"From: a@torex.ru\r\nSubject: t\r\nContent-Type: text/plain; charset={declared}\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + RUSSIAN.encode(actual)
    assert parse(raw).text == RUSSIAN


def test_short_all_caps_koi8_word():
    assert charset.decode("ТЕСТ".encode("koi8-r")) == "ТЕСТ"


def test_latin1_text_is_not_taken_for_cyrillic():
    assert charset.decode("Formação Verão".encode("latin-1"), "iso-8859-1") == "Formação Verão"
    assert charset.decode("Formação Verão".encode("latin-1")) == "Formação Verão"


@pytest.mark.parametrize("codec", ["utf-8", "windows-1251", "koi8-r"])
def test_rfc2047_subject_and_name_in_any_charset(codec):
    def word(text):
        return f"=?{codec}?B?{base64.b64encode(text.encode(codec)).decode()}?="
    raw = (f"From: {word('Иван Петров')} <i.petrov@torex.ru>\r\nSubject: {word('Не печатает принтер')}\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nтекст").encode()
    m = parse(raw)
    assert m.subject == "Не печатает принтер"
    assert (m.sender.name, m.sender.email) == ("Иван Петров", "i.petrov@torex.ru")


def test_raw_8bit_subject_decoded():
    raw = "Subject: Не работает почта\r\nFrom: a@torex.ru\r\n\r\nтекст".encode("cp1251")
    assert parse(raw).subject == "Не работает почта"


def test_html_only_mail_becomes_readable_text():
    raw = ("From: a@torex.ru\r\nSubject: t\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           "<html><body><p>Не работает <b>сайт</b></p><p>Второй абзац</p><script>x()</script></body></html>").encode()
    m = parse(raw)
    assert m.text_from_html and "Не работает сайт" in m.text and "Второй абзац" in m.text and "<" not in m.text


def test_attachment_names_rfc2231_and_rfc2047_and_hash():
    payload = base64.b64encode(b"data").decode()
    raw = ("From: a@torex.ru\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nсм. вложение\r\n"
           "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
           "Content-Disposition: attachment; filename*=utf-8''%D0%A1%D1%87%D1%91%D1%82.pdf\r\n\r\n"
           f"{payload}\r\n"
           "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
           'Content-Disposition: attachment; filename="=?koi8-r?B?98/Q0s/T?=.txt"\r\n\r\n'
           f"{payload}\r\n--b--\r\n").encode()
    m = parse(raw)
    assert [(a.filename, a.size) for a in m.attachments] == [("Счёт.pdf", 4), ("Вопрос.txt", 4)]
    assert m.attachments[0].sha256 == "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
    assert m.text == "см. вложение"


def test_attachment_name_cannot_be_a_path():
    raw = (b"From: a@torex.ru\r\nSubject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: text/plain\r\n"
           b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n\r\nroot\r\n--b--\r\n')
    assert parse(raw).attachments[0].filename == "passwd"


def test_references_and_message_id_normalised():
    raw = (b"From: a@torex.ru\r\nMessage-ID: <x1@torex.ru>\r\nIn-Reply-To: <p@h>\r\n"
           b"References: <a@h>\r\n <b@h> <p@h>\r\nSubject: s\r\n\r\nbody")
    m = parse(raw)
    assert (m.message_id, m.in_reply_to, m.references) == ("x1@torex.ru", ("p@h",), ("a@h", "b@h", "p@h"))


def test_format_flowed_rejoined():
    raw = (b"From: a@torex.ru\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
           + "Очень длинная строка, которую \r\nклиент разбил.\r\n".encode())
    assert parse(raw).text == "Очень длинная строка, которую клиент разбил."


@pytest.mark.parametrize("subject,expected", [
    ("[#OSA-000001] x", ["OSA-000001"]),
    ("RE: FW: [osa-1] x", ["OSA-000001"]),
    ("Re^2: [#DAB-0042]", ["DAB-000042"]),
    ("Пересл.: Ответ: [# OSA-12 ] x", ["OSA-000012"]),
    ("[#XYZ-000001] not ours", []),
    ("[#OSA-0] zero", []),
    ("OSA-000001 without brackets", []),
])
def test_subject_tokens(subject, expected):
    assert subject_tokens(subject, {"OSA", "DAB"}) == expected


def test_parse_number_as_people_type_it():
    assert parse_number("osa-1", {"OSA"}) == "OSA-000001"
    assert parse_number("#OSA-000007", {"OSA"}) == "OSA-000007"
    assert parse_number("nonsense", {"OSA"}) is None


@pytest.mark.parametrize("headers,mail_from,kind", [
    (b"Auto-Submitted: auto-replied\r\n", "a@torex.ru", Kind.AUTOMATIC),
    (b"Auto-Submitted: no\r\n", "a@torex.ru", Kind.PERSONAL),
    (b"Precedence: junk\r\n", "a@torex.ru", Kind.AUTOMATIC),
    (b"Precedence: list\r\n", "a@torex.ru", Kind.AUTOMATIC),
    (b"X-Autoreply: yes\r\n", "a@torex.ru", Kind.AUTOMATIC),
    (b"", "", Kind.BOUNCE),
    (b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", "a@torex.ru", Kind.BOUNCE),
    (b"", "a@torex.ru", Kind.PERSONAL),
])
def test_classify(headers, mail_from, kind):
    raw = b"From: a@torex.ru\r\nSubject: s\r\n" + headers + b"\r\nbody"
    verdict = classify(parse(raw), Envelope(mail_from=mail_from, rcpt_to=("osticket@torex.ru",)))
    assert verdict.kind is kind and verdict.reason


def test_cr_only_line_endings():
    m = parse(b"From: a@torex.ru\rSubject: old mac\r\rbody line\r")
    assert m.subject == "old mac" and m.text == "body line"


def test_a_raw_8bit_sender_name_is_read_in_its_charset():
    from maild.reading.parse import parse
    for codec in ("utf-8", "cp1251"):
        mail = parse("From: Иван Петров <ivan@torex.ru>\r\nSubject: x\r\n\r\nтекст".encode(codec))
        assert (mail.sender.name, mail.sender.email, mail.sole_author) == ("Иван Петров", "ivan@torex.ru", True)
