"""Registration: the organisers' list read in Indico's forms, and the cap that gives places to the
people on it, decided case by case with no hub running (the real hub: test_registration_hub.py).

Every address here is made at run time under example.org: no personal data in the repository.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from casabook.errors import CasabookError
from casabook.hub.config import configure, load_hub_facility
from casabook.hub.registrants import read_mapping, read_registrants
from casabook.model import Registration
from casabook.hub.registration import read, row_problems

REPO = Path(__file__).resolve().parents[1]
CONTACT = "Org <org@casabook.invalid>"
SECRET = {"CASABOOK_OIDC_CLIENT_SECRET": "s"}


def address(name: str) -> str:
    return f"{name}@example.org"


def indico_json(names: list[str], *, wrapped: bool = True) -> str:
    """Indico's registrants export, as /export/event/<id>/registrants.json answers (wrapped) or the
    REST API /api/events/<id>/registrants does."""
    registrants = [{"registrant_id": str(100 + i), "checked_in": False, "full_name": name.title(),
                    "personal_data": {"email": address(name) if name else "", "firstName": name.title(),
                                      "surname": "Example", "affiliation": "Example University"}}
                   for i, name in enumerate(names)]
    body = {"registrants": registrants}
    if wrapped:
        body = {"count": 1, "_type": "HTTPAPIResult", "complete": True, "ts": 1, "results": body}
    return json.dumps(body, indent=1)


def indico_csv(names: list[str], states: list[str] | None = None) -> str:
    """Indico's CSV export of the registrants page (its default personal-data field titles)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["ID", "Name", "First Name", "Last Name", "Email Address", "Affiliation", "Registration state"])
    for i, name in enumerate(names):
        writer.writerow([i + 1, f"{name.title()} Example", name.title(), "Example", address(name) if name else "",
                         "Example University", (states or ["Completed"] * len(names))[i]])
    return out.getvalue()


def plain(names: list[str]) -> str:
    return "# registrants\n" + "".join(f"{address(name)}\n" for name in names)


# id, the file's text, its form, registrants read, (row, words in the problem)
READ_CASES = [
    ("indico-http-export-json", indico_json(["ann", "ben"]), "indico-json", ["ann", "ben"], []),
    ("indico-rest-api-json", indico_json(["ann", "ben"], wrapped=False), "indico-json", ["ann", "ben"], []),
    ("indico-json-duplicate-reported", indico_json(["ann", "ben", "ann"]), "indico-json", ["ann", "ben"],
     [(3, "listed again (first at row 1)")]),
    ("indico-json-without-email-reported", indico_json(["ann", ""]), "indico-json", ["ann"], [(2, "registrant 101 has no 'email'")]),
    ("indico-csv", indico_csv(["ann", "ben", "cat"]), "indico-csv", ["ann", "ben", "cat"], []),
    ("indico-csv-withdrawn-reported", indico_csv(["ann", "ben"], ["Completed", "Withdrawn"]), "indico-csv", ["ann"],
     [(3, "'Withdrawn': holds no place")]),
    ("indico-csv-short-row-reported", indico_csv(["ann"]) + "2,Ben\n", "indico-csv", ["ann"], [(3, "unreadable")]),
    ("indico-csv-no-email-reported", indico_csv(["ann", ""]), "indico-csv", ["ann"], [(3, "row has no 'email'")]),
    ("csv-saved-again-with-semicolons", indico_csv(["ann", "ben"]).replace(",", ";"), "indico-csv", ["ann", "ben"], []),
    ("plain-list-with-comments", plain(["ann", "ben"]) + "\n# late registrations\n" + address("cat") + "  # paid\n",
     "plain", ["ann", "ben", "cat"], []),
    ("plain-list-case-insensitive-duplicate", plain(["ann"]) + "ANN@Example.org\n", "plain", ["ann"],
     [(3, "listed again")]),
    ("plain-list-not-an-address", plain(["ann"]) + "ben at example.org\n", "plain", ["ann"], [(3, "one address a line")]),
    ("plain-list-bad-address", plain(["ann"]) + "ben.example.org\n", "plain", ["ann"], [(3, "not an e-mail address")]),
]


