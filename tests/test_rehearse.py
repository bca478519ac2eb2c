"""Rehearsal, prewarm and attendance against the real local stack (JupyterHub, proxy, OIDC provider).

A crowd larger than the cap gets exactly the cap in and meets the workshop-full page after it; a
prewarmed participant's launch does not spawn again; the attendance counts are the hub's own.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from traitlets.config import Config

from casabook.cli import main
from casabook.hub.config import apply_organiser_token
from casabook.hub.prewarm import PREWARM_SCOPES, PREWARM_SERVICE, apply_prewarm_service, prewarm
from casabook.hub.stats import attendance_from_users, collect
from casabook.hub.validator import USER_ROLE, is_participant
from casabook.rehearsal.attendee import MAX_RETRIES, place_in_line
from casabook.rehearsal.crowd import rehearse_crowd
from casabook.rehearsal.report import plot_rehearsal, summary_table
from casabook.rehearsal.results import AttendeeResult, CrowdPlan, ErrorPage, Outcome, Rehearsal, percentile
from casabook.testing.fixtures import REPO_ROOT, TEST_CONTACT
from casabook.testing.hub import RehearsalHub
from casabook.testing.materials import MaterialsRepo
from casabook.testing.workshops import edit_yaml, runnable_workshop


# --- without a hub -----------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "p", "expected"), [
    pytest.param([], 95, None, id="no-attendee-in"),
    pytest.param([4.0], 95, 4.0, id="one-attendee"),
    pytest.param([5.0, 1.0, 3.0, 2.0, 4.0], 50, 3.0, id="median-of-five"),
    pytest.param([float(i) for i in range(1, 101)], 95, 95.0, id="p95-of-a-hundred-is-the-95th"),
    pytest.param([float(i) for i in range(1, 21)], 95, 19.0, id="p95-of-twenty-is-the-19th"),
    pytest.param([1.0, 2.0], 100, 2.0, id="p100-is-the-max"),
])
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_clicks_spread_evenly_over_the_ramp() -> None:
    plan = CrowdPlan(hub_url="http://127.0.0.1:1", launch_url="http://127.0.0.1:1/x", participants=5, ramp_s=10)
    assert plan.click_times() == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert plan.names() == ["attendee-001", "attendee-002", "attendee-003", "attendee-004", "attendee-005"]


# The spawn line's progress messages (casabook.hub.line.place_message) and a spawner's own.
IN_LINE = "In line for a server: {} ahead of you (20 starting now)"
NEXT = "In line for a server: you are next (20 starting now)"


@pytest.mark.parametrize(("messages", "expected"), [
    pytest.param(["Server requested", "Spawning server...", "Server ready at /user/a/"], None,
                 id="no-line-no-place"),
    pytest.param([IN_LINE.format(12), IN_LINE.format(7), NEXT, "Your turn: starting your server after 9 s in line",
                  "Server ready"], 12, id="the-largest-place-shown"),
    pytest.param([NEXT, "Server ready"], 0, id="next-is-zero-ahead"),
    pytest.param([IN_LINE.format(3), IN_LINE.format(104)], 104, id="numbers-not-text-order"),
    pytest.param([], None, id="no-events"),
])
def test_place_in_line_is_read_from_the_progress_messages(messages: list[str], expected: int | None) -> None:
    assert place_in_line([{"progress": 5, "message": m} for m in messages]) == expected


TOO_MANY = "Too many users trying to log in right now. Try again in 12 seconds."


def crowd_met() -> Rehearsal:
    """Four attendees: one in after two 'Too many users' pages and a proxy 503, one refused, one in
    after waiting in line, one who gave up."""
    plan = CrowdPlan(hub_url="http://127.0.0.1:1", launch_url="http://127.0.0.1:1/x", participants=4, cap=3)
    pages = [ErrorPage(429, "/hub/spawn/a", TOO_MANY, 1.0), ErrorPage(429, "/hub/spawn/a", TOO_MANY, 4.0),
             ErrorPage(503, "/user/a/git-pull", "Service Unavailable", 9.0)]
    return Rehearsal(plan, [
        AttendeeResult("a", Outcome.IN, time_to_notebook=12.0, error_pages=pages, http_429=2, retries=3),
        AttendeeResult("b", Outcome.REFUSED, time_to_full_page=2.5),
        AttendeeResult("c", Outcome.IN, time_to_notebook=20.0, place_in_line=7),
        AttendeeResult("d", Outcome.GAVE_UP, error_pages=[ErrorPage(429, "/hub/spawn/d", "waited 60 s in the spawn line",
                                                                    60.0)] * (MAX_RETRIES + 1),
                       http_429=MAX_RETRIES + 1, retries=MAX_RETRIES),
    ], footprint={"cpu_seconds": {"hub": 4.0, "proxy": 1.0, "servers": 10.0, "identity": 1.0},
                  "cpu_seconds_total": 16.0, "cpu_seconds_per_attendee": 5.33,
                  "cpu_seconds_per_attendee_by_part": {"hub": 1.333, "proxy": 0.333, "servers": 3.333, "identity": 0.333},
                  "rss_mib_peak": {"hub": 100, "proxy": 50, "servers": 300}, "server_rss_mib_per_attendee": 100})


def test_summary_counts_what_the_attendees_met() -> None:
    s = crowd_met().summary()
    assert (s["error_pages"], s["error_pages_too_many_users"], s["error_pages_by_status"]) == (
        3 + MAX_RETRIES + 1, 2, {"429": 2 + MAX_RETRIES + 1, "503": 1})
    assert (s["attendees_meeting_error_pages"], s["error_pages_max_per_attendee"]) == (2, MAX_RETRIES + 1)
    assert (s["retries"], s["http_429"]) == (3 + MAX_RETRIES, 2 + MAX_RETRIES + 1)
    assert s["time_to_full_page_s"] == {"p50": 2.5, "p95": 2.5, "max": 2.5, "n": 1}
    assert s["place_in_line"] == {"waited": 1, "max": 7, "p50": 7, "p95": 7}


def test_report_shows_what_the_attendees_met(tmp_path: Path) -> None:
    from rich.console import Console

    rehearsal = crowd_met()
    console = Console(width=300, record=True)
    console.print(summary_table(rehearsal))
    rows = {cells[1].strip(): cells[2].strip() for line in console.export_text().splitlines()
            if len(cells := line.split("│")) == 4}
    assert rows["error pages met"] == (f"{3 + MAX_RETRIES + 1} (HTTP 429: {MAX_RETRIES + 3}, HTTP 503: 1; 2 of "
                                       f"JupyterHub's 'Too many users' pages), met by 2 attendees, at most "
                                       f"{MAX_RETRIES + 1} by one")
    assert rows["retries (reloads after an error page)"] == str(3 + MAX_RETRIES)
    assert rows["refused: time to the full page"] == "p50 2.5 s · p95 2.5 s · max 2.5 s (of the 1 refused)"
    assert rows["place in line"] == "1 attendees waited in line; the largest place 7 ahead (p50 7, p95 7)"
    assert rows["CPU-s per attendee by part"] == "hub 1.33 · proxy 0.33 · identity provider 0.33 · servers 3.33"
    assert json.loads(json.dumps(rehearsal.to_json()))["attendees"][0]["error_pages"][0] == {
        "status": 429, "path": "/hub/spawn/a", "message": TOO_MANY, "at_s": 1.0}
    assert plot_rehearsal(rehearsal, tmp_path / "plot.png", title="t").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


NOW = "2027-02-15T15:00:00+00:00"


@pytest.mark.parametrize(("users", "expected"), [
    pytest.param([], dict(registered=0, organisers=0, active_24h=0, servers_running=0, total_ever=0), id="empty-hub"),
    pytest.param([{"name": "organiser", "admin": True, "last_activity": "2027-02-15T14:00:00Z", "servers": {}}],
                 dict(registered=0, organisers=1, active_24h=1, servers_running=0, total_ever=1),
                 id="organisers-hold-no-place"),
    pytest.param([{"name": "a", "admin": False, "last_activity": "2027-02-14T15:00:01Z",
                   "servers": {"": {"ready": True, "pending": None}}},
                  {"name": "b", "admin": False, "last_activity": "2027-02-14T14:59:59Z", "servers": {}},
                  {"name": "c", "admin": False, "last_activity": None,
                   "servers": {"": {"ready": False, "pending": "spawn"}}}],
                 dict(registered=3, organisers=0, active_24h=1, servers_running=1, servers_starting=1, total_ever=3),
                 id="active-window-is-24-hours-starting-is-not-running"),
])
def test_attendance_counts(users: list[dict], expected: dict[str, int]) -> None:
    import datetime as dt

    attendance = attendance_from_users(users, hub_url="http://127.0.0.1:1", cap=3,
                                       now=dt.datetime.fromisoformat(NOW))
    assert {key: getattr(attendance, key) for key in expected} == expected


def test_prewarm_service_joins_the_organisers_service_and_is_idempotent() -> None:
    c = Config()
    apply_organiser_token(c, "organiser-token")
    organisers = ([s["name"] for s in c.JupyterHub.services], [r["name"] for r in c.JupyterHub.load_roles])
    apply_prewarm_service(c, "prewarm-token")
    apply_prewarm_service(c, "prewarm-token")
    assert [s["name"] for s in c.JupyterHub.services] == [*organisers[0], PREWARM_SERVICE]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert list(roles) == [*organisers[1], PREWARM_SERVICE]
    assert roles[PREWARM_SERVICE]["scopes"] == list(PREWARM_SCOPES)
    assert not any(scope.startswith("admin") for scope in PREWARM_SCOPES)


@pytest.fixture
def workshop_root(tmp_path: Path) -> Path:
    """A throw-away workshop that can run the local hub: the repository's config and proxy."""
    return runnable_workshop(tmp_path / "workshop")


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["rehearse", "--facility", "coffea-casa-cms", "--participants", "2"], "not-a-local-facility",
                 id="remote-facility-without-a-local-forward"),
    pytest.param(["rehearse", "--facility", "local", "--participants", "2", "--hub-url", "https://coffea.casa"],
                 "not-loopback", id="hub-off-this-machine"),
    pytest.param(["rehearse", "--facility", "nowhere", "--participants", "2"], "unknown-facility",
                 id="unknown-facility"),
    pytest.param(["stats", "--facility", "coffea-casa-cms"], "not-loopback", id="stats-of-a-remote-hub"),
    pytest.param(["prewarm", "--facility", "local", "--registered", "--hub-url", "http://10.0.0.1:8000"],
                 "not-loopback", id="prewarm-off-this-machine"),
])
def test_traffic_stays_on_this_machine(workshop_root: Path, args: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(workshop_root), *args]) == 2
    assert f"[{message}]" in capsys.readouterr().err


