"""JupyterHub's REST API as casabook's organiser tools call it (prewarm, stats, the rehearsal).

Async httpx with an API token, only to a hub on this machine's loopback or the facility's URL the
caller chose. Every stream and every page walk is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from casabook.errors import CasabookError

PAGINATION = "application/jupyterhub-pagination+json"
PAGE_SIZE = 200
MAX_PAGES = 500  # 100,000 users: far beyond any workshop
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class HubAPIError(Exception):
    """The hub answered an API call with an error status."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{method} {path}: HTTP {status}: {message}")


class SpawnFailed(Exception):
    """A server's start ended with a 'failed' progress event."""


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def require_loopback(url: str, key: str) -> str:
    """Rehearsals and prewarms are traffic generators: they only ever talk to this machine."""
    if not is_loopback(url):
        raise CasabookError("not-loopback", f"{url} is not on 127.0.0.1: casabook only sends rehearsal and "
                            "organiser traffic to a hub on this machine (forward the facility's hub to a "
                            "local port first)", key=key)
    return url.rstrip("/")


def user_path(name: str) -> str:
    """A user name in a REST API path (/hub/api/users/<name>): everything escaped."""
    return quote(name, safe="")


def server_path(name: str) -> str:
    """A user's server prefix as JupyterHub spells it (its url_escape_path): '@' and '~' stay as they
    are, so a user named by an e-mail address reaches /user/ann@example.org/, the server's base URL."""
    return quote(name, safe="@~")


async def read_events(response: httpx.Response, *, limit: int = 10_000) -> AsyncIterator[dict[str, Any]]:
    """The `data:` messages of an EventSource stream (JupyterHub progress, nbgitpuller), in order."""
    count = 0
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # keepalives (blank lines) and comments
        count += 1
        if count > limit:
            raise RuntimeError(f"more than {limit} events from {response.url}")
        payload = line[len("data:"):].strip()
        try:
            yield json.loads(payload)
        except json.JSONDecodeError:
            yield {"message": payload}


class HubAPI:
    """One hub, one token. Use as an async context manager."""

    def __init__(self, hub_url: str, token: str, *, timeout: float = 30, url_option: str = "--hub-url") -> None:
        self.hub_url = hub_url.rstrip("/")
        self.url_option = url_option  # the command's option that gave the URL, for the one-line error
        self._client = httpx.AsyncClient(
            base_url=f"{self.hub_url}/hub/api/",
            headers={"Authorization": f"token {token}"},
            timeout=httpx.Timeout(timeout, connect=10),
            # A crowd of concurrent calls from one process: keep the pool as wide as the crowd.
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def __aenter__(self) -> HubAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call, answered as the hub answered it: error statuses too (request() raises on them)."""
        try:
            return await self._client.request(method, path.lstrip("/"), **kwargs)
        except httpx.TransportError as error:
            raise CasabookError("hub-unreachable", f"no hub answers at {self.hub_url} ({error.__class__.__name__}): "
                                f"is it running? (`casabook hub`, or give {self.url_option})", key=self.url_option) from None

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.send(method, path, **kwargs)
        if response.status_code == 401:
            raise CasabookError("hub-token", f"the hub at {self.hub_url} does not accept the API token "
                                f"({_message(response)}): is it the token this hub was configured with?")
        if response.status_code == 403:
            raise CasabookError("hub-scope", f"the API token may not {method} /hub/api/{path.lstrip('/')} "
                                f"at {self.hub_url}: {_message(response)}")
        if response.status_code >= 400:
            raise HubAPIError(response.status_code, method, path, _message(response))
        return response

    async def users(self, *, state: str | None = None) -> list[dict[str, Any]]:
        """Every user model (servers included when the token may read them), page by page."""
        users: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": 0}
        if state:
            params["state"] = state
        for _ in range(MAX_PAGES):
            page = (await self.request("GET", "users", params=params, headers={"Accept": PAGINATION})).json()
            items = page["items"] if isinstance(page, dict) else page
            users.extend(items)
            following = page.get("_pagination", {}).get("next") if isinstance(page, dict) else None
            if not following or not items:
                return users
            params["offset"] = following["offset"]
        raise RuntimeError(f"more than {MAX_PAGES * PAGE_SIZE} users at {self.hub_url}")

    async def user(self, name: str) -> dict[str, Any] | None:
        try:
            return (await self.request("GET", f"users/{user_path(name)}")).json()
        except HubAPIError as error:
            if error.status == 404:
                return None
            raise

    async def create_user(self, name: str) -> None:
        try:
            await self.request("POST", f"users/{user_path(name)}")
        except HubAPIError as error:
            if error.status != 409:  # already exists
                raise

    async def create_token(self, name: str, *, note: str, expires_in: int = 3600) -> str:
        body = {"note": note, "expires_in": expires_in}
        return (await self.request("POST", f"users/{user_path(name)}/tokens", json=body)).json()["token"]

    async def start_server(self, name: str) -> str:
        """Ask for the default server: 'started' (201), 'pending' (202) or 'running' (already was)."""
        try:
            response = await self.request("POST", f"users/{user_path(name)}/server")
        except HubAPIError as error:
            if error.status == 400 and "already running" in error.message:
                return "running"
            if error.status == 400 and "pending spawn" in error.message:
                return "pending"
            raise
        return "started" if response.status_code == 201 else "pending"

    async def stop_server(self, name: str) -> None:
        try:
            await self.request("DELETE", f"users/{user_path(name)}/server")
        except HubAPIError as error:
            if error.status not in (400, 404):  # not running
                raise

    async def wait_ready(self, name: str, *, timeout: float) -> list[dict[str, Any]]:
        """Follow the server's progress stream until 'ready'; the events seen. SpawnFailed on failure."""
        events: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(timeout):
                async with self._client.stream("GET", f"users/{user_path(name)}/server/progress",
                                               timeout=httpx.Timeout(timeout, connect=10)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise HubAPIError(response.status_code, "GET", "progress", _message(response))
                    async for event in read_events(response):
                        events.append(event)
                        if event.get("ready"):
                            return events
                        if event.get("failed"):
                            raise SpawnFailed(event.get("message", "spawn failed"))
        except TimeoutError:
            raise SpawnFailed(f"{name}'s server was not ready within {timeout:.0f} s") from None
        raise SpawnFailed(f"{name}'s progress stream ended without 'ready': {events[-1:]}")

    async def wait_stopped(self, names: list[str], *, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = {u["name"] for u in await self.users(state="active")}
            if not running.intersection(names):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"servers still running after {timeout:.0f} s")

    async def metrics(self) -> str:
        """Prometheus text from /hub/metrics (needs read:metrics)."""
        response = await self._client.get(f"{self.hub_url}/hub/metrics")
        if response.status_code >= 400:
            raise HubAPIError(response.status_code, "GET", "/hub/metrics", _message(response))
        return response.text


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.ResponseNotRead):
        return response.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.reason_phrase
