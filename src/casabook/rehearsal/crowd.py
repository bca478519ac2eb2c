"""Rehearse the crowd: N simulated attendees click a launch link within a ramp, concurrently, and
each walks to a notebook open in JupyterLab (casabook.rehearsal.attendee) while the hub's process tree is
measured (casabook.rehearsal.footprint). The result says whether the hub holds the planned crowd: time to
notebook (p50, p95, max), who got in and who met the "workshop full" page, spawn failures, the
hub's "try again" answers, and CPU and memory per attendee.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from casabook import atomic
from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, require_loopback, user_path
from casabook.progress import progress_bar
from casabook.rehearsal.attendee import Attendee
from casabook.rehearsal.footprint import Footprint
from casabook.rehearsal.results import ADMITTED, LOGIN_OIDC, LOGIN_TOKEN, AttendeeResult, CrowdPlan, Rehearsal

if TYPE_CHECKING:
    from casabook.model import Facility, Workshop

async def register_identities(oidc_url: str, names: list[str]) -> None:
    """Give each simulated attendee an account at the local identity provider (its PUT /users/<sub>),
    with the claims the hub reads, as the demo users have."""
    from casabook.hub.local import DemoUser

    require_loopback(oidc_url, "--oidc-url")
    gate = asyncio.Semaphore(20)
    async with httpx.AsyncClient(timeout=30) as client:
        async def one(name: str) -> None:
            async with gate:
                (await client.put(f"{oidc_url}/users/{user_path(name)}", json=DemoUser(name).claims)).raise_for_status()

        await asyncio.gather(*(one(name) for name in names))


async def issue_tokens(hub_url: str, admin_token: str, names: list[str]) -> dict[str, str]:
    """Admin-issued tokens, where no login page can be automated. Creating the users through the
    API bypasses the login, so the cap is not exercised: such a rehearsal refuses nobody."""
    async with HubAPI(hub_url, admin_token) as api:
        gate = asyncio.Semaphore(10)

        async def one(name: str) -> tuple[str, str]:
            async with gate:
                await api.create_user(name)
                return name, await api.create_token(name, note="casabook rehearsal", expires_in=3 * 3600)

        return dict(await asyncio.gather(*(one(name) for name in names)))


async def confirm_spawns(hub_url: str, token: str, attendees: list[Attendee]) -> None:
    """Did each launch start its server? The hub's record decides: a server started after the
    attendee's click. A spawn the hub waited out itself (no spawn-pending page) lasted as long as
    the hub's /hub/spawn/ redirect took."""
    import datetime as dt

    async with HubAPI(hub_url, token) as api:
        models = {u["name"]: u for u in await api.users()}
    for attendee in attendees:
        result = attendee.result
        if result.outcome not in ADMITTED or result.name not in models:
            continue
        started = (models[result.name].get("servers") or {}).get("", {}).get("started")
        if not started:
            continue
        began = dt.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        result.spawned = began >= result.clicked_wall - 0.5
        if not result.spawned:
            result.spawn_s = None
        elif result.spawn_s is None and attendee.spawn_request:
            sent, answered = attendee.spawn_request
            result.spawn_s = round(answered - sent, 3)


async def hub_view(hub_url: str, token: str | None) -> dict[str, Any] | None:
    """The cap as the hub itself reports it (the organisers' page /hub/api/casabook/cap)."""
    if not token:
        return None
    async with HubAPI(hub_url, token) as api:
        try:
            cap = (await api.request("GET", "casabook/cap")).json()
        except Exception:  # noqa: BLE001 (an older hub without the page: the report just lacks it)
            return None
        return {"participants": cap.get("participants"), "admitted": len(cap.get("admitted", [])),
                "waitlist": len(cap.get("waitlist", []))}


