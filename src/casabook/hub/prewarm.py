"""Prewarm: start the participants' servers and pull the materials before a session begins.

Runs through the hub's REST API as the `casabook-prewarm` service, whose token holds only what the
job needs: list and read users (who is registered), start servers, and reach those servers (the
nbgitpuller call). It cannot create users, change roles or read tokens. When the attendees click
their launch links, their servers are running and the materials are there: the hub does not spawn
again and nbgitpuller finds nothing new to merge.

The hub learns of the service from its config:

    apply_prewarm_service(c, token)     # in jupyterhub_config.py, token from CASABOOK_PREWARM_TOKEN

or, on a Kubernetes facility, the same service and role in the Helm values (hub.services,
hub.loadRoles), as book/rehearsal.md shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, HubAPIError, SpawnFailed, server_path
from casabook.hub.browser import Browser, PageError, PullFailed
from casabook.hub.validator import is_participant
from casabook.links import Source
from casabook.progress import progress_bar

if TYPE_CHECKING:
    from casabook.model import Facility, Workshop

PREWARM_SERVICE = "casabook-prewarm"
PREWARM_ROLE = "casabook-prewarm"
PREWARM_TOKEN_ENV = "CASABOOK_PREWARM_TOKEN"
# list:users + read:users: who is registered; servers: start them (and read their progress);
# access:servers: call nbgitpuller inside each server.
PREWARM_SCOPES = ("list:users", "read:users", "servers", "access:servers")
MAX_RETRIES = 8


def prewarm_role() -> dict[str, Any]:
    return {"name": PREWARM_ROLE, "description": "casabook prewarm: start servers and pull materials",
            "scopes": list(PREWARM_SCOPES), "services": [PREWARM_SERVICE]}


def apply_prewarm_service(c: Any, token: str) -> None:
    """Register the prewarm service and its role on a JupyterHub Config (traitlets).

    Keeps the services and roles already configured (the organisers' service); calling it twice
    changes nothing.
    """
    # An unset key of a traitlets Config section reads as a lazy placeholder, not as a list.
    hub = c.JupyterHub
    services = [s for s in (hub.services if "services" in hub else []) if s.get("name") != PREWARM_SERVICE]
    c.JupyterHub.services = [*services, {"name": PREWARM_SERVICE, "api_token": token}]
    roles = [r for r in (hub.load_roles if "load_roles" in hub else []) if r.get("name") != PREWARM_ROLE]
    c.JupyterHub.load_roles = [*roles, prewarm_role()]


@dataclass
class PrewarmedUser:
    name: str
    outcome: str = "error"  # "started", "running" (it already was), "spawn-failed", "pull-failed", "error"
    spawn_s: float | None = None
    pull_s: float | None = None
    retries: int = 0
    detail: str = ""


@dataclass
class PrewarmReport:
    hub_url: str
    source: dict[str, str]
    users: list[PrewarmedUser] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ready(self) -> int:
        return sum(u.outcome in ("started", "running") for u in self.users)

    def to_json(self) -> dict[str, Any]:
        return {"hub_url": self.hub_url, "source": self.source, "seconds": self.seconds, "ready": self.ready,
                "failed": len(self.users) - self.ready, "users": [asdict(u) for u in self.users]}


async def select_users(api: HubAPI, names: list[str] | None) -> list[str]:
    """The participants to prewarm: the named ones (each must have logged in once, i.e. hold a
    place under the cap), or every registered participant (organisers excluded)."""
    users = await api.users()
    if names is None:
        return [u["name"] for u in users if is_participant(u)]
    known = {u["name"] for u in users}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CasabookError("unknown-participant",
                            f"{', '.join(unknown)} never logged in to this hub: prewarm starts servers for "
                            "registered participants only (a first login is what takes a place under the cap)",
                            key="--users")
    return names


async def prewarm_one(api: HubAPI, browser: Browser, name: str, source: Source, *,
                      spawn_timeout: float, pull_timeout: float, max_retry_wait: float) -> PrewarmedUser:
    result = PrewarmedUser(name)
    began = time.monotonic()
    try:
        for _ in range(MAX_RETRIES + 1):
            try:
                state = await api.start_server(name)
                break
            except HubAPIError as error:
                if error.status != 429:
                    raise
                # A hub without the spawn line answers 429 past its concurrent-spawn limit: wait as it asks.
                result.retries += 1
                await asyncio.sleep(max_retry_wait)
        else:
            raise RuntimeError(f"still throttled (HTTP 429) after {MAX_RETRIES} tries")
        if state != "running":
            await api.wait_ready(name, timeout=spawn_timeout)
            result.spawn_s = round(time.monotonic() - began, 3)
        began = time.monotonic()
        try:
            # What nbgitpuller's page does, done by the service into the participant's server.
            await browser.git_pull(f"{api.hub_url}/user/{server_path(name)}/", {
                "repo": source.repo, "branch": source.branch, "targetpath": source.targetpath}, timeout=pull_timeout)
        except (PullFailed, PageError, TimeoutError, httpx.HTTPError) as error:
            result.outcome, result.detail = "pull-failed", str(error)[:300]
            return result
        result.pull_s = round(time.monotonic() - began, 3)
        result.outcome = "running" if state == "running" else "started"
    except SpawnFailed as error:
        result.outcome, result.detail = "spawn-failed", str(error)[:300]
    except (HubAPIError, RuntimeError, httpx.HTTPError) as error:
        result.outcome, result.detail = "error", str(error)[:300]
    return result


async def prewarm(hub_url: str, token: str, source: Source, *, users: list[str] | None = None,
                  concurrency: int = 10, spawn_timeout: float = 600, pull_timeout: float = 300,
                  max_retry_wait: float = 10,
                  on_done: Callable[[PrewarmedUser], None] | None = None,
                  on_selected: Callable[[int], None] | None = None) -> PrewarmReport:
    """Start every selected participant's server and pull `source` into it, `concurrency` at a time
    (more than the facility's concurrent_spawns wait in its spawn line)."""
    began = time.monotonic()
    report = PrewarmReport(hub_url, {"repo": source.repo, "branch": source.branch, "targetpath": source.targetpath})
    browser = Browser(PREWARM_SERVICE, token=token, timeout=pull_timeout, max_connections=max(concurrency * 2, 10))
    async with HubAPI(hub_url, token) as api:
        names = await select_users(api, users)
        if on_selected:
            on_selected(len(names))
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(name: str) -> PrewarmedUser:
            async with gate:
                done = await prewarm_one(api, browser, name, source, spawn_timeout=spawn_timeout,
                                         pull_timeout=pull_timeout, max_retry_wait=max_retry_wait)
            if on_done:
                on_done(done)
            return done

        try:
            report.users = list(await asyncio.gather(*(one(name) for name in names)))
        finally:
            await browser.close()
    report.seconds = round(time.monotonic() - began, 3)
    return report


# --- prewarm --registered: the registration list's people ------------------------------------


@dataclass
class RegisteredPlan:
    """Whose servers `prewarm --registered` can start, from the registration list and the hub."""

    names: list[str] = field(default_factory=list)  # hub users: registrants who logged in, or named by the list
    to_create: list[str] = field(default_factory=list)  # of those, not on the hub yet (the list names them)
    must_log_in: int = 0  # registrants whose servers cannot be started before they log in once
    reason: str = ""


def username_follows(facility: Facility) -> bool:
    """Whether the list gives each registrant's hub user name: a mapping file, or the identity
    provider's user-name claim is the claim the list is matched by (e.g. both the e-mail)."""
    registration = facility.registration
    return bool(registration and (registration.mapping_env
                                  or facility.authenticator.username_claim == registration.match_claim))


def plan_registered(facility: Facility, identities: set[str], users: list[dict[str, Any]],
                    connected: list[str] | None) -> RegisteredPlan:
    """`identities` from the registration list; `connected` the registrants the cap admitted (None
    when the token may not read the cap's page)."""
    on_hub = {u["name"] for u in users if not u.get("admin")}
    plan = RegisteredPlan()
    if username_follows(facility):
        plan.names = sorted(identities)
        plan.to_create = sorted(identities - on_hub)
        return plan
    plan.names = sorted(set(connected or []) & on_hub) if connected is not None else sorted(on_hub)
    plan.must_log_in = max(0, len(identities) - len(plan.names))
    plan.reason = (f"the hub's user names come from the identity provider's {facility.authenticator.username_claim!r} "
                   f"claim, which the registration list (matched by {facility.registration.match_claim!r}) does not "
                   "hold, so the hub learns each name at the first login")
    return plan


async def create_users(hub_url: str, admin_token: str, names: list[str]) -> None:
    """Registrants' hub users, before they log in: the cap counts each as a registrant holding its place."""
    if names:
        async with HubAPI(hub_url, admin_token) as api:
            await api.request("POST", "users", json={"usernames": names})


async def registered_plan(workshop: Workshop, facility: Facility, hub_url: str, token: str) -> RegisteredPlan:
    from casabook.hub.organiser import organiser_token
    from casabook.hub.registration import read

    root = workshop.root
    found = read(facility, root, tracks=workshop.tracks.values())
    assert found is not None
    admin = organiser_token(root)
    async with HubAPI(hub_url, admin or token) as api:
        users = await api.users()
        try:
            connected = (await api.request("GET", "casabook/cap")).json()["registration"]["connected"]
        except (CasabookError, HubAPIError, KeyError, TypeError):
            connected = None  # the prewarm service may not read the organisers' page
    plan = plan_registered(facility, found.identities, users, connected)
    if plan.to_create:
        if admin:
            await create_users(hub_url, admin, plan.to_create)
        else:
            # The prewarm service may not create users (least privilege): those must log in once.
            plan.names = [n for n in plan.names if n not in plan.to_create]
            plan.must_log_in, plan.to_create = len(plan.to_create), []
            plan.reason = ("creating their hub users needs the organisers' token (CASABOOK_API_TOKEN); the prewarm "
                           "service's token may not create users")
    return plan


# --- the `casabook prewarm` command ----------------------------------------------------------


def resolve_token(root: Path, facility: Facility, hub_url: str) -> tuple[str, str]:
    """The token prewarm runs with, and where it came from: the prewarm service's
    ($CASABOOK_PREWARM_TOKEN), else one minted with the organisers' token for an organiser,
    holding the same narrow scopes and expiring in an hour."""
    import os

    from casabook.hub.organiser import narrow_token, require_organiser_token

    if os.environ.get(PREWARM_TOKEN_ENV):
        return os.environ[PREWARM_TOKEN_ENV].strip(), f"the {PREWARM_SERVICE} service (${PREWARM_TOKEN_ENV})"
    admin = require_organiser_token(root, "prewarm")
    owners = facility.authenticator.admin_users
    if not owners:
        raise CasabookError("no-prewarm-token", f"set {PREWARM_TOKEN_ENV} to the {PREWARM_SERVICE} service's token "
                            "(no organiser in authenticator.admin_users to issue a narrow token to)",
                            file=f"hub-config/{facility.name}.yml", key="authenticator.admin_users")
    token = asyncio.run(narrow_token(hub_url, admin, owner=owners[0], scopes=PREWARM_SCOPES,
                                     note="casabook prewarm", expires_in=3600))
    return token, f"a one-hour token of {owners[0]!r} limited to {', '.join(PREWARM_SCOPES)}"


def run_command(root: Path, *, facility_name: str, users: list[str] | None, hub_url: str | None,
                track: str | None, repo: str | None, branch: str | None, concurrency: int | None,
                console: Console, fmt: str = "table") -> int:
    import json

    from rich.table import Table

    from casabook.links import default_source
    from casabook.model import load_workshop
    from casabook.hub.organiser import hub_url_for

    workshop = load_workshop(root)
    facility = workshop.facility(facility_name)
    url = hub_url_for(facility, hub_url)
    chosen = workshop.select_tracks([track])[0] if track else next(
        (t for t in workshop.tracks.values() if t.facility == facility.name), next(iter(workshop.tracks.values())))
    source = default_source(workshop.root, chosen, repo=repo, branch=branch, hub_url=url)
    token, origin = resolve_token(workshop.root, facility, url)
    plan = None
    if users is None and facility.registration is not None:
        plan = asyncio.run(registered_plan(workshop, facility, url, token))
        users = plan.names
    with progress_bar(Console(stderr=True), "prewarm", transient=False) as bar:
        def done(user: PrewarmedUser) -> None:
            bar.advance()
            bar.status(f"{user.name}: {user.outcome}")

        report = asyncio.run(prewarm(
            url, token, source, users=users, concurrency=concurrency or min(facility.caps.concurrent_spawns, 10),
            spawn_timeout=facility.hub.start_timeout_seconds + 60, on_selected=bar.total, on_done=done))
    if fmt == "json":
        registered = {"must_log_in": plan.must_log_in, "created": plan.to_create} if plan is not None else {}
        print(json.dumps({**report.to_json(), "token": origin, **registered}, indent=2))
    else:
        table = Table(title=f"Prewarm of {facility.name} at {url} ({report.seconds:.1f} s; token: {origin})",
                      title_justify="left")
        for column in ("participant", "outcome", "spawn", "pull", "detail"):
            table.add_column(column)
        for u in report.users:
            table.add_row(u.name, u.outcome, "–" if u.spawn_s is None else f"{u.spawn_s:.1f} s",
                          "–" if u.pull_s is None else f"{u.pull_s:.1f} s", u.detail)
        console.print(table)
        console.print(f"{report.ready} of {len(report.users)} servers running with {source.repo} "
                      f"({source.branch}) in ~/{source.targetpath}", highlight=False)
    if plan is not None and plan.must_log_in:
        console.print(must_log_in_message(plan), highlight=False)
    return 0 if report.ready == len(report.users) else 1


def must_log_in_message(plan: RegisteredPlan) -> str:
    return (f"{plan.must_log_in} registrant{'s' if plan.must_log_in != 1 else ''} must log in once before their "
            f"server can be prewarmed: {plan.reason}.")
