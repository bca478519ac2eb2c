"""A browser without JavaScript, as simulated attendees and organiser tools drive the hub with it.

Cookies, redirects followed by hand (so each page is seen), the EventSource streams the pages'
scripts open (the spawn's progress, nbgitpuller's git-pull/api), and 127.0.0.1 only. The rehearsal's
attendees, prewarm, the tests and the benchmarks all reach the hub's pages through it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlsplit

import httpx

from casabook.hub.api import is_loopback, read_events

MAX_REDIRECTS = 20
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin", "Accept": "text/html"}
# What a browser sends for an EventSource or fetch() from the page: the hub and the user server
# then check the page's _xsrf token, as they do for a real browser.
SCRIPT = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}


class OffLoopback(Exception):
    """A request that would have left this machine (never sent)."""


class PageError(Exception):
    """A page or stream answered with something no browser could go on from."""


class PullFailed(Exception):
    """nbgitpuller's stream ended without 'finished' (its last message says why)."""


@dataclass
class Browser:
    """One person's browser (or one service's, with `token`)."""

    name: str
    timeout: float = 60
    token: str | None = None  # an API token, where no login page can be automated
    cookies: CookieJar | None = None  # share a jar (a login made elsewhere) instead of a new one
    max_connections: int = 100
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.hops: list[tuple[float, float, int, str]] = []  # (sent, answered, status, path) of every page
        self.transport_retries = 0
        headers = {"User-Agent": "casabook-rehearsal"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        # httpx shares a CookieJar it is given (a Cookies object it would copy).
        self.client = httpx.AsyncClient(follow_redirects=False, headers=headers, cookies=self.cookies,
                                        timeout=httpx.Timeout(self.timeout, connect=10),
                                        limits=httpx.Limits(max_connections=self.max_connections))

    async def close(self) -> None:
        await self.client.aclose()

    async def navigate(self, url: str, *, data: dict[str, str] | None = None) -> httpx.Response:
        """Load a page (GET, or POST a form) and follow its redirects, as the address bar does."""
        method = "POST" if data is not None else "GET"
        for _ in range(MAX_REDIRECTS):
            check_loopback(url)
            sent = time.monotonic()
            try:
                response = await self.client.request(method, url, data=data, headers=NAVIGATE)
            except (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError):
                if method != "GET":
                    raise
                # A connection closed without an answer: browsers retry an idempotent request once.
                self.transport_retries += 1
                await asyncio.sleep(1.0)
                response = await self.client.request(method, url, data=data, headers=NAVIGATE)
            self.hops.append((sent, time.monotonic(), response.status_code, response.url.path))
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            url = str(response.url.join(response.headers["location"]))
            method, data = "GET", None
        raise PageError(f"more than {MAX_REDIRECTS} redirects from {url}")

    async def events(self, url: str, *, params: dict[str, str], timeout: float) -> list[dict[str, Any]]:
        """An EventSource the page opens: every message until the stream says it is done."""
        check_loopback(url)
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            async with self.client.stream("GET", url, params=params, headers={**SCRIPT, "Accept": "text/event-stream"},
                                          timeout=httpx.Timeout(timeout, connect=10)) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise PageError(f"HTTP {response.status_code} from {urlsplit(url).path}: "
                                    f"{page_text(response)[:200]}")
                async for event in read_events(response):
                    events.append(event)
                    if event.get("ready") or event.get("failed") or event.get("phase") in ("finished", "error"):
                        break
        return events

    async def git_pull(self, server_url: str, params: dict[str, str], *, timeout: float) -> list[dict[str, Any]]:
        """The call nbgitpuller's git-pull page makes: its git-pull/api stream, into the server at
        `server_url` (ending in /), until 'finished'. PullFailed with nbgitpuller's last word otherwise."""
        events = await self.events(f"{server_url}git-pull/api", params=params, timeout=timeout)
        last = events[-1] if events else {}
        if last.get("phase") != "finished":
            raise PullFailed(str(last.get("message", f"the pull ended without 'finished': {last}"))[:300])
        return events

    def xsrf_cookie(self, path: str) -> str:
        """The _xsrf cookie the user server set for its pages (JupyterLab sends it as X-XSRFToken)."""
        matches = [c for c in self.client.cookies.jar if c.name == "_xsrf" and path.startswith(c.path)]
        return max(matches, key=lambda c: len(c.path)).value if matches else ""

    def cookie_header(self, url: str) -> str:
        request = urllib.request.Request(url.replace("ws://", "http://", 1))
        self.client.cookies.jar.add_cookie_header(request)
        return request.get_header("Cookie") or ""


def check_loopback(url: str) -> None:
    if not is_loopback(url):
        raise OffLoopback(f"refusing to send rehearsal traffic off this machine: {url}")


def page_text(response: httpx.Response) -> str:
    try:
        return response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