# --- against the real local stack ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RehearsalHub]:
    """The local hub with the prewarm service, cap 3."""
    hub = RehearsalHub(root=REPO_ROOT, state_dir=tmp_path_factory.mktemp("rehearsal-hub"), participants=3,
                         contact=TEST_CONTACT)
    hub.start()
    yield hub
    hub.stop()


@pytest.mark.hub
def test_crowd_beyond_the_cap_gets_exactly_the_cap_in(workshop_root: Path, materials_repo: MaterialsRepo,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`casabook rehearse` starts its own hub with --cap 3; 5 attendees click within 2 s."""
    output = tmp_path / "out"
    code = main(["--root", str(workshop_root), "rehearse", "--facility", "local", "--participants", "5",
                 "--cap", "3", "--ramp", "2", "--run-first-cell", "--repo", materials_repo.path.as_uri(),
                 "--branch", "main", "--notebook", "nb/intro.ipynb", "--output", str(output), "--format", "json"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads((output / "rehearsal.json").read_text())
    summary = result["summary"]
    assert (summary["admitted"], summary["refused"], summary["in"], summary["spawn_failures"]) == (3, 2, 3, 0)
    assert result["hub_view"] == {"participants": 3, "admitted": 3, "waitlist": 2}
    refused = [a for a in result["attendees"] if a["outcome"] == Outcome.REFUSED]
    assert all("This workshop is full (3 places)" in a["detail"] for a in refused)
    assert all(a["time_to_full_page"] is not None for a in refused)
    assert summary["time_to_full_page_s"]["n"] == 2
    admitted = [a for a in result["attendees"] if a["outcome"] == Outcome.IN]
    assert all(a["spawned"] and a["pull_s"] is not None and a["first_cell_s"] is not None for a in admitted)
    # Three spawns under the facility's concurrent_spawns (20): no error page, no reload, no line;
    # and the workshop-full page is the answer the refused expect, not an error page.
    assert (summary["error_pages"], summary["retries"], summary["place_in_line"]["waited"]) == (0, 0, 0)
    assert all(a["error_pages"] == [] for a in result["attendees"])
    assert result["footprint"]["cpu_seconds"]["servers"] > 0
    assert result["footprint"]["cpu_seconds_per_attendee_by_part"]["servers"] > 0
    assert result["footprint"]["rss_mib_peak"]["servers"] > 0
    assert (output / "time-to-notebook.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --format json prints the figures the table shows: the same as the file's.
    figures = json.loads(printed)
    assert figures["summary"] == summary and figures["results"] == str(output / "rehearsal.json")


# The hub's access log: "429 GET /hub/spawn/attendee-002?next=... (attendee-002@127.0.0.1) 2.10ms".
HUB_ERROR_LOG = re.compile(r"\] ([45]\d\d) (?:GET|POST) (/hub/[^?\s]*)\S* \((attendee-\d+)@")
# casabook.hub.line's log, as each attendee's turn comes (also for one who never waited).
TURN_IN_LINE = re.compile(r"(attendee-\d+)'s turn in the spawn line")


@pytest.mark.hub
def test_error_pages_counted_are_the_ones_the_hub_answered(workshop_root: Path, materials_repo: MaterialsRepo,
                                                           tmp_path: Path) -> None:
    """5 attendees at once on a facility that starts 1 server at a time. A hub that answers past
    concurrent_spawns with JupyterHub's 429 page must show in the count, page for page, as its log
    has them; a hub with a spawn line answers none, and the places shown are the line's."""
    edit_yaml(workshop_root / "hub-config" / "local.yml", lambda data: data["caps"].update(concurrent_spawns=1))
    hub = RehearsalHub(root=workshop_root, state_dir=tmp_path / "hub", participants=5, contact=TEST_CONTACT)
    hub.start()
    try:
        plan = CrowdPlan(hub_url=hub.hub_url, launch_url=materials_repo.launch_url(hub.hub_url, "nb/intro.ipynb"),
                         participants=5, ramp_s=0, cap=5, oidc_url=hub.oidc_url, api_token=hub.api_token,
                         max_retry_wait_s=2, hub_pid=hub.hub_process.pid if hub.hub_process else None,
                         idp_pid=hub.idp_pid)
        rehearsal = asyncio.run(rehearse_crowd(plan))
        log = hub.log_path.read_text(errors="replace")
    finally:
        hub.stop()
    attendees = rehearsal.attendees
    assert all(a.outcome in (Outcome.IN, Outcome.GAVE_UP) for a in attendees), [(a.name, a.detail) for a in attendees]
    answered = sorted((int(status), path, name) for status, path, name in HUB_ERROR_LOG.findall(log))
    met = sorted((page.status, page.path, a.name) for a in attendees for page in a.error_pages)
    assert met == answered
    s = rehearsal.summary()
    assert s["error_pages"] == len(answered) == s["http_429"]
    assert s["error_pages_too_many_users"] == sum(page.too_many_users for a in attendees for page in a.error_pages)
    # Each 'try again' page was reloaded, but the last of one who gave up.
    assert s["retries"] == s["error_pages"] - sum(a.outcome == Outcome.GAVE_UP for a in attendees)
    in_line = set(TURN_IN_LINE.findall(log))
    if not in_line:
        # JupyterHub's own limit (casabook's main until the spawn line): the crowd met its pages.
        assert s["error_pages_too_many_users"] > 0 and s["retries"] > 0
    # A place is shown only to one who stood in the hub's line, behind at most the others but the
    # one starting.
    placed = {a.name: a.place_in_line for a in attendees if a.place_in_line is not None}
    assert set(placed) <= in_line
    assert all(0 <= place <= plan.participants - 2 for place in placed.values())


@pytest.mark.hub
def test_prewarmed_server_is_not_spawned_again(stack: RehearsalHub, materials_repo: MaterialsRepo) -> None:
    name = "attendee-001"
    stack.login(name)  # registered: holds a place, no server yet
    assert stack.api("GET", f"users/{name}").json()["servers"] == {}

    report = asyncio.run(prewarm(stack.hub_url, stack.prewarm_token, materials_repo.source, users=[name]))
    assert [(u.name, u.outcome) for u in report.users] == [(name, "started")], report.to_json()
    server = stack.api("GET", f"users/{name}").json()["servers"][""]
    assert server["ready"]
    assert (stack.state_dir / "homes" / name / "materials" / "nb" / "intro.ipynb").is_file()

    plan = CrowdPlan(hub_url=stack.hub_url, launch_url=materials_repo.launch_url(stack.hub_url, "nb/intro.ipynb"),
                     participants=1, ramp_s=0, cap=3, oidc_url=stack.oidc_url, api_token=stack.api_token,
                     hub_pid=stack.hub_process.pid if stack.hub_process else None)
    [attendee] = asyncio.run(rehearse_crowd(plan)).attendees
    assert attendee.outcome == Outcome.IN, attendee.detail
    assert (attendee.spawned, attendee.spawn_s) == (False, None)
    # The same server, not a new one: its start time is unchanged.
    assert stack.api("GET", f"users/{name}").json()["servers"][""]["started"] == server["started"]


@pytest.mark.hub
def test_prewarm_token_holds_only_its_scopes(stack: RehearsalHub) -> None:
    who = stack.api("GET", "user", token=stack.prewarm_token).json()
    assert (who["kind"], who["name"]) == ("service", PREWARM_SERVICE)
    assert stack.api("POST", "users/someone-new", token=stack.prewarm_token).status_code == 403
    assert stack.api("PATCH", "users/attendee-001", token=stack.prewarm_token, json={"admin": True}).status_code == 403


@pytest.mark.hub
def test_prewarm_refuses_participants_who_never_logged_in(stack: RehearsalHub, materials_repo: MaterialsRepo,
                                                          workshop_root: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASABOOK_PREWARM_TOKEN", stack.prewarm_token)
    code = main(["--root", str(workshop_root), "prewarm", "--facility", "local", "--hub-url", stack.hub_url,
                 "--users", "never-seen", "--repo", materials_repo.path.as_uri(), "--branch", "main"])
    assert code == 2
    assert "never-seen never logged in" in capsys.readouterr().err
    assert stack.api("GET", "users/never-seen").status_code == 404


@pytest.mark.hub
def test_prewarm_command_with_the_organisers_token(stack: RehearsalHub, materials_repo: MaterialsRepo,
                                                   workshop_root: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the service's token, prewarm mints a one-hour token with the same narrow scopes."""
    stack.login("attendee-002")
    monkeypatch.delenv("CASABOOK_PREWARM_TOKEN", raising=False)
    monkeypatch.setenv("CASABOOK_API_TOKEN", stack.api_token)
    code = main(["--root", str(workshop_root), "prewarm", "--facility", "local", "--hub-url", stack.hub_url,
                 "--registered", "--repo", materials_repo.path.as_uri(), "--branch", "main", "--format", "json"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(printed)
    outcomes = {u["name"]: u["outcome"] for u in report["users"]}
    assert outcomes["attendee-002"] == "started"
    assert "organiser" not in outcomes  # organisers hold no place and get no prewarm
    assert "limited to list:users, read:users, servers, access:servers" in report["token"]


@pytest.mark.hub
def test_stats_match_the_hubs_own_api(stack: RehearsalHub, workshop_root: Path,
                                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stack.login("attendee-003")  # registered, no server
    users = stack.api("GET", "users").json()
    running = stack.api("GET", "users", params={"state": "ready"}).json()
    attendance = asyncio.run(collect(stack.hub_url, stack.api_token, cap=3))
    assert attendance.registered == len([u for u in users if is_participant(u)]) == len(stack.cap_status()["admitted"])
    assert attendance.total_ever == len(users)
    assert attendance.servers_running == len(running)
    assert attendance.cap == 3
    # JupyterHub's own gauges agree.
    metrics = httpx.get(f"{stack.hub_url}/hub/metrics", headers={"Authorization": f"token {stack.api_token}"}).text
    gauge = {name: float(value) for name, value in re.findall(r"^(jupyterhub_\w+)\s+([\d.e+]+)$", metrics, re.M)}
    assert attendance.servers_running == gauge["jupyterhub_running_servers"]
    # JupyterHub sets this gauge from its database before it assigns the configured roles: a user a
    # role creates at start (the validation user, casabook.hub.validator) counts from the next start.
    created_by_roles = sum(USER_ROLE in (u.get("roles") or []) for u in users)
    assert attendance.total_ever - created_by_roles == gauge["jupyterhub_total_users"]

    monkeypatch.setenv("CASABOOK_API_TOKEN", stack.api_token)
    assert main(["--root", str(workshop_root), "stats", "--facility", "local", "--hub-url", stack.hub_url,
                 "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("registered", "servers_running", "total_ever", "cap", "waitlist")} == {
        "registered": attendance.registered, "servers_running": attendance.servers_running,
        "total_ever": attendance.total_ever, "cap": 3, "waitlist": 0}
    assert main(["--root", str(workshop_root), "stats", "--facility", "local", "--hub-url", stack.hub_url]) == 0
    assert f"{attendance.registered} of 3" in capsys.readouterr().out


@pytest.mark.hub
def test_token_login_reaches_the_notebook_where_no_login_page_can_be_automated(
        stack: RehearsalHub, materials_repo: MaterialsRepo) -> None:
    plan = CrowdPlan(hub_url=stack.hub_url, launch_url=materials_repo.launch_url(stack.hub_url, "nb/intro.ipynb"),
                     participants=1, ramp_s=0, login="token", api_token=stack.api_token, run_first_cell=True,
                     name_prefix="by-token")
    [attendee] = asyncio.run(rehearse_crowd(plan)).attendees
    assert (attendee.outcome, attendee.spawned, attendee.login_s) == (Outcome.IN, True, None), attendee.detail
    assert attendee.first_cell_s is not None
    assert stack.api("GET", "users/by-token-001").json()["servers"][""]["ready"]
    # Users the organisers create through the API take a place without meeting the cap (as the
    # admin page's "Add users" does): such a rehearsal tests the spawn path, not the cap.
