"""What a rehearsal produces: the plan of the crowd, each attendee's outcome, and their summary.

Plain data, imported by the crowd that fills it (casabook.rehearsal.crowd), the attendee who walks
(casabook.rehearsal.attendee) and the report that shows it (casabook.rehearsal.report).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

LOGIN_OIDC = "oidc"
LOGIN_TOKEN = "token"


class Outcome:
    IN = "in"  # JupyterLab open on the notebook
    REFUSED = "refused"  # the "This workshop is full" page
    SPAWN_FAILED = "spawn-failed"
    PULL_FAILED = "pull-failed"
    CELL_FAILED = "cell-failed"  # in, but the first code cell raised or never answered
    GAVE_UP = "gave-up"  # too many "try again" pages
    TIMEOUT = "timeout"
    ERROR = "error"  # a page nobody expected (status and URL in `detail`)


# Attendees whose walk got past the login and the cap, whatever happened after.
ADMITTED = (Outcome.IN, Outcome.CELL_FAILED, Outcome.PULL_FAILED, Outcome.SPAWN_FAILED)


@dataclass(frozen=True)
class ErrorPage:
    """An error page the attendee landed on (any 4xx/5xx page but the workshop-full one)."""

    status: int
    path: str
    message: str  # its visible text, as the attendee read it
    at_s: float  # seconds after the click

    @property
    def too_many_users(self) -> bool:
        """JupyterHub's concurrent_spawn_limit page: "Too many users trying to log in right now"."""
        return self.status == 429 and "too many users" in self.message.lower()


@dataclass
class AttendeeResult:
    name: str
    outcome: str = Outcome.ERROR
    clicked_at: float = 0.0  # seconds after the rehearsal started
    clicked_wall: float = 0.0  # the same moment as a Unix time, to compare with the hub's records
    time_to_notebook: float | None = None  # click -> JupyterLab page of the notebook
    login_s: float | None = None
    spawn_s: float | None = None  # None: the server was already running (prewarmed or returning)
    pull_s: float | None = None
    first_cell_s: float | None = None
    spawned: bool = False
    time_to_full_page: float | None = None  # click -> the workshop-full page (the refused)
    # The largest place in the spawn line the progress page showed ("12 ahead of you"; 0: "you
    # are next"); None where the attendee never waited in line (or the hub has no line).
    place_in_line: int | None = None
    error_pages: list[ErrorPage] = field(default_factory=list)
    http_429: int = 0  # 'try again' answers (pages, or the REST API's where logins are by token)
    retries: int = 0  # what a person does after an error page: reload it, or press its button
    transport_retries: int = 0  # connections closed unanswered, which the browser itself retried once
    pages: int = 0
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CrowdPlan:
    hub_url: str
    launch_url: str  # the link every attendee clicks (casabook.links.launch_url into this hub)
    participants: int
    ramp_s: float = 10.0
    cap: int | None = None  # the participant cap the hub enforces, for the report
    login: str = LOGIN_OIDC
    oidc_url: str | None = None  # the local identity provider (login=oidc)
    api_token: str | None = None  # the organisers' admin token (login=token; the cap's own view)
    run_first_cell: bool = False
    kernel: str = "python3"
    name_prefix: str = "attendee"
    attendee_timeout_s: float = 600.0
    spawn_timeout_s: float = 300.0
    max_retry_wait_s: float = 60.0
    hub_pid: int | None = None
    idp_pid: int | None = None  # the identity provider's process, where it runs here on its own
    sample_interval_s: float = 1.0

    def names(self) -> list[str]:
        width = max(3, len(str(self.participants)))
        return [f"{self.name_prefix}-{i:0{width}d}" for i in range(1, self.participants + 1)]

    def click_times(self) -> list[float]:
        """Evenly spread over the ramp: attendee i clicks at ramp * i / (N - 1)."""
        if self.participants == 1:
            return [0.0]
        return [self.ramp_s * i / (self.participants - 1) for i in range(self.participants)]


@dataclass
class Rehearsal:
    plan: CrowdPlan
    attendees: list[AttendeeResult] = field(default_factory=list)
    seconds: float = 0.0
    footprint: dict[str, Any] | None = None
    hub_view: dict[str, Any] | None = None  # the cap as the hub reports it, when the token may read it

    def summary(self) -> dict[str, Any]:
        outcomes = Counter(a.outcome for a in self.attendees)
        times = sorted(a.time_to_notebook for a in self.attendees if a.time_to_notebook is not None)
        pages = [page for a in self.attendees for page in a.error_pages]
        places = [a.place_in_line for a in self.attendees if a.place_in_line is not None]
        admitted = sum(outcomes[o] for o in ADMITTED)
        return {
            "participants": self.plan.participants,
            "cap": self.plan.cap,
            "admitted": admitted,
            "refused": outcomes[Outcome.REFUSED],
            "in": outcomes[Outcome.IN],
            "spawn_failures": outcomes[Outcome.SPAWN_FAILED],
            "other_failures": {o: n for o, n in sorted(outcomes.items())
                               if o not in (Outcome.IN, Outcome.REFUSED, Outcome.SPAWN_FAILED)},
            "spawned": sum(a.spawned for a in self.attendees),
            "error_pages": len(pages),
            "error_pages_too_many_users": sum(page.too_many_users for page in pages),
            "error_pages_by_status": {str(status): n for status, n in sorted(Counter(p.status for p in pages).items())},
            "attendees_meeting_error_pages": sum(bool(a.error_pages) for a in self.attendees),
            "error_pages_max_per_attendee": max((len(a.error_pages) for a in self.attendees), default=0),
            "http_429": sum(a.http_429 for a in self.attendees),
            "retries": sum(a.retries for a in self.attendees),
            "transport_retries": sum(a.transport_retries for a in self.attendees),
            "time_to_full_page_s": _spread([a.time_to_full_page for a in self.attendees]),
            # Only the attendees who waited in line: who never did has no place.
            "place_in_line": {"waited": len(places), "max": max(places, default=None),
                              "p50": percentile(places, 50), "p95": percentile(places, 95)},
            "time_to_notebook_s": {"p50": percentile(times, 50), "p95": percentile(times, 95),
                                   "max": times[-1] if times else None, "n": len(times)},
            "login_s": _spread([a.login_s for a in self.attendees]),
            "after_login_s": _spread([a.time_to_notebook - a.login_s for a in self.attendees
                                      if a.time_to_notebook is not None and a.login_s is not None]),
            "first_cell_s": _spread([a.first_cell_s for a in self.attendees]),
            "spawn_s": _spread([a.spawn_s for a in self.attendees]),
            "pull_s": _spread([a.pull_s for a in self.attendees]),
            "seconds": self.seconds,
        }

    def to_json(self) -> dict[str, Any]:
        plan = {k: v for k, v in self.plan.__dict__.items() if k not in ("api_token",)}
        return {"summary": self.summary(), "footprint": self.footprint, "hub_view": self.hub_view,
                "plan": plan, "machine": {"cpus": os.cpu_count()},
                "attendees": [a.to_json() for a in self.attendees]}


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (no interpolation): the value at least p% of attendees reached."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _spread(values: list[float | None]) -> dict[str, float | None]:
    present = sorted(v for v in values if v is not None)
    return {"p50": percentile(present, 50), "p95": percentile(present, 95),
            "max": present[-1] if present else None, "n": len(present)}
