"""Browser tier: the console in headless Chromium (Debian's ``chromium``, driven by Playwright)
against its own embedded stack loaded with the demo's data (customers, a model, an experiment)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from embedded import demo
from embedded.stack import LOCAL_API_KEY, LOCAL_WRITE_KEY, EmbeddedStack

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


# --- The browser SDKs' test shop (tests/browser/test_sdks.py) -------------------------------------
# A page on another origin than the API loads Segment's analytics-next or RudderStack's JS SDK v3,
# bundled by `make browser-sdks` into tests/browser/sdks/dist/ and served by a server of the tests.

BROWSER_TESTS = Path(__file__).parent
SDK_BUNDLES = BROWSER_TESTS / "sdks" / "dist"
SDKS = ("segment", "rudderstack")
# The source "local" allows http://localhost:<any port> and http://127.0.0.1:<any port> (CONTRACTS.md);
# 127.0.0.2 is the same machine (all of 127/8 is loopback) at an origin no source allows.
ALLOWED_HOST, REFUSED_HOST = "localhost", "127.0.0.2"


class _ShopFiles(SimpleHTTPRequestHandler):
    """The test pages (/pages/...) and the SDK bundles (/sdks/dist/...), nothing else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(BROWSER_TESTS), **kwargs)

    def send_head(self) -> Any:
        if not urlsplit(self.path).path.startswith(("/pages/", "/sdks/dist/")):
            self.send_error(404)
            return None
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextlib.contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Shop:
    """Where the test shop is served, and the API its SDKs send to."""

    api: str  # http://127.0.0.1:<port>
    allowed: str  # http://localhost:<port>: an origin the source allows, not the API's
    refused: str  # http://127.0.0.2:<port>: an origin no source allows

    def page(self, sdk: str, api: str | None = None, origin: str | None = None, **query: str) -> str:
        """The shop page with ``sdk`` sending to ``api`` (the API itself unless another is given)."""
        parameters = {"sdk": sdk, "api": api or self.api, "writeKey": LOCAL_WRITE_KEY, **query}
        return f"{origin or self.allowed}/pages/shop.html?{urlencode(parameters)}"


@pytest.fixture(scope="package")
def shop(site: Site) -> Iterator[Shop]:
    """The test shop on two origins, beside the console's stack (one stack per worker: moto's
    backends are per process), whose demo data gives the personalization customers to choose for."""
    missing = [sdk for sdk in SDKS if not (SDK_BUNDLES / f"{sdk}.js").is_file()]
    if missing:
        pytest.fail(f"no bundle of {', '.join(missing)} in {SDK_BUNDLES}: `make browser-sdks` builds them")
    with (
        _serving(ThreadingHTTPServer(("127.0.0.1", 0), _ShopFiles)) as allowed_port,
        _serving(ThreadingHTTPServer((REFUSED_HOST, 0), _ShopFiles)) as refused_port,
    ):
        yield Shop(
            api=site.url.removesuffix("/console"),
            allowed=f"http://{ALLOWED_HOST}:{allowed_port}",
            refused=f"http://{REFUSED_HOST}:{refused_port}",
        )


# The browser tracking routes (CONTRACTS.md): the calls whose first attempt a FlakyApi fails.
TRACKING_PATHS = re.compile(r"^/(v1/[tipsgab]|v1/(batch|track|identify|page|screen|group|alias)|beacon/v1/batch)$")
RETRY_HEADERS = ("x-retry-count", "rsa-retry-attempt", "rsa-retry-reason")  # analytics-next's, RudderStack's
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "host", "upgrade"}


