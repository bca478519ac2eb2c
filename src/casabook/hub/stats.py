"""Attendance, from the hub's REST API: participants registered against the cap, active in the
last 24 hours, servers running, and everyone the hub has ever seen.

"Registered" means holding a place: a participant (not an organiser) who has logged in once. That
is what the participant cap counts, so `registered` against `cap` is how full the workshop is.
Needs a token with list:users, read:users and read:servers (the organisers' token, or the prewarm
service's); with admin rights the cap's own view (places, waiting list) is added.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from casabook.hub.api import HubAPI
from casabook.hub.validator import is_participant

ACTIVE_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Attendance:
    hub_url: str
    taken_at: str
    cap: int | None
    registered: int
    organisers: int
    active_24h: int
    servers_running: int
    servers_starting: int
    total_ever: int
    waitlist: int | None = None  # refused at the cap (needs the organisers' token)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def attendance_from_users(users: list[dict[str, Any]], *, hub_url: str, cap: int | None,
                          now: dt.datetime, waitlist: int | None = None) -> Attendance:
    """The counts, from the hub's user models (pure: tests feed it the API's own answer)."""
    participants = [u for u in users if is_participant(u)]
    running = starting = active = 0
    for user in users:
        last = _parse_time(user.get("last_activity"))
        if last and now - last <= ACTIVE_WINDOW:
            active += 1
        for server in (user.get("servers") or {}).values():
            if server.get("ready"):
                running += 1
            elif server.get("pending") == "spawn":
                starting += 1
    return Attendance(hub_url=hub_url, taken_at=now.isoformat(timespec="seconds"), cap=cap,
                      registered=len(participants), organisers=sum(bool(u.get("admin")) for u in users),
                      active_24h=active, servers_running=running, servers_starting=starting,
                      total_ever=len(users), waitlist=waitlist)


async def collect(hub_url: str, token: str, *, cap: int | None) -> Attendance:
    async with HubAPI(hub_url, token) as api:
        users = await api.users()
        waitlist = None
        try:
            view = (await api.request("GET", "casabook/cap")).json()
        except Exception:  # noqa: BLE001 (not an organiser's token, or a hub without the cap page)
            view = None
        if view:
            cap = view.get("participants") or cap
            waitlist = len(view.get("waitlist", []))
    return attendance_from_users(users, hub_url=hub_url, cap=cap, now=dt.datetime.now(dt.timezone.utc),
                                 waitlist=waitlist)


def render(attendance: Attendance, console: Console, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(attendance.to_json(), indent=2))
        return
    a = attendance
    table = Table(title=f"Attendance at {a.hub_url} ({a.taken_at})", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    places = f"{a.registered} of {a.cap}" if a.cap else str(a.registered)
    table.add_row("participants registered (places taken)", places)
    if a.waitlist is not None:
        table.add_row("refused, on the waiting list", str(a.waitlist))
    table.add_row("active in the last 24 hours", str(a.active_24h))
    table.add_row("servers running", str(a.servers_running))
    if a.servers_starting:
        table.add_row("servers starting", str(a.servers_starting))
    table.add_row("organisers", str(a.organisers))
    table.add_row("total ever (everyone the hub has seen)", str(a.total_ever))
    console.print(table)


def run_command(root: Path, *, facility_name: str, hub_url: str | None, fmt: str, console: Console) -> int:
    import asyncio
    import os

    from casabook.errors import CasabookError
    from casabook.model import load_workshop
    from casabook.hub.organiser import hub_url_for, organiser_token
    from casabook.hub.prewarm import PREWARM_TOKEN_ENV

    workshop = load_workshop(root)
    facility = workshop.facility(facility_name)
    url = hub_url_for(facility, hub_url)
    # The organisers' token adds the cap's own view; the prewarm service's can read the rest.
    token = organiser_token(workshop.root) or os.environ.get(PREWARM_TOKEN_ENV)
    if not token:
        raise CasabookError("no-token", "stats needs a token that may list users: set CASABOOK_API_TOKEN (the "
                            f"organisers') or {PREWARM_TOKEN_ENV}, or run the hub with `casabook hub`")
    render(asyncio.run(collect(url, token, cap=facility.caps.participants)), console, fmt)
    return 0
