"""A started local stack with the drivers tests and benchmarks use on it.

`LocalHub` (and `RehearsalHub`, with the prewarm service) is a casabook.hub.local.LocalStack plus:

- the organisers' REST calls through casabook.hub.api, `api(method, path, token=None, json=...)`,
  returning the response whatever its status (tests assert on 403s), and `cap_status()`;
- an attendee's login in steps: `authorize(name)` goes through the identity provider and stops
  before the hub's callback (for races and tampering), `finish_login(client, url)` completes it,
  `login(name)` does both; an error page is a LoginRefused(status, page);
- `launch(client, link)`: the rehearsal's attendee (casabook.rehearsal.attendee) walking a launch
  link in that logged-in browser, to JupyterLab's page of the notebook;
- `wait_ready(name)`: casabook.hub.api's wait on the server's progress stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from casabook.hub.api import HubAPI, SpawnFailed
from casabook.hub.local import DemoUser, LocalStack
from casabook.rehearsal.attendee import Attendee
from casabook.rehearsal.results import Outcome
from casabook.rehearsal.stack import RehearsalStack


T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from a thread that already runs a loop (Playwright's sync API does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class LoginRefused(Exception):
    """The hub answered the OAuth callback with an error page (not a redirect)."""

    def __init__(self, status: int, page: str) -> None:
        self.status = status
        self.page = page
        super().__init__(f"login refused with HTTP {status}")


class LoggedIn(httpx.Client):
    """An attendee's browser for plain requests: the hub's cookies, redirects not followed."""

    def __init__(self, username: str, hub_url: str) -> None:
        super().__init__(base_url=hub_url, timeout=60, follow_redirects=False)
        self.username = username


class Drivers:
    """What a test does on a started stack (mixed into a LocalStack)."""

    # LocalStack's, which every class using these drivers is.
    hub_url: str
    api_token: str
    idp: object

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs: object) -> httpx.Response:
        """casabook.hub.api's call with the organisers' token (or `token`), whatever the status."""
        async def call() -> httpx.Response:
            async with HubAPI(self.hub_url, token or self.api_token, timeout=60) as api:
                return await api.send(method, path, **kwargs)

        return run_sync(call())

    def cap_status(self) -> dict[str, object]:
        response = self.api("GET", "casabook/cap")
        response.raise_for_status()
        return response.json()

    def authorize(self, username: str, *, next_path: str = "/hub/home",
                  claims: Mapping[str, object] | None = None) -> tuple[LoggedIn, str]:
        """Log in at the identity provider; return the browser and the hub callback URL to visit.

        The identity is (re)created with a preferred_username equal to `username`, unless `claims`
        says otherwise.
        """
        assert self.idp, "the stack is not started"
        self.idp.set_claims(username, claims if claims is not None else DemoUser(username).claims)  # type: ignore[attr-defined]
        client = LoggedIn(username, self.hub_url)
        response = client.get("/hub/oauth_login", params={"next": next_path})
        if response.status_code != 302:
            raise LoginRefused(response.status_code, response.text)
        # The provider's page posts back to itself; its "Authorize" button sends the subject.
        consent = httpx.post(response.headers["location"], data={"sub": username}, timeout=30)
        if consent.status_code != 302:
            raise RuntimeError(f"the identity provider answered {consent.status_code}: {consent.text[:500]}")
        return client, consent.headers["location"]

    @staticmethod
    def finish_login(client: LoggedIn, callback_url: str) -> LoggedIn:
        response = client.get(callback_url)
        if response.status_code != 302:
            raise LoginRefused(response.status_code, response.text)
        return client

    def login(self, username: str, *, next_path: str = "/hub/home",
              claims: Mapping[str, object] | None = None) -> LoggedIn:
        """A full OAuth login; returns a client holding the attendee's hub cookies."""
        client, callback = self.authorize(username, next_path=next_path, claims=claims)
        return self.finish_login(client, callback)

    def wait_ready(self, username: str, timeout: float = 120) -> None:
        async def wait() -> None:
            async with HubAPI(self.hub_url, self.api_token) as api:
                await api.wait_ready(username, timeout=timeout)

        try:
            run_sync(wait())
        except SpawnFailed as failed:
            raise RuntimeError(f"{username}'s server did not start: {failed}:\n{self.log_tail()}") from None

    def launch(self, client: LoggedIn, launch_url: str, *, timeout: float = 120,
               timings: dict[str, float] | None = None) -> httpx.Response:
        """Follow a launch link in `client`'s browser and return the notebook's JupyterLab page.

        `timings`, if given, receives the seconds spent reaching the git-pull page ("server"),
        pulling ("pull") and loading JupyterLab on the notebook ("lab").
        """
        attendee = Attendee(client.username, launch_url, cookies=client.cookies.jar, spawn_timeout=timeout)
        result = run_sync(attendee.run())
        if result.outcome != Outcome.IN or attendee.page is None:
            raise RuntimeError(f"the launch link ended {result.outcome}: {result.detail}\n{self.log_tail()}")
        if timings is not None and attendee.pulled_at is not None and result.pull_s is not None:
            finished = attendee.clicked + (result.time_to_notebook or 0.0)
            timings.update(server=attendee.pulled_at - result.pull_s - attendee.clicked, pull=result.pull_s,
                           lab=finished - attendee.pulled_at)
        return attendee.page


class LocalHub(Drivers, LocalStack):
    """The embedded hub, started by a test or a benchmark, with the drivers above."""


class RehearsalHub(Drivers, RehearsalStack):
    """The rehearsal's hub (the prewarm service registered), with the drivers above."""