async def rehearse_crowd(plan: CrowdPlan, *, on_start: Callable[[str], None] | None = None,
                         on_done: Callable[[AttendeeResult], None] | None = None) -> Rehearsal:
    require_loopback(plan.hub_url, "--hub-url")
    require_loopback(plan.launch_url, "--hub-url")
    names = plan.names()
    tokens: dict[str, str] = {}
    if plan.login == LOGIN_OIDC:
        if not plan.oidc_url:
            raise ValueError("login=oidc needs the identity provider's URL")
        await register_identities(plan.oidc_url, names)
    else:
        if not plan.api_token:
            raise ValueError("login=token needs the organisers' admin token")
        tokens = await issue_tokens(plan.hub_url, plan.api_token, names)

    footprint = Footprint(plan.hub_pid, plan.idp_pid) if plan.hub_pid else None
    if footprint:
        footprint.sample(baseline=True)
        sampler = asyncio.create_task(footprint.watch(plan.sample_interval_s))
    origin = time.monotonic()
    attendees = [Attendee(name, plan.launch_url, kernel=plan.kernel, run_first_cell=plan.run_first_cell,
                          spawn_timeout=plan.spawn_timeout_s, max_retry_wait=plan.max_retry_wait_s,
                          token=tokens.get(name), started=origin) for name in names]

    async def walk(attendee: Attendee, at: float) -> AttendeeResult:
        await asyncio.sleep(max(0.0, origin + at - time.monotonic()))
        if on_start:
            on_start(attendee.name)
        try:
            async with asyncio.timeout(plan.attendee_timeout_s):
                result = await attendee.run()
        except TimeoutError:
            result = attendee.cancelled()
        if on_done:
            on_done(result)
        return result

    try:
        results = await asyncio.gather(*(walk(a, at) for a, at in zip(attendees, plan.click_times(), strict=True)))
    finally:
        if footprint:
            sampler.cancel()
    rehearsal = Rehearsal(plan, list(results), seconds=round(time.monotonic() - origin, 3))
    if plan.api_token:
        await confirm_spawns(plan.hub_url, plan.api_token, attendees)
    if footprint:
        # One last look with every server (and kernel) still up, then the kernels go.
        await asyncio.to_thread(footprint.sample)
        rehearsal.footprint = footprint.report(sum(r.outcome in ADMITTED for r in results))
    await asyncio.gather(*(a.close() for a in attendees))
    rehearsal.hub_view = await hub_view(plan.hub_url, plan.api_token)
    return rehearsal


# --- the `casabook rehearse` command ---------------------------------------------------------


@dataclass(frozen=True)
class RehearseOptions:
    facility: str
    participants: int
    ramp_s: float = 10.0
    run_first_cell: bool = False
    hub_url: str | None = None
    output: Path | None = None
    cap: int | None = None
    track: str | None = None
    notebook: str | None = None
    repo: str | None = None
    branch: str | None = None
    login: str | None = None  # default: oidc where the facility's identity provider is the local one
    timeout_s: float | None = None
    name_prefix: str = "attendee"
    fmt: str = "table"  # table: the rich tables; json: the same figures as JSON on stdout


def choose_link(workshop: Workshop, facility: Facility, hub_url: str, options: RehearseOptions) -> str:
    """The launch link the crowd clicks: a track's notebook (the first one on this facility by
    default), its materials as casabook.links publishes them, into the rehearsed hub."""
    from casabook.links import LaunchLink, broken_links, default_source, launch_url

    if options.track:
        track = workshop.select_tracks([options.track])[0]
    else:
        track = next((t for t in workshop.tracks.values() if t.facility == facility.name),
                     next(iter(workshop.tracks.values())))
    notebook = options.notebook or track.notebooks[0].path
    source = default_source(workshop.root, track, repo=options.repo, branch=options.branch, hub_url=hub_url)
    if not options.repo and not track.materials.repo:
        # The materials are this repository: the link must not be broken before we time it.
        link = LaunchLink(track.name, notebook, notebook, facility.name, hub_url, source)
        for _, reason in broken_links(workshop.root, [link]):
            raise CasabookError("broken-link", f"the rehearsal's launch link is broken: {reason}", key="--notebook")
    return launch_url(hub_url, source, notebook)


@contextmanager
def _progress(console: Console, total: int) -> Iterator[tuple[Callable[[str], None], Callable[[AttendeeResult], None]]]:
    """One line for the crowd: attendees done of all, and how many walk or ended which way."""
    seen: Counter[str] = Counter()
    with progress_bar(console, "attendees", total, transient=False) as bar:
        def show() -> None:
            walking = seen["clicked"] - sum(v for k, v in seen.items() if k != "clicked")
            bar.status(" · ".join([f"walking {walking}"] + [f"{k} {v}" for k, v in sorted(seen.items()) if k != "clicked"]))

        def started(name: str) -> None:
            seen["clicked"] += 1
            show()

        def done(result: AttendeeResult) -> None:
            seen[result.outcome] += 1
            bar.advance()
            show()

        yield started, done


