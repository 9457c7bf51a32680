"""A real browser for tests of maild's web pages: Debian's Chromium, headless, driven by
Selenium through Debian's chromedriver.

tests/conftest.py registers this module as a plugin, so a test just names the fixture::

    from browser import PHONE, horizontal_overflow, resize, screenshot, wait

    def test_the_page_fits_a_phone(web, browser):
        base, _ = web
        browser.get(base + "/categories")
        wait(browser).until(lambda d: d.find_element("css selector", "h1").is_displayed())
        resize(browser, *PHONE)
        assert horizontal_overflow(browser) == 0
        screenshot(browser, "categories-phone")

``browser`` is Selenium's own ``webdriver.Chrome``, with a fresh profile for each test, a
desktop viewport (``DESKTOP``) unless the test asks for another one with
``@pytest.mark.parametrize("browser", [PHONE], indirect=True)``, and chromedriver's log in the
test's ``tmp_path``. Where Chromium, chromedriver or selenium is missing the test is skipped
with what to install, except in CI (``CI=true``), where it fails: CI must have them (.ci/run
installs them), as it must have the corpus (``require_corpus``).

Import selenium's own names (``By``, ``expected_conditions``) inside the test function, not
at the top of the test module: then a machine without selenium skips the test instead of
failing to collect the module.
"""
from __future__ import annotations

import base64
import importlib.util
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import IN_CI

if TYPE_CHECKING:
    from selenium.webdriver import Chrome
    from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# `make screenshots` writes them into docs/screenshots/ (the docs show them); a plain test run
# into a temporary folder, so `make test` leaves the tree as it was (the pages show times).
SCREENSHOTS = Path(os.environ.get("MAILD_SCREENSHOTS") or Path(tempfile.gettempdir()) / "maild-screenshots")

# Viewports in CSS pixels: a common phone (iPhone 12-15) and a laptop.
PHONE = (390, 844)
DESKTOP = (1280, 800)

FLAGS = (
    "--headless=new",
    "--no-sandbox",                      # the tests run as root here and in CI: no sandbox for root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    # The machine's network reaches no Google host: without these Chromium keeps trying.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--lang=ru",                         # the browser's own words (form validation) as employees see them
)


def missing() -> str | None:
    """What to install for the browser tests, in one line, or None when all is there."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed: make install (it is in the test extra)"
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if absent:
        return f"no {' or '.join(absent)}: apt-get install chromium chromium-driver (as .ci/run does)"
    return None


def require_browser() -> None:
    reason = missing()
    if reason:
        if IN_CI:
            pytest.fail(f"the browser tests cannot run, and CI must run them: {reason}")
        pytest.skip(f"the browser tests need a browser: {reason}")


def start(profile: Path, log: Path, width: int, height: int) -> Chrome:
    """Headless Chromium on the profile folder ``profile``, its viewport ``width`` x ``height``."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The driver's path given, Selenium looks for no driver of its own (Selenium Manager would
    # try to download one, and this machine reaches no such host).
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        said = (exc.msg or str(exc)).strip().splitlines()[0]
        pytest.fail(f"Chromium did not start: {said} (chromedriver's log: {log})")
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        resize(driver, width, height)
    except BaseException:
        driver.quit()
        raise
    return driver


@pytest.fixture
def browser(request, tmp_path) -> Iterator[Chrome]:
    """Headless Chromium for one test (see the module's docstring); closed afterwards."""
    require_browser()
    width, height = getattr(request, "param", DESKTOP)
    with tempfile.TemporaryDirectory(prefix="maild-chromium-", ignore_cleanup_errors=True) as profile:
        driver = start(Path(profile), tmp_path / "chromedriver.log", width, height)
        try:
            yield driver
        finally:
            driver.quit()


def resize(driver: Chrome, width: int, height: int, *, mobile: bool | None = None) -> None:
    """Make the viewport exactly ``width`` x ``height`` CSS pixels, from now on, across
    navigations. ``mobile`` (by default: narrower than 600 px) emulates a phone: the page's
    viewport meta tag counts and scrollbars take no room, as on a phone.

    Not ``driver.set_window_size``: headless Chromium keeps a window at least 500 px wide and
    takes room from its height for a toolbar it does not draw, so the viewport is not the size
    asked for."""
    if mobile is None:
        mobile = width < 600
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
                            "screenWidth": width, "screenHeight": height})
    wait(driver).until(lambda d: d.execute_script("return [screen.width, screen.height]") == [width, height])


def horizontal_overflow(driver: Chrome) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no sideways scrolling).

    Compared with the root element's clientWidth, not ``window.innerWidth``: on an emulated
    phone innerWidth grows to the content's width (the page is zoomed out to fit), so
    ``scrollWidth <= innerWidth`` holds even for a page that overflows."""
    return int(driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def wait(driver: Chrome, timeout: float = 10.0) -> WebDriverWait:
    """An explicit wait: ``wait(driver).until(condition)``; never ``time.sleep``."""
    from selenium.webdriver.support.wait import WebDriverWait
    return WebDriverWait(driver, timeout)


def screenshot(driver: Chrome, name: str) -> Path:
    """Save the whole page, its full height, as ``<name>.png`` (``make screenshots``: in
    docs/screenshots/); returns the path."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"a screenshot's name is lowercase letters, digits and '-': {name!r}")
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content, viewport = metrics["cssContentSize"], metrics["cssLayoutViewport"]
    clip = {"x": 0, "y": 0, "scale": 1,
            "width": max(content["width"], viewport["clientWidth"]),
            "height": min(max(content["height"], viewport["clientHeight"]), 16384)}   # Chromium's limit
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