class FlakyApi:
    """A proxy in front of the API, where a load balancer would be, that fails the first attempt
    at delivering each message (by messageId) and serves every other request as the API answers.

    ``fault="error"``: that attempt is answered 500 (with the CORS header of the page's origin, as
    the API's own errors are), nothing applied. ``fault="lost"``: it is applied, then the
    connection closes without an answer (the browser reports a network failure), so the SDK's
    retry delivers a message the API already holds. Preflights and GETs pass through untouched.
    Every answer closes its connection, so Chromium never resends on a reused one by itself:
    each second attempt is the SDK's retry."""

    def __init__(self, api: str, fault: str) -> None:
        assert fault in ("error", "lost"), fault
        self.target, self.fault = urlsplit(api), fault
        self.attempts: Counter[str] = Counter()  # messageId -> requests that carried it
        self.retry_headers: list[dict[str, str]] = []  # the retry-related headers of every tracking request
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):
                    return lambda: proxy._serve(self)
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        path = urlsplit(request.path).path
        ids = _message_ids(body) if request.command == "POST" and TRACKING_PATHS.match(path) else []
        with self._lock:
            first = any(self.attempts[i] == 0 for i in ids)
            self.attempts.update(ids)
            if ids:
                self.retry_headers.append({k: v for k, v in request.headers.items() if k.lower() in RETRY_HEADERS})
        origin = request.headers.get("Origin")
        if first and self.fault == "error":
            cors = {"Access-Control-Allow-Origin": origin} if origin else {}
            return self._reply(request, 500, {"Content-Type": "application/json", **cors}, b'{"message":"injected"}')
        connection = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(request.command, request.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            status, answer_headers, payload = answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()
        if first and self.fault == "lost":
            return None  # applied; the connection closes with no answer
        kept = {}
        for name, value in answer_headers:
            if name.lower() not in _HOP_BY_HOP:
                kept[name] = f"{kept[name]}, {value}" if name in kept else value
        return self._reply(request, status, kept, payload)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(body)


def _message_ids(body: bytes) -> list[str]:
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    messages = payload.get("batch", []) if isinstance(payload, dict) and "batch" in payload else [payload]
    return [str(m["messageId"]) for m in messages if isinstance(m, dict) and m.get("messageId")]


@contextlib.contextmanager
def flaky_api(api: str, fault: str) -> Iterator[FlakyApi]:
    proxy = FlakyApi(api, fault)
    with _serving(proxy.server):
        yield proxy


class Wire:
    """What a tab sent and got: every request's method, URL, the headers that matter here, the
    answer's status and CORS header, or why it failed. For the reports of failing assertions."""

    SHOWN_HEADERS = ("origin", "authorization", "content-type", "anonymousid", "x-retry-count", "rsa-retry-attempt",
                     "access-control-request-method", "access-control-request-headers")  # fmt: skip

    def __init__(self, page: Any) -> None:
        self.entries: list[dict[str, Any]] = []
        self._by_request: dict[int, dict[str, Any]] = {}
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("requestfailed", self._failed)
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.console: list[str] = []

    def _request(self, request: Any) -> None:
        headers = request.headers
        body = request.post_data_buffer or b""
        entry = {"method": request.method, "url": request.url, "messageIds": _message_ids(body),
                 "headers": {k: v for k, v in headers.items() if k in self.SHOWN_HEADERS},
                 "body": body[:300].decode(errors="replace")}  # fmt: skip
        self._by_request[id(request)] = entry
        self.entries.append(entry)

    def _response(self, response: Any) -> None:
        entry = self._by_request.get(id(response.request))
        if entry is not None:
            entry["status"] = response.status
            entry["allowOrigin"] = response.headers.get("access-control-allow-origin")

    def _failed(self, request: Any) -> None:
        entry = self._by_request.get(id(request))
        if entry is not None:
            entry["failure"] = request.failure

    def acknowledged(self) -> set[str]:
        """The messageIds of the requests that got a 2xx answer."""
        return {i for e in self.entries if 200 <= e.get("status", 0) < 300 for i in e["messageIds"]}

    def sent(self) -> set[str]:
        return {i for e in self.entries for i in e["messageIds"]}

    def to(self, base: str) -> list[dict[str, Any]]:
        """The requests to ``base`` (an origin)."""
        return [e for e in self.entries if e["url"].startswith(base)]

    def hosts(self) -> set[str]:
        return {urlsplit(e["url"]).hostname or e["url"] for e in self.entries if not e["url"].startswith("data:")}

    def report(self, base: str | None = None) -> str:
        lines = [f"{e['method']} {e['url']} {e['headers']} -> {e.get('status', '')} "
                 f"ACAO={e.get('allowOrigin')} {e.get('failure') or ''} body={e['body'][:160]!r}"
                 for e in (self.to(base) if base else self.entries)]  # fmt: skip
        return "\n".join(lines + [f"console {c}" for c in self.console])
