"""One simulated attendee: what a person's browser does between clicking a launch link and reading
the notebook, without JavaScript but with every request the pages' scripts make.

    launch link -> identity provider's form (log in) -> hub callback -> spawn / spawn-pending page
    (its progress EventSource) -> the user server's nbgitpuller page (its git-pull/api EventSource,
    with the page's _xsrf) -> JupyterLab on the notebook [-> a kernel runs the first code cell]

Each page is recognised by what the attendee sees on it (a form, "This workshop is full", a 429
"try again", a progress bar), so the outcome is what a person would report. What a person meets on
the way is counted too: every error page (any 4xx/5xx page but the workshop-full one), each reload
or button press after one, the time to the full page, and the place in the spawn line the progress
page showed. Every loop is bounded in steps and in time; every request goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from casabook.hub.api import server_path, user_path
from casabook.hub.browser import SCRIPT, Browser, OffLoopback, PageError, PullFailed, check_loopback, page_text
from casabook.rehearsal.results import AttendeeResult, ErrorPage, Outcome

MAX_PAGES = 40  # page loads per attendee: a launch needs about 12
MAX_RETRIES = 8  # reloads after error pages an attendee makes before giving up
FULL_PAGE = "workshop is full"
RELOAD_WAIT_S = 5.0  # how long a person looks at an error page that names no wait before reloading it
# Pages a reload can get past: the hub's "try again" (429) and the proxy's while a server comes up.
PASSING = (429, 502, 503, 504)
# casabook.hub.line's progress messages: "In line for a server: 12 ahead of you (20 starting now)",
# and "In line for a server: you are next (...)" for 0 ahead.
PLACE = re.compile(r"(\d+) ahead of you|(you are next)")


@dataclass
class Session:
    """A kernel left running for the attendee (as a person's would be), closed after measuring."""

    browser: Browser
    delete_url: str


class Stop(Exception):
    """Ends the walk with an outcome."""

    def __init__(self, outcome: str, detail: str = "") -> None:
        self.outcome = outcome
        self.detail = detail
        super().__init__(f"{outcome}: {detail}")


def _page_message(page: str) -> str:
    """The visible error text of a hub error page, in one line."""
    found = (re.search(r'class="error[^"]*"[^>]*>.*?<p>(.*?)</p>', page, re.S)
             or re.search(r"<h1>(.*?)</h1>", page, re.S) or re.search(r"<p>(.*?)</p>", page, re.S))
    text = re.sub(r"<[^>]+>", " ", found.group(1) if found else page)
    return " ".join(html.unescape(text).split())[:300]


def place_in_line(events: list[dict[str, Any]]) -> int | None:
    """The largest place in the spawn line that a progress stream's messages showed; None where
    none said one (no line, or the attendee's turn came before the page asked)."""
    places = [0 if found.group(2) else int(found.group(1))
              for event in events if (found := PLACE.search(str(event.get("message", ""))))]
    return max(places, default=None)


def _api_message(response: httpx.Response) -> str:
    """The hub's REST error ({"status": 429, "message": ...}) as its page would say it."""
    try:
        return str(response.json().get("message", ""))[:300]
    except ValueError:
        return page_text(response)[:300]


def _attr(page: str, name: str) -> str | None:
    found = re.search(rf'{name}="([^"]*)"', page)
    return unquote(html.unescape(found.group(1))) if found else None


@dataclass
class Attendee:
    """One person's walk from the launch link to a running first cell."""

    name: str
    launch_url: str
    kernel: str = "python3"
    run_first_cell: bool = False
    spawn_timeout: float = 300
    pull_timeout: float = 300
    cell_timeout: float = 120
    max_retry_wait: float = 60
    token: str | None = None
    cookies: CookieJar | None = None  # a browser already logged in (the tests'), else a fresh one
    started: float = field(default_factory=time.monotonic)  # the rehearsal's clock origin
    result: AttendeeResult = field(init=False)
    page: httpx.Response | None = field(init=False, default=None)  # JupyterLab's page of the notebook
    clicked: float = field(init=False, default=0.0)  # when the link was clicked (time.monotonic)
    pulled_at: float | None = field(init=False, default=None)  # when nbgitpuller said 'finished'
    session: Session | None = field(init=False, default=None)
    # (sent, answered) of the hub's /hub/spawn/ redirect. JupyterHub 6 sends every launch there and
    # waits on it for a server that starts within its slow_spawn_timeout, so a fast spawn shows no
    # spawn-pending page; only the hub's record says whether this launch started the server.
    spawn_request: tuple[float, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.result = AttendeeResult(self.name)

    async def run(self) -> AttendeeResult:
        browser = Browser(self.name, token=self.token, cookies=self.cookies)
        click = self.clicked = time.monotonic()
        self.result.clicked_at = round(click - self.started, 3)
        self.result.clicked_wall = time.time()
        try:
            if self.token:
                notebook_url = await self._launch_with_token(browser, click)
            else:
                notebook_url = await self._launch(browser, click)
            self.result.time_to_notebook = round(time.monotonic() - click, 3)
            self.result.outcome = Outcome.IN
            if self.run_first_cell:
                await self._run_first_cell(browser, notebook_url)
        except Stop as stop:
            self.result.outcome, self.result.detail = stop.outcome, stop.detail
        except TimeoutError:
            self.result.outcome, self.result.detail = Outcome.TIMEOUT, "a page or stream did not finish in time"
        except PageError as error:
            self.result.outcome, self.result.detail = Outcome.ERROR, str(error)[:300]
        except (httpx.HTTPError, OffLoopback) as error:
            self.result.outcome, self.result.detail = Outcome.ERROR, f"{error.__class__.__name__}: {error}"[:300]
        except Exception as error:  # noqa: BLE001 (a websocket or parsing surprise ends one walk, not the crowd)
            self.result.outcome = Outcome.ERROR
            self.result.detail = f"unexpected {error.__class__.__name__}: {error}"[:300]
        finally:
            self.result.transport_retries += browser.transport_retries
            if self.session is None:
                await browser.close()
        return self.result

    def cancelled(self) -> AttendeeResult:
        """The result of an attendee whose overall time ran out mid-walk."""
        self.result.outcome = Outcome.TIMEOUT
        self.result.detail = self.result.detail or "the attendee's time ran out"
        return self.result

    # --- the walk through the pages ---------------------------------------------------------

    async def _launch(self, browser: Browser, click: float) -> str:
        response = await browser.navigate(self.launch_url)
        for _ in range(MAX_PAGES):
            self.result.pages += 1
            url = str(response.url)
            path = urlsplit(url).path
            page = page_text(response)
            status = response.status_code

            if status == 200 and path.endswith("/oauth2/authorize") and 'name="sub"' in page:
                # The identity provider's form: the attendee logs in with their own account.
                response = await browser.navigate(url, data={"sub": self.name})
                # Logged in once the hub answered its OAuth callback (with a redirect, or the full page).
                answered = next((done for _, done, _, hop in browser.hops if hop.endswith("/oauth_callback")), None)
                self.result.login_s = round((answered or time.monotonic()) - click, 3)
                continue
            if status == 403 and FULL_PAGE in page.lower():
                self.result.time_to_full_page = round(time.monotonic() - click, 3)
                raise Stop(Outcome.REFUSED, _page_message(page))
            if status >= 400:
                self._met(status, path, _page_message(page))
            if status in PASSING and "Spawn failed" not in page:
                response = await self._reload(browser, response)
                continue
            if "/hub/spawn-pending/" in path and status == 200:
                await self._watch_spawn(browser, url, page)
                self._note_spawn(browser, ready_at=time.monotonic())
                response = await browser.navigate(url)  # the page reloads itself once the server is ready
                continue
            if status == 200 and path.endswith("/git-pull") and "data-xsrf" in page:
                target = await self._pull(browser, url, page)
                response = await browser.navigate(target)
                continue
            if status == 200 and "/lab" in path and path.startswith("/user/"):
                self.spawn_request = next(((sent, answered) for sent, answered, code, hop in browser.hops
                                           if "/hub/spawn/" in hop and code in (302, 303)), None)
                self.page = response
                return url
            if status == 424 or ('id="start"' in page and "/hub/" in path):
                # "Server not running" (or a failed spawn's "Relaunch"): the attendee clicks the button.
                start = re.search(r'id="start"[^>]*href="([^"]+)"', page, re.S) or \
                    re.search(r'href="([^"]+)"[^>]*id="start"', page, re.S)
                if "Spawn failed" in page or not start:
                    raise Stop(Outcome.SPAWN_FAILED, _page_message(page))
                if status >= 400:
                    self._retry()  # a retry after an error page; a start button on a plain page is none
                response = await browser.navigate(str(response.url.join(html.unescape(start.group(1)))))
                continue
            if status >= 500 and "spawn" in page.lower():
                raise Stop(Outcome.SPAWN_FAILED, f"HTTP {status} at {path}: {_page_message(page)}")
            raise Stop(Outcome.ERROR, f"HTTP {status} at {path}: {_page_message(page)}")
        raise Stop(Outcome.ERROR, f"no notebook after {MAX_PAGES} pages")

    def _note_spawn(self, browser: Browser, ready_at: float) -> None:
        """This launch started the server: JupyterHub 6's /hub/spawn/ starts it, waits a second and
        sends the attendee to the spawn-pending page (a server already running skips both). The
        spawn lasted from that request until the progress stream said 'ready'."""
        self.result.spawned = True
        began = next((sent for sent, _, _, path in browser.hops if "/hub/spawn/" in path),
                     next(sent for sent, _, _, path in browser.hops if "/hub/spawn-pending/" in path))
        self.result.spawn_s = round(ready_at - began, 3)

    def _met(self, status: int, path: str, message: str) -> None:
        self.result.error_pages.append(ErrorPage(status, path, message, round(time.monotonic() - self.clicked, 3)))
        if status == 429:
            self.result.http_429 += 1

    def _retry(self) -> None:
        """One more try after an error page; after MAX_RETRIES the person gives up instead."""
        if self.result.retries >= MAX_RETRIES:
            last = self.result.error_pages[-1] if self.result.error_pages else None
            said = f": the last, HTTP {last.status}: {last.message}" if last else ""
            raise Stop(Outcome.GAVE_UP, f"{len(self.result.error_pages)} error pages{said}"[:300])
        self.result.retries += 1

    async def _reload(self, browser: Browser, response: httpx.Response) -> httpx.Response:
        """An error page that may pass (429 "Too many users trying to log in right now. Try again
        in 30 seconds", or the proxy's 503): the person waits as told (or a few seconds), then
        reloads it. The hub's OAuth callback is single-use: there the person clicks the link again."""
        self._retry()
        try:
            wait = float(response.headers.get("Retry-After", RELOAD_WAIT_S))
        except ValueError:
            wait = RELOAD_WAIT_S
        await asyncio.sleep(min(max(wait, 1.0), self.max_retry_wait))
        again = self.launch_url if response.url.path.endswith("/oauth_callback") else str(response.url)
        return await browser.navigate(again)

    def _saw_place(self, events: list[dict[str, Any]]) -> None:
        seen = [p for p in (self.result.place_in_line, place_in_line(events)) if p is not None]
        self.result.place_in_line = max(seen, default=None)

    async def _watch_spawn(self, browser: Browser, url: str, page: str) -> None:
        found = re.search(r'new EventSource\("([^"]+)"\)', page)
        if not found:
            raise Stop(Outcome.ERROR, "the spawn-pending page has no progress stream")
        progress = urlsplit(str(httpx.URL(url).join(html.unescape(found.group(1)))))
        query = dict(part.split("=", 1) for part in progress.query.split("&") if "=" in part)
        params = {key: unquote(value) for key, value in query.items()}
        base = f"{progress.scheme}://{progress.netloc}{progress.path}"
        events = await browser.events(base, params=params, timeout=self.spawn_timeout)
        self._saw_place(events)
        last = events[-1] if events else {}
        if last.get("failed"):
            raise Stop(Outcome.SPAWN_FAILED, str(last.get("message", "spawn failed")))
        if not last.get("ready"):
            raise Stop(Outcome.SPAWN_FAILED, f"the progress stream ended without 'ready': {last}")

    async def _pull(self, browser: Browser, url: str, page: str) -> str:
        """What nbgitpuller's page script does: its EventSource on git-pull/api, then the redirect."""
        began = time.monotonic()
        base = _attr(page, "data-base-url") or ""
        params = {"_xsrf": _attr(page, "data-xsrf") or "", "repo": _attr(page, "data-repo") or "",
                  "targetpath": _attr(page, "data-targetpath") or ""}
        for optional in ("depth", "branch", "backup"):
            value = _attr(page, f"data-{optional}")
            if value is not None:
                params[optional] = value
        try:
            await browser.git_pull(str(httpx.URL(url).join(base)), params, timeout=self.pull_timeout)
        except PullFailed as failed:
            raise Stop(Outcome.PULL_FAILED, str(failed)) from None
        self.pulled_at = time.monotonic()
        self.result.pull_s = round(time.monotonic() - began, 3)
        return str(httpx.URL(url).join(f"{base}{_attr(page, 'data-path') or ''}"))

    # --- where no login page can be automated: an admin-issued token --------------------------

    async def _launch_with_token(self, browser: Browser, click: float) -> str:
        """The launch as the hub's own pages would run it, through the REST API with the
        attendee's token (the hub's HTML pages take cookies only), then the same git-pull page."""
        parts = urlsplit(self.launch_url)
        hub = f"{parts.scheme}://{parts.netloc}"
        api = f"{hub}/hub/api/users/{user_path(self.name)}"
        began = time.monotonic()
        for _ in range(MAX_RETRIES + 1):
            check_loopback(api)
            response = await browser.client.post(f"{api}/server")
            if response.status_code == 429:
                # The hub's spawn page would show this as its 429 page: counted as one.
                self._met(429, urlsplit(api).path + "/server", _api_message(response))
                self._retry()
                await asyncio.sleep(min(float(response.headers.get("Retry-After", "10")), self.max_retry_wait))
                continue
            break
        if response.status_code in (201, 202):
            self.result.spawned = True
            events = await browser.events(f"{api}/server/progress", params={}, timeout=self.spawn_timeout)
            self._saw_place(events)
            if not (events and events[-1].get("ready")):
                raise Stop(Outcome.SPAWN_FAILED, str(events[-1:]))
            self.result.spawn_s = round(time.monotonic() - began, 3)
        elif not (response.status_code == 400 and "already running" in page_text(response)):
            raise Stop(Outcome.SPAWN_FAILED, f"HTTP {response.status_code}: {page_text(response)[:200]}")
        page_url = f"{hub}/user/{server_path(self.name)}/git-pull?{parts.query}"
        response = await browser.navigate(page_url)
        if response.status_code >= 400:
            self._met(response.status_code, response.url.path, _page_message(page_text(response)))
        if response.status_code != 200 or "data-xsrf" not in page_text(response):
            raise Stop(Outcome.ERROR, f"HTTP {response.status_code} at the git-pull page")
        target = await self._pull(browser, str(response.url), page_text(response))
        response = await browser.navigate(target)
        if response.status_code >= 400:
            self._met(response.status_code, response.url.path, _page_message(page_text(response)))
        if response.status_code != 200:
            raise Stop(Outcome.ERROR, f"HTTP {response.status_code} at {response.url.path}")
        self.page = response
        return str(response.url)

    # --- a kernel and the first code cell ---------------------------------------------------

    async def _run_first_cell(self, browser: Browser, notebook_url: str) -> None:
        """What JupyterLab does when the attendee presses Shift-Enter on the first code cell."""
        began = time.monotonic()
        parts = urlsplit(notebook_url)
        server = f"{parts.scheme}://{parts.netloc}{parts.path.split('/lab', 1)[0]}/"
        notebook = unquote(parts.path.split("/lab/tree/", 1)[1])
        headers = {**SCRIPT, "X-XSRFToken": browser.xsrf_cookie(urlsplit(server).path)}
        try:
            contents = await browser.client.get(f"{server}api/contents/{notebook}", params={"content": "1"},
                                                headers=headers)
            contents.raise_for_status()
            source = next(("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                           for c in contents.json()["content"]["cells"] if c["cell_type"] == "code"), None)
            if source is None:
                self.result.first_cell_s = 0.0
                return
            created = await browser.client.post(f"{server}api/sessions", headers=headers, json={
                "path": notebook, "name": notebook.rsplit("/", 1)[-1], "type": "notebook",
                "kernel": {"name": self.kernel}})
            created.raise_for_status()
            session = created.json()
            self.session = Session(browser, f"{server}api/sessions/{session['id']}")
            channels = (f"ws://{parts.netloc}{urlsplit(server).path}api/kernels/{session['kernel']['id']}/channels"
                        f"?session_id={uuid.uuid4().hex}")
            reply = await asyncio.wait_for(_execute(browser, channels, source, self.name), self.cell_timeout)
        except TimeoutError:
            raise Stop(Outcome.CELL_FAILED, f"no answer from the kernel within {self.cell_timeout:.0f} s") from None
        except httpx.HTTPStatusError as error:
            raise Stop(Outcome.CELL_FAILED, f"HTTP {error.response.status_code} from {error.request.url.path}") from None
        if reply.get("status") != "ok":
            raise Stop(Outcome.CELL_FAILED, f"{reply.get('ename', '')}: {reply.get('evalue', '')}"[:300])
        self.result.first_cell_s = round(time.monotonic() - began, 3)

    async def close(self) -> None:
        """Shut the attendee's kernel down and close the browser."""
        if self.session is None:
            return
        session, self.session = self.session, None
        try:
            await session.browser.client.delete(session.delete_url, headers={
                **SCRIPT, "X-XSRFToken": session.browser.xsrf_cookie(urlsplit(session.delete_url).path)})
        except httpx.HTTPError:
            pass
        await session.browser.close()


async def _execute(browser: Browser, channels_url: str, code: str, username: str) -> dict[str, Any]:
    """Run `code` over the kernel's websocket (Jupyter messaging v5, JSON frames) and return the
    execute_reply content once the kernel is idle again."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    check_loopback(channels_url)
    headers = {"Cookie": browser.cookie_header(channels_url), "Sec-Fetch-Mode": "websocket"}
    if browser.token:
        headers["Authorization"] = f"token {browser.token}"
    request = HTTPRequest(channels_url, headers=headers)
    connection = await websocket_connect(request)
    try:
        msg_id = uuid.uuid4().hex
        connection.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": username, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": dt.datetime.now(dt.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        reply: dict[str, Any] | None = None
        idle = False
        for _ in range(10_000):
            raw = await connection.read_message()
            if raw is None:
                raise httpx.ReadError("the kernel's websocket closed")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "execute_reply":
                reply = message["content"]
            elif kind == "status" and message["content"].get("execution_state") == "idle":
                idle = True
            if reply is not None and idle:
                return reply
        raise httpx.ReadError("too many kernel messages")
    finally:
        connection.close()

