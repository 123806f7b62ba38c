"""Browser tier: the console in headless Chromium (Debian's ``chromium``, driven by Playwright)
against its own embedded stack loaded with the demo's data (customers, a model, an experiment)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from embedded import demo
from embedded.stack import LOCAL_API_KEY, EmbeddedStack

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 30_000  # a page waits on the embedded stack, slow while the other tiers load the machine
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "console"  # written with CONSOLE_SCREENSHOTS=1


@dataclass
class Site:
    url: str
    empty: dict[str, str]  # what the pages showed before any data: page -> its text
    empty_errors: list[str]


@pytest.fixture(scope="package")
def site(browser: object) -> Iterator[Site]:
    """The console on one stack (moto's backends are per process: one stack per worker), looked
    at while empty (as `make local DEMO=0` starts), then loaded with the demo's data."""
    parameters = {"ModelRefreshSeconds": "1"}  # the empty look must not keep "no model" in the API's cache
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO(), parameters=parameters) as stack:
        assert stack.api is not None
        url = f"{stack.api.url}/console"
        empty, errors = _look_while_empty(browser, url)
        with contextlib.redirect_stdout(io.StringIO()):
            demo.run(stack)
        yield Site(url, empty, errors)


@pytest.fixture(scope="package")
def console(site: Site) -> str:
    """The console's URL on a stack holding the demo's data."""
    return site.url


def _look_while_empty(browser: object, url: str) -> tuple[dict[str, str], list[str]]:
    context = browser.new_context()  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    tab = Console(context.new_page(), url)
    tab.sign_in()
    seen = {}
    for page, link in (("segments", "Segments"), ("experiments", "Experiments")):
        tab.page.get_by_role("link", name=link, exact=True).click()  # type: ignore[attr-defined]
        tab.page.locator("#view h2", has_text=link).wait_for()  # type: ignore[attr-defined]  # (the CSP forbids eval)
        seen[page] = tab.page.inner_text("#view")  # type: ignore[attr-defined]
    context.close()
    return seen, tab.errors


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.fail("needs Chromium: `make browser` installs Debian's chromium (or set CHROMIUM=/path/to/chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Console:
    """A signed-in tab that records every console error and uncaught exception."""

    def __init__(self, page: object, url: str) -> None:
        self.page, self.url, self.errors = page, url, []  # type: ignore[var-annotated]
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: self.errors.append(str(e)))  # type: ignore[attr-defined]

    def sign_in(self, key: str = LOCAL_API_KEY) -> None:
        page = self.page
        page.goto(self.url)  # type: ignore[attr-defined]
        page.get_by_label("API key").fill(key)  # type: ignore[attr-defined]
        page.get_by_role("button", name="Open the console").click()  # type: ignore[attr-defined]

    def screenshot(self, name: str) -> None:
        if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


@pytest.fixture
def tab(browser: object, console: str) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1366, "height": 800}, accept_downloads=True)  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    shown = Console(context.new_page(), console)
    yield shown
    context.close()
    assert shown.errors == [], shown.errors  # no page may log an error
