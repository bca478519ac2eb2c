"""Attendance, from the hub's REST API and the cap's own view: how many registered, connected at
least once, are active now, have a server running, were refused; per session of each track on the
facility (by day of the schedule); and a plot of connections over the session times.

Aggregates only: the hub's answers name people, the figures printed and plotted never do.
"Registered" is the registration list's count where the facility has one, else the participants
holding a place (a first login is what takes one). "Connected" is the participants who logged in
at least once. A session's figure counts who logged in during it, or whose last activity fell in
it: the hub sees logins and last activity, so someone who kept a browser tab open from an earlier
day shows on their last day only.
Needs a token with list:users, read:users and read:servers (the organisers' token, or the prewarm
service's); with admin rights the cap's own view (registration, logins, waiting list) is added.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from casabook import atomic
from casabook.hub.api import HubAPI
from casabook.hub.validator import is_participant

if TYPE_CHECKING:
    from casabook.model import Track

ACTIVE_WINDOW = dt.timedelta(hours=24)
# JupyterHub records a user's activity every 5 minutes (last_activity_interval): three intervals.
ACTIVE_NOW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SessionFigures:
    track: str
    session: str
    date: str
    start: str
    end: str
    connected: int  # distinct participants who logged in, or were last active, during the session
    first_time: int  # of them, connected for the first time


@dataclass(frozen=True)
class TrackFigures:
    track: str
    registered: int  # on the track's own registration list
    connected: int  # of them, connected at least once


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
    connected: int = 0
    active_now: int = 0
    registration_list: bool = False
    registrants_connected: int | None = None
    walk_ins: int | None = None
    sessions: list[SessionFigures] = field(default_factory=list)
    tracks: list[TrackFigures] = field(default_factory=list)  # tracks with a registration list of their own

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def headline(self) -> str:
        """The organisers' sentence: "5 registered, 4 connected, 3 active now"."""
        connected = self.registrants_connected if self.registrants_connected is not None else self.connected
        line = f"{self.registered} registered, {connected} connected, {self.active_now} active now"
        if self.walk_ins:
            line += f" (and {self.walk_ins} walk-in{'s' if self.walk_ins != 1 else ''})"
        if self.waitlist:
            line += f", {self.waitlist} refused"
        return line


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def attendance_from_users(users: list[dict[str, Any]], *, hub_url: str, cap: int | None,
                          now: dt.datetime, waitlist: int | None = None, view: dict[str, Any] | None = None,
                          sessions: list[tuple[str, Any]] | None = None) -> Attendance:
    """The counts, from the hub's user models and the cap's view (pure: tests feed it the API's own
    answers); `sessions` are (track name, casabook.model.Session) pairs."""
    participants = [u for u in users if is_participant(u)]
    running = starting = active = active_now = 0
    for user in users:
        last = _parse_time(user.get("last_activity"))
        if last and now - last <= ACTIVE_WINDOW:
            active += 1
        if last and now - last <= ACTIVE_NOW and not user.get("admin"):
            active_now += 1
        for server in (user.get("servers") or {}).values():
            if server.get("ready"):
                running += 1
            elif server.get("pending") == "spawn":
                starting += 1
    registration = (view or {}).get("registration")
    listed = {"registration_list": True, "registered": registration["registered"],
              "registrants_connected": registration["registered_connected"],
              "walk_ins": registration["walk_ins"]} if registration else {"registered": len(participants)}
    return Attendance(hub_url=hub_url, taken_at=now.isoformat(timespec="seconds"), cap=cap,
                      organisers=sum(bool(u.get("admin")) for u in users), connected=len(participants),
                      active_24h=active, active_now=active_now, servers_running=running, servers_starting=starting,
                      total_ever=len(users), waitlist=waitlist, **listed,
                      tracks=[TrackFigures(name, figures["registered"], figures["connected"])
                              for name, figures in sorted(((registration or {}).get("tracks") or {}).items())],
                      sessions=session_figures(participants, (view or {}).get("logins", []), sessions or []))


def _logins(participants: list[dict[str, Any]], logins: list[dict[str, Any]]) -> list[tuple[str, dt.datetime]]:
    """Participants' logins as (name, UTC time), in order; organisers' are not counted."""
    names = {u["name"] for u in participants}
    return sorted(((entry["name"], dt.datetime.fromtimestamp(entry["time"], dt.timezone.utc))
                   for entry in logins if entry.get("name") in names), key=lambda item: item[1])