@pytest.mark.parametrize(("text", "form", "names", "problems"), [c[1:] for c in READ_CASES], ids=[c[0] for c in READ_CASES])
def test_registration_list_forms(tmp_path, text, form, names, problems):
    path = tmp_path / "registrants"
    path.write_text(text)
    found = read_registrants(str(path))
    assert found.form == form
    assert found.identities == {address(name) for name in names}
    assert len(found.problems) == len(problems), found.problems
    for (row, message), (expected_row, words) in zip(found.problems, problems, strict=True):
        assert row == expected_row and words in message


@pytest.mark.parametrize(("text", "words"), [
    ('{"results": {"events": []}}', "a 'registrants' list"),
    ("ID,Name,Affiliation\n1,Ann,Example\n", "no e-mail column"),
    ('{"registrants": [', "Expecting value"),
], ids=["json-without-registrants", "csv-without-email-column", "json-cut-short"])
def test_a_list_that_cannot_be_read_at_all_says_why(tmp_path, text, words):
    path = tmp_path / "registrants"
    path.write_text(text)
    with pytest.raises(ValueError, match=words):
        read_registrants(str(path))


def test_a_mapping_turns_addresses_into_user_names_and_reports_the_unmapped(tmp_path):
    (tmp_path / "list").write_text(plain(["ann", "ben"]))
    (tmp_path / "map").write_text("address,username\n" + f"{address('ann')},ann-iam\nbroken line\n")
    mapping, problems = read_mapping(str(tmp_path / "map"))
    assert mapping == {address("ann"): "ann-iam"} and problems == [(3, "expected 'address,username'")]
    found = read_registrants(str(tmp_path / "list"), mapping=mapping)
    assert found.identities == {"ann-iam"}
    assert found.problems == [(3, f"{address('ben')!r} is not in the mapping file: no hub user name for them")]


# --- where the list is: outside the repository, named by an environment variable -----------------


def registered_facility(walk_ins: str = "none", **registration: str):
    facility = load_hub_facility(REPO, "local")
    return facility.model_copy(update={"registration": Registration(
        file_env="CASABOOK_REGISTRANTS", walk_ins=walk_ins, **registration)})


def test_the_list_inside_the_repository_is_refused():
    with pytest.raises(CasabookError) as error:
        read(registered_facility(), REPO, {"CASABOOK_REGISTRANTS": str(REPO / "registrants.csv")})
    assert error.value.code == "registration-in-repository"
    assert error.value.file == "hub-config/local.yml" and error.value.key == "registration.file_env"


@pytest.mark.parametrize(("environ", "code"), [({}, "registration-unset"),
                                               ({"CASABOOK_REGISTRANTS": "/nonexistent/list.csv"}, "registration-unreadable")],
                         ids=["variable-unset", "file-missing"])
def test_a_missing_list_stops_the_hub_config(tmp_path, environ, code):
    with pytest.raises(CasabookError) as error:
        configure(Config(), registered_facility(), REPO, contact=CONTACT, environ={**SECRET, **environ},
                  state_dir=tmp_path, issuer="http://127.0.0.1:9400")
    assert error.value.code == code
    assert "CASABOOK_REGISTRANTS" in error.value.render() and error.value.key == "registration.file_env"


