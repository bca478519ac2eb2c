"""The validation user on the hub's side (its roles, the cap never counting it, the Helm values), and the
hub's column in the validation report. No hub started: `tests/test_validate_hub.py` runs the real one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from casabook.hub.caps import CappedGenericOAuthenticator
from casabook.hub.config import configure, load_hub_facility
from casabook.hub.prewarm import apply_prewarm_service
from casabook.hub.render import helm_values
from casabook.hub.validator import (
    VALIDATOR_SERVICE,
    VALIDATOR_USER,
    apply_validation_user,
    apply_validator_service,
    is_participant,
    validator_scopes,
)
from casabook.model import load_workshop
from casabook.testing.workshops import REPO
from casabook.validation.hubreport import add_column
from casabook.validation.report import REPORT_JSON, write_report
from casabook.validation.results import Limits, Report, RunResult

LIMITS = Limits(cell_timeout_s=120, notebook_timeout_s=300)


def test_scopes_are_filtered_to_the_validation_user() -> None:
    assert validator_scopes() == [f"servers!user={VALIDATOR_USER}", f"access:servers!user={VALIDATOR_USER}"]
    assert validator_scopes("v2") == ["servers!user=v2", "access:servers!user=v2"]


def test_the_hub_config_creates_the_user_and_registers_the_service(tmp_path) -> None:
    c = configure(Config(), load_hub_facility(REPO, "local"), REPO, contact="x",
                  environ={"CASABOOK_OIDC_CLIENT_SECRET": "s"}, state_dir=tmp_path, issuer="http://127.0.0.1:1",
                  organiser_token="organiser", validator_token="validator")
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["casabook-validation-user"]["users"] == [VALIDATOR_USER]  # a role's users are created at start
    assert roles["casabook-validator"] == {**roles["casabook-validator"], "services": [VALIDATOR_SERVICE],
                                           "scopes": validator_scopes()}
    assert {"name": VALIDATOR_SERVICE, "api_token": "validator"} in c.JupyterHub.services
    assert {"name": "casabook-organiser", "api_token": "organiser"} in c.JupyterHub.services
    assert c.ParticipantCap.uncounted_users == {VALIDATOR_USER}
    # Twice, and with the prewarm service after it: nothing doubles, nothing is lost.
    apply_validation_user(c)
    apply_validator_service(c, "validator")
    apply_prewarm_service(c, "prewarm")
    names = [role["name"] for role in c.JupyterHub.load_roles]
    assert sorted(names) == sorted(set(names)) and "casabook-validator" in names and "casabook-prewarm" in names
    assert [s["name"] for s in c.JupyterHub.services].count(VALIDATOR_SERVICE) == 1


def test_without_its_token_the_hub_has_the_user_but_no_service(tmp_path) -> None:
    c = configure(Config(), load_hub_facility(REPO, "local"), REPO, contact="x",
                  environ={"CASABOOK_OIDC_CLIENT_SECRET": "s"}, state_dir=tmp_path, issuer="http://127.0.0.1:1",
                  validator_user="checker")
    assert [role["users"] for role in c.JupyterHub.load_roles] == [["checker"]]
    assert "services" not in c.JupyterHub
    assert c.ParticipantCap.uncounted_users == {"checker"}


def _cap(participants: int) -> CappedGenericOAuthenticator:
    return CappedGenericOAuthenticator(participants=participants, uncounted_users={VALIDATOR_USER},
                                       open_to_any_identity=True, admin_users={"organiser"})


@pytest.mark.parametrize("case", ["created-at-start", "logs-in-at-cap"])
def test_the_cap_never_counts_the_validation_user(case: str) -> None:
    import asyncio

    cap = _cap(1)
    assert asyncio.run(cap.check_allowed("alice"))
    if case == "created-at-start":
        cap.add_user(SimpleNamespace(name=VALIDATOR_USER, admin=False))  # what a role's user creation calls
    else:
        assert asyncio.run(cap.check_allowed(VALIDATOR_USER))  # at the cap, still in
    assert cap.admitted == ["alice"]


def test_helm_values_carry_the_service_and_roles() -> None:
    workshop = load_workshop(REPO)
    hub = helm_values(workshop, workshop.facility("coffea-casa-cms"))["hub"]
    assert VALIDATOR_SERVICE in hub["services"] and "casabook-prewarm" in hub["services"]
    assert hub["loadRoles"]["casabook-validator"]["scopes"] == validator_scopes()
    assert hub["loadRoles"]["casabook-validation-user"]["users"] == [VALIDATOR_USER]
    assert hub["config"]["ParticipantCap"]["uncounted_users"] == [VALIDATOR_USER]


def _run(notebook: str, column: str, status: str = "passed") -> RunResult:
    return RunResult(notebook=notebook, track="t", facility=column, status=status, key=f"{notebook}{column}")


def test_the_hub_column_joins_the_offline_report(tmp_path) -> None:
    offline = Report(casabook_version="x", generated_at="then", jobs=2, limits=LIMITS, facilities=["local"],
                     notebooks=["a.ipynb", "b.ipynb"], runs=[_run("a.ipynb", "local"), _run("b.ipynb", "local")])
    write_report(offline, tmp_path)
    hub = "local @ hub 127.0.0.1:9"
    add_column(tmp_path, hub, [_run("a.ipynb", hub, "failed")], LIMITS)
    report = add_column(tmp_path, hub, [_run("a.ipynb", hub), _run("c.ipynb", hub)], LIMITS)  # replaced whole
    stored = json.loads((tmp_path / REPORT_JSON).read_text())
    assert stored["facilities"] == ["local", hub] and stored["notebooks"] == ["a.ipynb", "b.ipynb", "c.ipynb"]
    assert [(r["notebook"], r["facility"], r["status"]) for r in stored["runs"]] == [
        ("a.ipynb", "local", "passed"), ("b.ipynb", "local", "passed"), ("a.ipynb", hub, "passed"),
        ("c.ipynb", hub, "passed")]
    assert report.jobs == 2 and hub in (tmp_path / "report.html").read_text()


def test_a_hub_column_without_an_offline_report(tmp_path) -> None:
    report = add_column(tmp_path, "h", [_run("a.ipynb", "h")], LIMITS)
    assert report.facilities == ["h"] and report.ok


@pytest.mark.parametrize("user, participant", [
    pytest.param({"name": "alice"}, True, id="participant"),
    pytest.param({"name": "organiser", "admin": True}, False, id="organiser"),
    pytest.param({"name": "checker", "roles": ["user", "casabook-validation-user"]}, False, id="by-its-role"),
    pytest.param({"name": VALIDATOR_USER}, False, id="by-its-name-without-roles"),
])
def test_prewarm_and_stats_leave_the_validation_user_out(user: dict, participant: bool) -> None:
    import datetime as dt

    from casabook.hub.stats import attendance_from_users

    assert is_participant(user) is participant
    counts = attendance_from_users([user], hub_url="http://127.0.0.1:1", cap=1, now=dt.datetime.now(dt.timezone.utc))
    assert (counts.registered, counts.organisers) == (int(participant), int(bool(user.get("admin"))))


@pytest.mark.parametrize("url, facility, expected", [
    pytest.param("http://127.0.0.1:41234", None, "local", id="unknown-loopback-port-is-the-embedded-hub"),
    pytest.param("http://127.0.0.1:9000/", "coffea-casa-cms", "coffea-casa-cms", id="forwarded-port-named"),
    pytest.param("http://127.0.0.1:8000", None, "local", id="the-facility-whose-url-it-is"),
    pytest.param("https://cmsaf.example.org", None, "[not-loopback]", id="never-off-this-machine"),
    pytest.param("http://127.0.0.1:9000", "nowhere", "[unknown-facility]", id="unknown-facility"),
])
def test_which_facility_a_hub_serves(url: str, facility: str | None, expected: str) -> None:
    from casabook.errors import CasabookError
    from casabook.validation.hubsession import hub_target

    workshop = load_workshop(REPO)
    try:
        target = hub_target(workshop, url, facility, None)
    except CasabookError as error:
        assert f"[{error.code}]" == expected
        return
    assert target.facility.name == expected and target.user == VALIDATOR_USER
    assert target.hub_url == url.rstrip("/") and target.column == f"{expected} @ hub {url.split('//')[1].rstrip('/')}"


def test_tracks_on_the_hub() -> None:
    from casabook.errors import CasabookError
    from casabook.validation.remote import hub_tracks

    workshop = load_workshop(REPO)
    assert {t.name for t in hub_tracks(workshop, workshop.facility("local"), None)} == set(workshop.tracks)
    cms = workshop.facility("coffea-casa-cms")
    assert [t.name for t in hub_tracks(workshop, cms, None)] == ["cms"]
    with pytest.raises(CasabookError) as refused:
        hub_tracks(workshop, cms, ["atlas"])
    assert refused.value.code == "track-not-on-hub"