def session_figures(participants: list[dict[str, Any]], logins: list[dict[str, Any]],
                    sessions: list[tuple[str, Any]]) -> list[SessionFigures]:
    """Who connected during each session of the schedule, and who for the first time."""
    seen = _logins(participants, logins)
    first: dict[str, dt.datetime] = {}
    for name, when in seen:
        first.setdefault(name, when)
    last = {u["name"]: _parse_time(u.get("last_activity")) for u in participants}
    figures = []
    for track, session in sorted(sessions, key=lambda item: item[1].starts_at):
        begin, end = session.starts_at, session.ends_at
        present = {name for name, when in seen if begin <= when <= end}
        present |= {name for name, when in last.items() if when and begin <= when <= end}
        figures.append(SessionFigures(
            track=track, session=session.title, date=session.date.isoformat(), start=session.start,
            end=end.strftime("%H:%M"), connected=len(present),
            first_time=sum(begin <= when <= end for when in first.values())))
    return figures


def plot_connections(participants: list[dict[str, Any]], logins: list[dict[str, Any]],
                     sessions: list[tuple[str, Any]], path: Path, *, title: str) -> Path:
    """Participants connected so far (first logins, cumulative) and logins per 5 minutes, one panel
    per session of the schedule (times in the session's own time zone); over the logins' own span
    where no session is planned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    seen = _logins(participants, logins)
    first = sorted({name: when for name, when in reversed(seen)}.values())
    windows = [(f"{track}: {s.title}", s.starts_at, s.ends_at)
               for track, s in sorted(sessions, key=lambda item: item[1].starts_at)]
    if not windows:
        begin = seen[0][1] if seen else dt.datetime.now(dt.timezone.utc)
        end = seen[-1][1] if seen else begin
        windows = [("all logins", begin - dt.timedelta(minutes=5), end + dt.timedelta(minutes=5))]
    fig, axes = plt.subplots(1, len(windows), figsize=(max(6, 4.5 * len(windows)), 4), squeeze=False,
                             constrained_layout=True)
    for axis, (label, begin, end) in zip(axes[0], windows, strict=True):
        margin = dt.timedelta(minutes=30) if label != "all logins" else dt.timedelta(0)
        lo, hi = begin - margin, end + margin
        in_view = [when for _, when in seen if lo <= when <= hi]
        bins = max(1, int((hi - lo) / dt.timedelta(minutes=5)))
        counts = axis.twinx()
        if in_view:
            counts.hist(in_view, bins=bins, range=(mdates.date2num(lo), mdates.date2num(hi)), alpha=0.3,
                        color="tab:gray", label="logins per 5 minutes")
        so_far = [sum(f <= lo for f in first)] + [sum(f <= when for f in first) for when in first if lo < when <= hi]
        times = [lo] + [when for when in first if lo < when <= hi]
        axis.step([*times, hi], [*so_far, so_far[-1]], where="post", color="tab:blue", label="connected so far")
        axis.axvspan(begin, end, color="tab:green", alpha=0.08, label="the session")
        axis.set_title(label, fontsize="small")
        axis.set_ylabel("participants connected")
        counts.set_ylabel("logins")
        axis.set_ylim(bottom=0)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=begin.tzinfo))
        axis.tick_params(axis="x", labelrotation=30)
    axes[0][0].legend(loc="upper left", fontsize="small")
    fig.suptitle(title)
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    return atomic.write_bytes(path, image.getvalue())


def track_sessions(tracks: list[Track]) -> list[tuple[str, Any]]:
    return [(track.name, session) for track in tracks for session in track.schedule]


async def fetch(hub_url: str, token: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The hub's users, and the cap's own view where the token may read it."""
    async with HubAPI(hub_url, token) as api:
        users = await api.users()
        try:
            view = (await api.request("GET", "casabook/cap")).json()
        except Exception:  # noqa: BLE001 (not an organiser's token, or a hub without the cap page)
            view = None
    return users, view


async def collect(hub_url: str, token: str, *, cap: int | None,
                  sessions: list[tuple[str, Any]] | None = None) -> Attendance:
    users, view = await fetch(hub_url, token)
    return attendance(users, view, hub_url=hub_url, cap=cap, sessions=sessions)