def test_row_problems_name_the_file_and_the_row(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(indico_json(["ann", "ann"]))
    found = read(registered_facility(), REPO, {"CASABOOK_REGISTRANTS": str(path)})
    [problem] = row_problems(found.facility)
    assert problem.render().startswith(f"{path}:2: ") and problem.code == "registrant-row"


# --- the cap with registration -------------------------------------------------------------------


class Registered:
    """A capped authenticator configured as the hub would be, on a list in tmp_path."""

    def __init__(self, tmp_path: Path, names: list[str], cap: int, walk_ins: str = "none") -> None:
        self.list = tmp_path / "private" / "registrants.txt"
        self.list.parent.mkdir(exist_ok=True)
        self.tmp_path = tmp_path
        self.cap, self.walk_ins = cap, walk_ins
        self.write(names)
        self.auth = self.restart()

    def write(self, names: list[str]) -> None:
        self.list.write_text(plain(names))
        # A later edit within the file system's time resolution must still look changed.
        stamp = time.time_ns() + (getattr(self, "_edits", 0) + 1) * 10_000_000
        self._edits = getattr(self, "_edits", 0) + 1
        os.utime(self.list, ns=(stamp, stamp))

    def restart(self):
        c = configure(Config(), registered_facility(self.walk_ins), REPO, contact=CONTACT,
                      environ={**SECRET, "CASABOOK_REGISTRANTS": str(self.list)}, state_dir=self.tmp_path / "state",
                      issuer="http://127.0.0.1:9400", participants=self.cap)
        named = c.JupyterHub.authenticator_class
        self.auth = (import_item(named) if isinstance(named, str) else named)(config=c)
        return self.auth

    def login(self, name: str, *, admin: bool | None = None) -> str:
        """'admitted', or 'refused' (the 403 page)."""
        model = {"name": name, "admin": admin,
                 "auth_state": {"oauth_user": {"preferred_username": name, "email": address(name)}}}
        try:
            assert asyncio.run(self.auth.check_allowed(name, model)) is True
            return "admitted"
        except web.HTTPError as error:
            assert error.status_code == 403
            return "refused"


# id, registrants, cap, walk_ins, logins before (in order), who logs in, expected, waiting list after
CAP_CASES = [
    ("registrant-admitted", ["ann", "ben"], 3, "none", [], "ann", "admitted", []),
    ("walk-in-refused-when-walk-ins-none", ["ann", "ben"], 3, "none", [], "wes", "refused", ["wes"]),
    ("walk-in-admitted-while-places-are-left", ["ann", "ben"], 3, "up-to-cap", [], "wes", "admitted", []),
    ("walk-in-refused-once-registrants-places-are-reserved", ["ann", "ben"], 3, "up-to-cap", ["wes"], "wim",
     "refused", ["wim"]),
    ("registrants-places-are-reserved-before-they-come", ["ann", "ben", "cat"], 3, "up-to-cap", [], "wes",
     "refused", ["wes"]),
    ("registrant-admitted-after-walk-ins-filled-the-rest", ["ann", "ben"], 3, "up-to-cap", ["wes", "wim"], "ben",
     "admitted", ["wim"]),
    ("registrant-always-admitted-even-beyond-the-cap", ["ann", "ben", "cat"], 2, "none", ["ann", "ben"], "cat",
     "admitted", []),
    ("organiser-admitted-and-not-counted", ["ann"], 1, "none", ["ann"], "organiser", "admitted", []),
    ("returning-registrant-admitted", ["ann"], 1, "none", ["ann"], "ann", "admitted", []),
    ("returning-walk-in-admitted", ["ann"], 2, "up-to-cap", ["wes"], "wes", "admitted", []),
]


@pytest.mark.parametrize(("names", "cap", "walk_ins", "before", "who", "expected", "waiting"),
                         [c[1:] for c in CAP_CASES], ids=[c[0] for c in CAP_CASES])
def test_cap_with_registration(tmp_path, names, cap, walk_ins, before, who, expected, waiting):
    hub = Registered(tmp_path, names, cap, walk_ins)
    for name in before:
        hub.login(name)
    assert hub.login(who, admin=True if who == "organiser" else None) == expected
    assert [entry["name"] for entry in hub.auth.waitlist] == waiting
    walk_ins_in = [n for n in hub.auth.admitted if n not in names]
    assert len(walk_ins_in) <= max(0, cap - len(names))


def test_refused_page_says_why_and_whom_to_write_to(tmp_path):
    hub = Registered(tmp_path, ["ann"], 5)
    with pytest.raises(web.HTTPError) as error:
        asyncio.run(hub.auth.check_allowed("wes", {"name": "wes", "auth_state": {"oauth_user": {"email": "WES@example.org"}}}))
    message = error.value.jupyterhub_message
    assert error.value.reason == "Not registered"
    assert "go to the people who registered" in message and "wes@example.org is not on its registration list" in message
    assert "waiting list" in message and CONTACT in message


def test_list_updated_mid_session_admits_the_new_registrant_without_a_restart(tmp_path):
    hub = Registered(tmp_path, ["ann"], 3)
    assert hub.login("ben") == "refused"
    hub.write(["ann", "ben"])
    assert hub.login("ben") == "admitted"
    assert hub.auth.waitlist == []
    assert hub.auth.registration_view()["registered"] == 2


def test_organisers_admit_from_the_waiting_list(tmp_path):
    hub = Registered(tmp_path, ["ann"], 2, "up-to-cap")
    hub.auth.invite("wes")
    assert hub.login("wim") == "refused", "wes's place is reserved, as a registrant's"
    assert hub.login("wes") == "admitted"
    assert hub.restart().registration_view()["registered"] == 2


def test_registrants_and_walk_ins_are_told_apart_after_a_restart(tmp_path):
    hub = Registered(tmp_path, ["ann", "ben"], 3, "up-to-cap")
    assert [hub.login(n) for n in ("ann", "wes")] == ["admitted", "admitted"]
    kept = (tmp_path / "state" / "admissions.jsonl").read_text()
    assert "ann" in kept and "example.org" not in kept, "the hub's state keeps digests, not addresses"
    hub.restart()
    # JupyterHub calls add_user for every user in its database when it starts.
    for name in ("ann", "wes"):
        hub.auth.add_user(SimpleNamespace(name=name, admin=False))
    view = hub.auth.registration_view()
    assert (view["registered_connected"], view["walk_ins"], view["places_for_walk_ins"]) == (1, 1, 0)
    assert hub.login("wim") == "refused" and hub.login("ben") == "admitted" and hub.login("wes") == "admitted"


def test_an_unreadable_list_mid_session_keeps_the_list_read_before(tmp_path):
    hub = Registered(tmp_path, ["ann", "ben"], 3)
    assert hub.login("ann") == "admitted"
    hub.list.write_text('{"registrants": [')  # half-saved
    os.utime(hub.list, ns=(time.time_ns() + 50_000_000,) * 2)
    assert hub.login("ben") == "admitted"


def test_registrants_and_walk_ins_at_once_never_overshoot(tmp_path):
    hub = Registered(tmp_path, [f"reg{i}" for i in range(4)], 6, "up-to-cap")

    async def crowd():
        names = [f"reg{i}" for i in range(4)] + [f"walk{i}" for i in range(8)]
        models = [{"name": n, "auth_state": {"oauth_user": {"email": address(n)}}} for n in names]

        async def one(name, model):
            try:
                return name, await hub.auth.check_allowed(name, model)
            except web.HTTPError:
                return name, False

        return dict(await asyncio.gather(*(one(n, m) for n, m in zip(names, models, strict=True))))

    outcome = asyncio.run(crowd())
    assert all(outcome[f"reg{i}"] for i in range(4))
    assert sum(outcome[f"walk{i}"] for i in range(8)) == 2


# --- casabook stats: figures from the hub's answers, no names ------------------------------------


def _session(title: str, day: str, start: str, minutes: int = 90):
    from casabook.model import Session

    return Session(title=title, date=day, start=start, timezone="Europe/Zurich", minutes=minutes)


def _at(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text).timestamp()


def test_stats_count_registered_connected_active_and_each_session(tmp_path):
    import datetime as dt

    from casabook.hub.stats import attendance_from_users, plot_connections

    users = [{"name": "organiser", "admin": True, "last_activity": "2027-02-16T08:10:00Z", "servers": {}},
             {"name": "ann", "admin": False, "last_activity": "2027-02-16T08:10:00Z",
              "servers": {"": {"ready": True}}},
             {"name": "ben", "admin": False, "last_activity": "2027-02-15T09:00:00Z", "servers": {}},
             {"name": "wes", "admin": False, "last_activity": "2027-02-15T08:40:00Z", "servers": {}}]
    logins = [{"name": "ann", "time": _at("2027-02-15T09:05:00+01:00")},
              {"name": "ben", "time": _at("2027-02-15T09:20:00+01:00")},
              {"name": "wes", "time": _at("2027-02-15T09:30:00+01:00")},
              {"name": "ann", "time": _at("2027-02-16T09:01:00+01:00")},
              {"name": "organiser", "time": _at("2027-02-16T09:00:00+01:00")}]
    view = {"participants": 6, "waitlist": [{"name": "zed", "time": 0}], "logins": logins,
            "registration": {"registered": 5, "registered_connected": 2, "walk_ins": 1}}
    sessions = [("cms", _session("Day 2", "2027-02-16", "9:00")), ("cms", _session("Day 1", "2027-02-15", "9:00"))]
    now = dt.datetime.fromisoformat("2027-02-16T08:15:00+00:00")
    a = attendance_from_users(users, hub_url="http://127.0.0.1:1", cap=6, now=now, waitlist=1, view=view,
                              sessions=sessions)
    assert a.headline == "5 registered, 2 connected, 1 active now (and 1 walk-in), 1 refused"
    assert (a.connected, a.servers_running, a.organisers) == (3, 1, 1)
    assert [(s.session, s.connected, s.first_time) for s in a.sessions] == [("Day 1", 3, 3), ("Day 2", 1, 0)]
    names = {"ann", "ben", "wes", "zed", "organiser"}
    assert not any(f'"{name}"' in json.dumps(a.to_json()) for name in names), "aggregates only"
    png = plot_connections(users[1:], logins, sessions, tmp_path / "connections.png", title="Connections")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stats_without_a_registration_list_count_the_places_taken():
    import datetime as dt

    from casabook.hub.stats import attendance_from_users

    users = [{"name": n, "admin": False, "last_activity": None, "servers": {}} for n in ("a", "b")]
    a = attendance_from_users(users, hub_url="http://127.0.0.1:1", cap=3, now=dt.datetime.now(dt.timezone.utc),
                              view={"participants": 3, "waitlist": [], "registration": None, "logins": []})
    assert a.headline == "2 registered, 2 connected, 0 active now" and not a.registration_list


# --- prewarm --registered: whose servers can start before they log in --------------------------


# id, username_claim, mapping, on the hub, connected registrants (None: not readable), names, to create, must log in
PREWARM_CASES = [
    ("user-name-is-the-email-all-prewarmed", "email", False, ["ann"], ["ann"], ["ann", "ben", "cat"], ["ben", "cat"], 0),
    ("mapping-gives-user-names", "preferred_username", True, [], None, ["ann", "ben", "cat"], ["ann", "ben", "cat"], 0),
    ("user-name-unknown-until-login", "preferred_username", False, ["ann-iam", "wes"], ["ann-iam"], ["ann-iam"], [], 2),
    ("cap-page-unreadable-every-participant", "preferred_username", False, ["ann-iam", "wes"], None,
     ["ann-iam", "wes"], [], 1),
]


@pytest.mark.parametrize(("claim", "mapping", "on_hub", "connected", "names", "to_create", "must_log_in"),
                         [c[1:] for c in PREWARM_CASES], ids=[c[0] for c in PREWARM_CASES])
def test_prewarm_registered_plan(claim, mapping, on_hub, connected, names, to_create, must_log_in):
    from casabook.hub.prewarm import plan_registered

    facility = registered_facility(**({"mapping_env": "CASABOOK_MAPPING"} if mapping else {}))
    facility = facility.model_copy(update={"authenticator": facility.authenticator.model_copy(
        update={"username_claim": claim})})
    users = [{"name": n, "admin": False} for n in on_hub] + [{"name": "organiser", "admin": True}]
    plan = plan_registered(facility, {"ann", "ben", "cat"}, users, connected)
    assert (plan.names, plan.to_create, plan.must_log_in) == (names, to_create, must_log_in)
    if must_log_in:
        assert "'preferred_username'" in plan.reason and "first login" in plan.reason


# --- casabook check: the registration against the cap and the facility's capacity ---------------


def _check_workshop(tmp_path: Path, walk_ins: str, cap: int):
    from casabook.model import load_workshop
    from casabook.testing.workshops import edit_yaml, make_workshop

    root = make_workshop(tmp_path / "workshop", commit=False)

    def register(data: dict) -> None:
        data["registration"] = {"file_env": "CASABOOK_REGISTRANTS", "walk_ins": walk_ins}
        data["caps"]["participants"] = cap

    edit_yaml(root / "hub-config" / "coffea-opendata.yml", register)
    edit_yaml(root / "tracks" / "opendata.yml", lambda data: data.update(participant_cap=min(cap, 10)))
    return load_workshop(root)


# id, walk_ins, cap, registrants, expected status and words
CHECK_CASES = [
    ("places-left-for-walk-ins", "up-to-cap", 10, 4, "ok", "4 registered of 10 places: 6 left for walk-ins"),
    ("places-unused-without-walk-ins", "none", 10, 4, "ok", "4 registered of 10 places: 6 unused (walk_ins: none)"),
    ("more-registered-than-the-cap", "none", 3, 5, "error", "5 registered, above the cap of 3"),
]


@pytest.mark.parametrize(("walk_ins", "cap", "count", "status", "words"), [c[1:] for c in CHECK_CASES],
                         ids=[c[0] for c in CHECK_CASES])
def test_check_compares_the_registered_with_the_cap(tmp_path, walk_ins, cap, count, status, words):
    from casabook.check import check_registration

    workshop = _check_workshop(tmp_path, walk_ins, cap)
    (tmp_path / "list.txt").write_text(plain([f"p{i}" for i in range(count)]) + address("p0") + "\n")
    findings = check_registration(workshop, workshop.facilities["coffea-opendata"],
                                  {"CASABOOK_REGISTRANTS": str(tmp_path / "list.txt")})
    summary = [f for f in findings if f.subject == "coffea-opendata registration"]
    assert [(f.status, f.detail) for f in summary] == [(status, summary[0].detail)] and words in summary[0].detail
    [duplicate] = [f for f in findings if f.subject.endswith(f"list.txt:{count + 2}")]
    assert duplicate.status == "warning" and "listed again" in duplicate.detail


def test_check_without_the_list_says_which_variable_to_set(tmp_path):
    from casabook.check import check_registration

    workshop = _check_workshop(tmp_path, "none", 10)
    [finding] = check_registration(workshop, workshop.facilities["coffea-opendata"], {})
    assert finding.status == "warning" and "CASABOOK_REGISTRANTS is not set" in finding.detail


# --- the chart's hub: the list from a Kubernetes Secret, never in the values -----------------------


def test_helm_values_mount_the_list_from_a_secret_and_the_chart_loads_it(tmp_path, monkeypatch):
    import yaml

    from casabook.cli import main
    from casabook.testing.workshops import edit_yaml, make_workshop
    from test_helm_chart import load_as_the_chart_does

    root = make_workshop(tmp_path / "workshop", commit=False)
    edit_yaml(root / "hub-config" / "coffea-opendata.yml", lambda data: data.update(
        registration={"file_env": "CASABOOK_REGISTRANTS", "walk_ins": "up-to-cap"}))
    edit_yaml(root / "tracks" / "opendata.yml", lambda data: data.update(registration_env="OPENDATA_REGISTRANTS"))
    out = tmp_path / "values.yml"
    assert main(["--root", str(root), "hub", "render", "--facility", "coffea-opendata", "--output", str(out)]) == 0
    text = out.read_text()
    assert ("kubectl create secret generic casabook-coffea-opendata-registrants --from-file=registrants=<the list> "
            "--from-file=track-opendata=<track opendata's list>;") in text
    hub = yaml.safe_load(text)["hub"]
    assert hub["extraVolumes"] == [{"name": "casabook-registrants",
                                    "secret": {"secretName": "casabook-coffea-opendata-registrants"}}]
    assert hub["extraVolumeMounts"][0]["mountPath"] == "/srv/casabook-registration"
    monkeypatch.setenv("CILOGON_CLIENT_SECRET", "from-the-secret")
    c = load_as_the_chart_does(yaml.safe_load(text))
    auth = c.JupyterHub.authenticator_class(config=c)
    assert (auth.registrants_file, auth.walk_ins) == ("/srv/casabook-registration/registrants", "up-to-cap")
    assert auth.track_registrants_files == {"opendata": "/srv/casabook-registration/track-opendata"}
    assert auth.admissions_file == "/srv/jupyterhub/casabook-admissions.jsonl"


# --- tracks' own lists ------------------------------------------------------------------------------


def test_tracks_own_lists_admit_their_registrants_and_are_counted_per_track(tmp_path):
    import datetime as dt

    from casabook.check import check_registration
    from casabook.hub.stats import attendance_from_users
    from casabook.model import load_workshop

    workshop = load_workshop(REPO)
    facility = load_hub_facility(REPO, "local").model_copy(update={"registration": Registration(walk_ins="none")})
    tracks = [workshop.tracks[name].model_copy(update={"facility": "local", "registration_env": f"LIST_{name.upper()}"})
              for name in ("cms", "atlas")]
    environ = {**SECRET}
    for track, names in zip(tracks, (["ann", "ben"], ["cat"]), strict=True):
        path = tmp_path / f"{track.name}.txt"
        path.write_text(plain(names))
        environ[track.registration_env] = str(path)
    c = configure(Config(), facility, REPO, contact=CONTACT, environ=environ, state_dir=tmp_path / "state",
                  issuer="http://127.0.0.1:9400", participants=5, tracks=tracks)
    assert c.ParticipantCap.registrants_file == "" and sorted(c.ParticipantCap.track_registrants_files) == ["atlas", "cms"]
    auth = import_item(c.JupyterHub.authenticator_class)(config=c)
    for name, expected in (("ann", True), ("cat", True), ("wes", False)):
        model = {"name": name, "auth_state": {"oauth_user": {"email": address(name)}}}
        try:
            assert asyncio.run(auth.check_allowed(name, model)) is expected
        except web.HTTPError:
            assert not expected
    view = auth.registration_view()
    assert view["registered"] == 3 and view["tracks"] == {"cms": {"registered": 2, "connected": 1},
                                                          "atlas": {"registered": 1, "connected": 1}}
    users = [{"name": n, "admin": False, "last_activity": None, "servers": {}} for n in ("ann", "cat")]
    figures = attendance_from_users(users, hub_url="http://127.0.0.1:1", cap=5, now=dt.datetime.now(dt.timezone.utc),
                                    view={"registration": view, "logins": []})
    assert [(t.track, t.registered, t.connected) for t in figures.tracks] == [("atlas", 1, 1), ("cms", 2, 1)]

    on_local = type(workshop)(root=REPO, tracks={t.name: t for t in tracks}, facilities=workshop.facilities)
    findings = check_registration(on_local, facility, environ)
    assert {f.subject: f.status for f in findings if f.subject.startswith("track ")} == {"track cms": "ok",
                                                                                          "track atlas": "ok"}


def test_a_facility_with_registration_but_no_list_says_where_to_name_one(tmp_path):
    facility = load_hub_facility(REPO, "local").model_copy(update={"registration": Registration()})
    with pytest.raises(CasabookError) as error:
        read(facility, REPO, {})
    assert error.value.code == "registration-unset" and "registration_env in a track" in error.value.message


# id, the registration block, the mistake's key and words
MODEL_MISTAKES = [
    ("path-instead-of-a-variable", {"file_env": "/srv/org/registrants.csv"}, "registration.file_env",
     "expected the NAME of an environment variable"),
    ("unknown-walk-in-policy", {"file_env": "LIST", "walk_ins": "anyone"}, "registration.walk_ins", "'none' or 'up-to-cap'"),
    ("misspelt-key", {"file_env": "LIST", "walkins": "none"}, "registration.walkins", "unknown key"),
]


@pytest.mark.parametrize(("block", "key", "words"), [m[1:] for m in MODEL_MISTAKES], ids=[m[0] for m in MODEL_MISTAKES])
def test_registration_mistakes_name_the_file_line_and_key(tmp_path, block, key, words):
    from casabook.model import load_workshop
    from casabook.testing.workshops import edit_yaml, make_workshop

    root = make_workshop(tmp_path / "workshop", commit=False)
    edit_yaml(root / "hub-config" / "local.yml", lambda data: data.update(registration=block))
    with pytest.raises(CasabookError) as error:
        load_workshop(root)
    [mistake] = error.value.mistakes
    assert mistake.file == "hub-config/local.yml" and mistake.line and mistake.key == key
    assert words in mistake.message


def test_casabook_check_reports_the_places_left(tmp_path, capsys, monkeypatch):
    from casabook.cli import main

    workshop = _check_workshop(tmp_path, "up-to-cap", 10)
    (tmp_path / "list.txt").write_text(plain(["p1", "p2", "p3"]))
    monkeypatch.setenv("CASABOOK_REGISTRANTS", str(tmp_path / "list.txt"))
    main(["--root", str(workshop.root), "check", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)["findings"]
    [row] = [f for f in findings if f["check"] == "registration"]
    assert row == {"check": "registration", "subject": "coffea-opendata registration", "status": "ok",
                   "detail": "3 registered of 10 places: 7 left for walk-ins"}
    assert "p1" not in json.dumps(findings)
