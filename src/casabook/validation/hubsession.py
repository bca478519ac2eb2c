"""The validation user's session on a hub: which hub and facility, the token's checks, the user's server
started and stopped, and the materials pulled through a launch link (for `casabook validate --hub`).

Everything goes through the hub's REST API (casabook.hub.api) and the simulated browser
(casabook.hub.browser) with the validator's narrow token (casabook.hub.validator); a mistake
(no hub at the URL, a token refused or lacking a scope, no validation user) is a one-line error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, SpawnFailed, require_loopback, server_path
from casabook.hub.validator import VALIDATOR_TOKEN_ENV, VALIDATOR_USER, validator_scopes
from casabook.model import Facility, Workshop


@dataclass(frozen=True)
class HubTarget:
    """The hub, the facility it serves, the user the notebooks run as, and its column in the report."""

    hub_url: str
    facility: Facility
    user: str = VALIDATOR_USER

    @property
    def column(self) -> str:
        return f"{self.facility.name} @ hub {urlsplit(self.hub_url).netloc}"

    @property
    def folder(self) -> str:
        """Where the hub's executed notebooks go in the output folder."""
        return "hub-" + urlsplit(self.hub_url).netloc.replace(":", "-")


def hub_target(workshop: Workshop, hub_url: str, facility: str | None, user: str | None) -> HubTarget:
    """--hub and --facility: the facility named, else the one whose hub URL this is, else the embedded default."""
    url = require_loopback(hub_url, "--hub")
    if facility:
        chosen = workshop.facility(facility)
    else:
        matching = [f for f in workshop.facilities.values() if f.hub.url.rstrip("/") == url]
        if not matching and "local" not in workshop.facilities:
            raise CasabookError("which-facility", f"no facility's hub is at {url}: name the facility it serves "
                                "with --facility (a forwarded port does not say)", key="--facility")
        chosen = matching[0] if matching else workshop.facility("local")
    return HubTarget(url, chosen, user or VALIDATOR_USER)


# --- the hub: credentials, the user, its server --------------------------------------------------


def _covered(scope: str, held: set[str]) -> bool:
    base, _, _ = scope.partition("!")
    return scope in held or base in held


async def check_access(api: HubAPI, target: HubTarget) -> None:
    """The token works on this hub and holds every scope the run needs: else a one-line error naming what is wrong."""
    response = await api.send("GET", "user")
    url = target.hub_url
    if response.status_code in (401, 403):
        raise CasabookError("hub-token", f"the hub at {url} does not accept the token in ${VALIDATOR_TOKEN_ENV} "
                            f"(HTTP {response.status_code}: expired, revoked or another hub's): issue a new one "
                            f"at {url}/hub/token", key=VALIDATOR_TOKEN_ENV)
    try:
        model = response.json() if response.status_code == 200 else None
    except ValueError:
        model = None
    if not isinstance(model, dict) or "scopes" not in model:
        raise CasabookError("not-a-hub", f"{url} answers, but not as JupyterHub does (GET /hub/api/user: HTTP "
                            f"{response.status_code}): give the hub's own URL", key="--hub")
    missing = [scope for scope in validator_scopes(target.user) if not _covered(scope, set(model["scopes"]))]
    if missing:
        raise CasabookError("hub-scope", f"the token in ${VALIDATOR_TOKEN_ENV} lacks the scope"
                            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which validate --hub needs "
                            f"(it holds: {', '.join(sorted(model['scopes'])) or 'none'})", key=VALIDATOR_TOKEN_ENV)


async def start_server(api: HubAPI, target: HubTarget) -> tuple[str, bool]:
    """The user's server URL (ending in /), started or reused, and whether it was already running."""
    model = await api.user(target.user)
    if model is None:
        raise CasabookError("no-validation-user", f"the hub at {target.hub_url} has no user {target.user!r}: its "
                            "config creates it (casabook.hub.validator; the Helm values of `casabook hub render`)",
                            key="--hub-user")
    state = await api.start_server(target.user)
    if state != "running":
        try:
            await api.wait_ready(target.user, timeout=target.facility.hub.start_timeout_seconds + 60)
        except SpawnFailed as failed:
            raise CasabookError("hub-spawn", f"{target.user}'s server on {target.hub_url} did not start: {failed}",
                                key="--hub") from None
        model = await api.user(target.user) or model
    path = model.get("server") or f"/user/{server_path(target.user)}/"
    return f"{target.hub_url}{path}", state == "running"


async def stop_server(api: HubAPI, target: HubTarget, *, timeout: float = 60) -> None:
    """Stop the user's server and wait until the hub says it is gone (the token reads this one user only)."""
    await api.stop_server(target.user)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = await api.user(target.user)
        if model is None or not (model.get("server") or model.get("pending")):
            return
        await asyncio.sleep(0.5)
    raise CasabookError("hub-stop", f"{target.user}'s server on {target.hub_url} was still running "
                        f"{timeout:.0f} s after the request to stop it", key="--hub")


# --- the materials, through the launch link -------------------------------------------------------


async def pull_through_link(server_url: str, link_url: str, token: str, *, timeout: float) -> str | None:
    """Walk a launch link as the validation user: its git-pull page in the user's server, then nbgitpuller's
    stream. None when the materials are there; else why not, in one line."""
    from casabook.hub.browser import Browser, PageError, PullFailed
    from casabook.links import parse_launch_url

    _, source, _ = parse_launch_url(link_url)
    # /hub/user-redirect/ sends the logged-in user to their own server: a token's owner may be a
    # service or an organiser, so the link's path is taken into the validation user's server as it would be.
    page = f"{server_url}git-pull?{urlsplit(link_url).query}"
    browser = Browser("casabook-validator", token=token, timeout=timeout)
    try:
        response = await browser.navigate(page)
        if response.status_code != 200:
            return (f"the launch link's git-pull page answered HTTP {response.status_code} for {source.repo} "
                    f"({source.branch})")
        await browser.git_pull(server_url, {"repo": source.repo, "branch": source.branch,
                                            "targetpath": source.targetpath}, timeout=timeout)
    except (PullFailed, PageError, TimeoutError, httpx.HTTPError) as error:
        return (f"nbgitpuller did not bring branch {source.branch!r} of {source.repo} through the launch link: "
                f"{error}")[:300]
    finally:
        await browser.close()
    return None


def hub_token(user: str = VALIDATOR_USER, environ: dict[str, str] | None = None) -> str:
    """The validator's token: from the environment only (never a flag, never a file in the repository)."""
    import os

    token = (os.environ if environ is None else environ).get(VALIDATOR_TOKEN_ENV, "").strip()
    if not token:
        raise CasabookError("no-token", f"validate --hub needs a token in ${VALIDATOR_TOKEN_ENV}: the "
                            "casabook-validator service's, or one an organiser issues on the hub's token page "
                            f"with the scopes {', '.join(validator_scopes(user))}", key=VALIDATOR_TOKEN_ENV)
    return token
