"""``maild web``'s pages in a real browser (tests/browser.py: headless Chromium through
Selenium): what a person sees, not only what the server sends. The screenshots go to
docs/screenshots/."""
from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from maild.deciding.policy import load_policy

import browser as harness
from browser import PHONE, horizontal_overflow, resize, screenshot, wait
from conftest import MAILD, PROJECT, TRUSTED_DKIM, free_port, http_get, mail


def test_the_catalogue_in_chromium_is_russian_shows_every_department_and_fits_a_phone(web, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    base, rules = web
    org = load_policy(rules, PROJECT / "templates").org
    browser.get(base + "/categories")
    heading = wait(browser).until(EC.visibility_of_element_located((By.TAG_NAME, "h1")))
    assert browser.title == heading.text == "Категории обращений"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"

    sections = browser.find_elements(By.CSS_SELECTOR, "main > section")
    assert [s.get_attribute("id") for s in sections] == [d.code for d in org.departments]
    for department, section in zip(org.departments, sections, strict=True):
        assert section.find_element(By.TAG_NAME, "h2").text.startswith(department.name)
        addresses = section.find_elements(By.CSS_SELECTOR, "dd a[href^='mailto:']")
        assert [a.text for a in addresses] == [f"{department.local_part}+{c.tag}@{department.domain}"
                                               for c in department.categories]
        assert all(a.get_attribute("href") == f"mailto:{a.text}" for a in addresses)
        assert addresses[0].is_displayed()
    screenshot(browser, "categories")

    resize(browser, *PHONE)
    assert browser.execute_script("return document.documentElement.clientWidth") == PHONE[0]
    assert horizontal_overflow(browser) == 0
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(browser, "categories-phone")

    # The check sees an overflow when there is one: a block wider than the phone.
    browser.execute_script("const d = document.createElement('div'); d.style.width = '600px';"
                           "d.style.height = '1px'; document.querySelector('main').append(d);")
    assert horizontal_overflow(browser) >= 600 - PHONE[0]


def test_without_a_browser_a_test_skips_saying_what_to_install_but_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "CHROMEDRIVER", tmp_path / "chromedriver")
    monkeypatch.setattr(harness, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium chromium-driver"):
        harness.require_browser()
    monkeypatch.setattr(harness, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI must run them.*chromedriver"):
        harness.require_browser()
    monkeypatch.setattr(harness.importlib.util, "find_spec", lambda name: None)
    assert "selenium is not installed" in harness.missing()


# -- the whole way, as an employee goes it ---------------------------------------------------
class Helpdesk:
    """``maild serve --web`` on a fresh data directory, as ``make run`` starts it: no relay, so
    every mail it sends is a file in its Maildir, where the test reads it as the employee would."""

    def __init__(self, root: Path):
        self.root, self.smtp, port = root, free_port(), free_port()
        self.base = f"http://127.0.0.1:{port}"
        config = root / "maild.toml"
        # Staff mail counts as checked when the company's mail server says its DKIM passed.
        config.write_text(f'[web]\nlisten = "127.0.0.1:{port}"\n[auth]\ntrusted_hosts = ["mx.torex.ru"]\n'
                          'trusted_networks = ["127.0.0.1/32"]\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
        self.log = open(root / "serve.log", "w+")      # noqa: SIM115 - the daemon writes to it
        self.proc = subprocess.Popen([str(MAILD), "--config", str(config), "serve", "--web",
                                      "--smtp", f"127.0.0.1:{self.smtp}"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root)
        self.until(lambda: http_get(self.base + "/")[0] == 200, "the web pages to start")

    def until(self, condition, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if (found := condition()):
                    return found
            time.sleep(0.1)
        pytest.fail(f"waited {timeout:.0f} s for {what}:\n{(self.root / 'serve.log').read_text()}")

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        box = self.root / "var" / "outbox"
        files = sorted((p for d in ("new", "cur") if (box / d).is_dir() for p in (box / d).iterdir()),
                       key=lambda p: p.stat().st_mtime_ns)
        mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]
        return [m for m in mails if address in str(m["To"])]

    def mail_to(self, address: str, subject_has: str) -> email.message.EmailMessage:
        return self.until(lambda: next((m for m in reversed(self.mails_to(address))
                                        if subject_has in str(m["Subject"])), None),
                          f"a mail to {address} about {subject_has!r}")

    def link_in(self, message: email.message.EmailMessage) -> str:
        found = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", message.get_body(("plain",)).get_content())
        assert found, message
        return found.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        assert "Traceback" not in (self.root / "serve.log").read_text()


@pytest.fixture
def helpdesk(tmp_path):
    h = Helpdesk(tmp_path)
    yield h
    h.stop()


def test_an_employee_files_a_request_on_the_form_confirms_it_and_follows_it_on_my_requests(helpdesk, browser,
                                                                                           tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    def heading() -> str:
        return wait(browser).until(EC.visibility_of_element_located((By.TAG_NAME, "h1"))).text

    def press(text: str) -> None:
        button = browser.find_element(By.XPATH, f"//button[normalize-space()='{text}']")
        button.click()
        wait(browser).until(EC.staleness_of(button))

    ivan, h = "ivan@torex.ru", helpdesk
    photo = tmp_path / "полосы.txt"
    photo.write_text("полосы на каждой странице\n", encoding="utf-8")

    # The form: every department a group of its categories; fill it in as a person would.
    browser.get(h.base + "/")
    assert heading() == "Обращение в службу поддержки"
    groups = browser.find_elements(By.CSS_SELECTOR, "fieldset.department legend")
    org = load_policy(PROJECT / "rules", PROJECT / "templates").org
    assert [g.text for g in groups] == [f"{d.name} ({d.short})" for d in org.departments]
    browser.find_element(By.ID, "email").send_keys(ivan)
    browser.find_element(By.CSS_SELECTOR, "input[name=category][value='OSA:printer']").click()
    browser.find_element(By.ID, "subject").send_keys("Принтер печатает полосами")
    browser.find_element(By.ID, "text").send_keys("Принтер HP в 305 кабинете печатает полосами.\nКартридж новый.")
    browser.find_element(By.ID, "files").send_keys(str(photo))
    screenshot(browser, "form")
    press("Отправить")
    assert heading() == "Проверьте почту"

    # The confirmation mail: a link, and nothing typed on the form; its page files on the button.
    confirm = h.mail_to(ivan, "Подтвердите обращение")
    assert "Принтер печатает полосами" not in confirm.get_body(("plain",)).get_content()
    browser.get(h.link_in(confirm))
    assert heading() == "Подтвердите обращение"
    assert "Картридж новый." in browser.page_source and "полосы.txt" in browser.page_source
    screenshot(browser, "confirm")
    press("Подать заявку")
    assert heading() == "Заявка подана"

    # The acknowledgement, as for mail; staff answer by mail.
    ack = h.mail_to(ivan, "OSA-000001")
    assert "Принтер печатает полосами" in str(ack["Subject"])
    with smtplib.SMTP("127.0.0.1", h.smtp, timeout=30) as client:
        client.sendmail("p.petrov@torex.ru", ["osticket@torex.ru"],
                        mail(subject=f"Re: {ack['Subject']}", sender="Пётр Петров <p.petrov@torex.ru>",
                             body="Заменим барабан сегодня до обеда.",
                             headers={"In-Reply-To": ack["Message-ID"], **TRUSTED_DKIM}))
    h.until(lambda: len([m for m in h.mails_to(ivan) if "OSA-000001" in str(m["Subject"])]) == 2,
            "the staff answer to reach the employee")

    # "Мои заявки": sign in by the mailed link, read the conversation, reply.
    browser.get(h.base + "/my")
    browser.find_element(By.ID, "email").send_keys(ivan)
    press("Получить ссылку")
    assert heading() == "Проверьте почту"
    browser.get(h.link_in(h.mail_to(ivan, "Вход в «Мои заявки»")))
    press("Войти")
    assert heading() == "Мои заявки"
    row = browser.find_element(By.LINK_TEXT, "OSA-000001")
    screenshot(browser, "my")
    row.click()
    wait(browser).until(EC.title_contains("OSA-000001"))
    assert "Заменим барабан сегодня до обеда." in browser.page_source
    browser.find_element(By.ID, "text").send_keys("Спасибо, жду.")
    press("Ответить")
    assert "Ответ отправлен" in browser.page_source

    def reply_shown() -> bool:
        browser.refresh()
        return "Спасибо, жду." in browser.page_source

    h.until(reply_shown, "the reply on the ticket's page")
    resize(browser, *PHONE)
    assert horizontal_overflow(browser) == 0
    screenshot(browser, "my-ticket")
    browser.get(h.base + "/")
    assert horizontal_overflow(browser) == 0
    screenshot(browser, "form-phone")
