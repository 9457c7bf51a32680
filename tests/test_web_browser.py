"""``maild web``'s pages in a real browser (tests/browser.py: headless Chromium through
Selenium): what a person sees, not only what the server sends. The screenshots go to
docs/screenshots/."""
from __future__ import annotations

import pytest

from maild.deciding.policy import load_policy

import browser as harness
from browser import PHONE, horizontal_overflow, resize, screenshot, wait
from conftest import PROJECT


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