def run_command(root: Path, options: RehearseOptions, console: Console) -> int:
    """Rehearse, print the results, write rehearsal.json and the plot. 0 when every attendee either
    reached the notebook or met the workshop-full page; 1 otherwise."""
    import datetime as dt
    import json
    import tempfile

    from casabook.rehearsal.footprint import hub_pid_for
    from casabook.hub.serve import prepare_stack
    from casabook.model import load_workshop
    from casabook.hub.organiser import identity_provider_of, organiser_token
    from casabook.rehearsal.stack import RehearsalStack
    from casabook.rehearsal.report import figures, render, write_outputs

    if options.participants < 1:
        raise CasabookError("bad-participants", "expected at least 1 attendee", key="--participants")
    workshop = load_workshop(root)
    facility = workshop.facility(options.facility)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = options.output or workshop.root / ".casabook" / "rehearsals" / f"{facility.name}-{stamp}"
    stack: RehearsalStack | None = None
    state = None
    results = console
    if options.fmt == "json":
        console = Console(stderr=True)  # progress and status beside the JSON, not in it
    try:
        if options.hub_url:
            if options.cap:
                raise CasabookError("cap-with-hub-url", "--cap sets the cap of a hub casabook starts; a running hub "
                                    "keeps its own (start it with `casabook hub --participants N`)", key="--cap")
            hub_url = require_loopback(options.hub_url, "--hub-url")
            token = organiser_token(workshop.root)
            hub_pid = hub_pid_for(hub_url)
            # The running hub's own cap (it may have been started with --participants), where readable.
            live = asyncio.run(hub_view(hub_url, token))
            cap = live["participants"] if live and live.get("participants") else facility.caps.participants
        else:
            if not facility.is_local:
                raise CasabookError("not-a-local-facility",
                                    f"facility {facility.name!r}'s hub is at {facility.hub.url}; casabook sends rehearsal "
                                    "traffic only to this machine: forward it to a local port and give --hub-url",
                                    key="--hub-url")
            cap = options.cap or facility.caps.participants
            state = tempfile.TemporaryDirectory(prefix="casabook-rehearsal-")
            base = prepare_stack(workshop, facility=facility.name, state_dir=Path(state.name), port=0, participants=cap)
            stack = RehearsalStack(root=base.root, state_dir=base.state_dir, facility=base.facility,
                                   participants=cap, contact=base.contact)
            with console.status(f"starting the hub ({facility.name}, cap {cap})"):
                stack.start()
            hub_url, token, hub_pid = stack.hub_url, stack.api_token, stack.hub_process.pid if stack.hub_process else None
        login = options.login or (LOGIN_OIDC if facility.authenticator.kind == "local-oidc" else LOGIN_TOKEN)
        oidc_url = None
        if login == LOGIN_OIDC:
            oidc_url = stack.oidc_url if stack else asyncio.run(identity_provider_of(hub_url))
        elif not token:
            raise CasabookError("no-token", "--login token needs the organisers' API token (CASABOOK_API_TOKEN)",
                                key="--login")
        start_timeout = facility.hub.start_timeout_seconds
        plan = CrowdPlan(
            hub_url=hub_url, launch_url=choose_link(workshop, facility, hub_url, options),
            participants=options.participants, ramp_s=options.ramp_s, cap=cap, login=login, oidc_url=oidc_url,
            api_token=token, run_first_cell=options.run_first_cell, kernel=facility.kernel,
            name_prefix=options.name_prefix, attendee_timeout_s=options.timeout_s or 2 * start_timeout + 300,
            spawn_timeout_s=start_timeout + 60, hub_pid=hub_pid, idp_pid=stack.idp_pid if stack else None)
        with _progress(console, plan.participants) as (started, done):
            rehearsal = asyncio.run(rehearse_crowd(plan, on_start=started, on_done=done))
        json_path, plot = write_outputs(rehearsal, output)
        if stack:
            atomic.write_bytes(output / "hub.log", stack.log_path.read_bytes())
    finally:
        if stack:
            with console.status("stopping the hub"):
                stack.stop()
        if state:
            state.cleanup()
    if options.fmt == "json":
        print(json.dumps(figures(rehearsal, results=json_path, plot=plot), indent=2))
    else:
        render(rehearsal, results, title=f"Rehearsal of {facility.name}")
        results.print(f"results: {json_path}\nplot:    {plot}", highlight=False)
    s = rehearsal.summary()
    return 0 if s["in"] + s["refused"] == s["participants"] else 1