def attendance(users: list[dict[str, Any]], view: dict[str, Any] | None, *, hub_url: str, cap: int | None,
               sessions: list[tuple[str, Any]] | None = None) -> Attendance:
    """The figures now, from what fetch() got: the cap's own count of places wins over `cap`."""
    return attendance_from_users(users, hub_url=hub_url, cap=(view or {}).get("participants") or cap,
                                 now=dt.datetime.now(dt.timezone.utc),
                                 waitlist=len(view.get("waitlist", [])) if view else None, view=view,
                                 sessions=sessions)


def render(attendance: Attendance, console: Console, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(attendance.to_json(), indent=2))
        return
    a = attendance
    console.print(a.headline, highlight=False)
    table = Table(title=f"Attendance at {a.hub_url} ({a.taken_at})", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    if a.registration_list:
        table.add_row("registered (on the registration list)", str(a.registered))
        table.add_row("registrants connected at least once", str(a.registrants_connected))
        table.add_row("walk-ins connected (not on the list)", str(a.walk_ins))
    places = f"{a.connected} of {a.cap}" if a.cap else str(a.connected)
    table.add_row("participants connected at least once (places taken)", places)
    if a.waitlist is not None:
        table.add_row("refused, on the waiting list", str(a.waitlist))
    table.add_row("active now (last 15 minutes)", str(a.active_now))
    table.add_row("active in the last 24 hours", str(a.active_24h))
    table.add_row("servers running", str(a.servers_running))
    if a.servers_starting:
        table.add_row("servers starting", str(a.servers_starting))
    table.add_row("organisers", str(a.organisers))
    table.add_row("total ever (everyone the hub has seen)", str(a.total_ever))
    console.print(table)
    if a.tracks:
        by_track = Table(title="Registered and connected per track", title_justify="left")
        for column in ("track", "registered", "connected"):
            by_track.add_column(column, justify="left" if column == "track" else "right")
        for t in a.tracks:
            by_track.add_row(t.track, str(t.registered), str(t.connected))
        console.print(by_track)
    if a.sessions:
        by_session = Table(title="Connected during each session of the schedule", title_justify="left")
        for column in ("track", "session", "day", "time", "connected", "first time"):
            by_session.add_column(column, justify="right" if column in ("connected", "first time") else "left")
        for s in a.sessions:
            by_session.add_row(s.track, s.session, s.date, f"{s.start}-{s.end}", str(s.connected), str(s.first_time))
        console.print(by_session)


def run_command(root: Path, *, facility_name: str, hub_url: str | None, fmt: str, console: Console,
                plot: Path | None = None) -> int:
    import asyncio
    import os

    from casabook.errors import CasabookError
    from casabook.hub.organiser import hub_url_for, organiser_token
    from casabook.hub.prewarm import PREWARM_TOKEN_ENV
    from casabook.hub.serve import default_state_dir
    from casabook.model import load_workshop

    workshop = load_workshop(root)
    facility = workshop.facility(facility_name)
    url = hub_url_for(facility, hub_url)
    # The organisers' token adds the cap's own view; the prewarm service's can read the rest.
    token = organiser_token(workshop.root) or os.environ.get(PREWARM_TOKEN_ENV)
    if not token:
        raise CasabookError("no-token", "stats needs a token that may list users: set CASABOOK_API_TOKEN (the "
                            f"organisers') or {PREWARM_TOKEN_ENV}, or run the hub with `casabook hub`")
    # The sessions of the tracks on this facility; every track's for one no track names (the embedded default).
    tracks = [t for t in workshop.tracks.values() if t.facility == facility.name] or list(workshop.tracks.values())
    sessions = track_sessions(tracks)
    users, view = asyncio.run(fetch(url, token))
    render(attendance(users, view, hub_url=url, cap=facility.caps.participants, sessions=sessions), console, fmt)
    path = plot or default_state_dir(workshop.root).parent / "stats" / f"connections-{facility.name}.png"
    participants = [u for u in users if not u.get("admin")]
    plot_connections(participants, (view or {}).get("logins", []), sessions, path,
                     title=f"Connections to {facility.title}")
    Console(stderr=True).print(f"plot: {path}", highlight=False)
    return 0
