"""`casabook hub render` against the real chart: zero-to-jupyterhub 4.4.0's schema and defaults
(vendored in casabook/hub/charts/z2jh), and its jupyterhub_config.py's way of loading values.

Runs on both JupyterHub lines: the project's and the chart's hub image (5.5.0, `make test-hub-image`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml
from tornado import web
from traitlets.config import Config

import coffea_hub_extra
from casabook.cli import main
from casabook.hub import chart
from casabook.hub.caps import ParticipantCap
from casabook.hub.config import load_hub_facility
from casabook.hub.prewarm import PREWARM_SCOPES, PREWARM_SERVICE
from casabook.testing.workshops import make_workshop

REPO = Path(__file__).resolve().parents[1]
KUBERNETES = ["coffea-casa-cms", "atlas-af", "coffea-opendata"]
CHARTS = ["z2jh", "coffea-casa"]
RENDERINGS = [(facility, name) for facility in KUBERNETES for name in CHARTS]
IDS = [f"{facility}-{name}" for facility, name in RENDERINGS]


@pytest.fixture(autouse=True)
def coffea_authenticator(monkeypatch):
    """coffea-casa's chart mounts its authenticator as oauthenticator.coffea: the stand-in takes its place."""
    coffea_hub_extra.install(monkeypatch)


@pytest.fixture(autouse=True)
def client_secrets(monkeypatch):
    """The chart sets these from the Kubernetes Secret (hub.extraEnv)."""
    for facility in KUBERNETES:
        monkeypatch.setenv(load_hub_facility(REPO, facility).authenticator.client_secret_env, "from-the-secret")


@pytest.fixture(scope="module")
def workshop_root(tmp_path_factory):
    return make_workshop(tmp_path_factory.mktemp("workshop"))


def rendered(workshop_root: Path, facility: str, chart_name: str, tmp_path: Path) -> dict:
    """The values as an admin gets them, by the command, for the bare chart (coffea-casa's nest it)."""
    out = tmp_path / "values.yml"
    assert main(["--root", str(workshop_root), "hub", "render", "--facility", facility, "--chart", chart_name,
                 "--output", str(out)]) == 0
    values = yaml.safe_load(out.read_text())
    if chart_name == "coffea-casa":
        assert list(values) == ["jupyterhub"], "coffea-casa's umbrella chart passes only jupyterhub: to z2jh"
        return values["jupyterhub"]
    return values


# --- Helm's merge, as the schema test needs it ----------------------------------------------

# id, chart default, values file, what Helm hands the templates
MERGES = [
    ("maps-merge-key-by-key", {"hub": {"a": 1, "b": 2}}, {"hub": {"b": 3, "c": 4}}, {"hub": {"a": 1, "b": 3, "c": 4}}),
    ("lists-are-replaced", {"l": [1, 2, 3]}, {"l": [9]}, {"l": [9]}),
    ("null-deletes-a-default", {"hub": {"a": 1, "b": 2}}, {"hub": {"a": None}}, {"hub": {"b": 2}}),
    ("a-scalar-replaces-a-map", {"x": {"a": 1}}, {"x": 5}, {"x": 5}),
    ("a-map-replaces-a-scalar", {"x": None}, {"x": {"a": 1}}, {"x": {"a": 1}}),
    ("untouched-defaults-stay", {"cull": {"every": 600}, "debug": {}}, {}, {"cull": {"every": 600}, "debug": {}}),
]


@pytest.mark.parametrize(("base", "override", "expected"), [m[1:] for m in MERGES], ids=[m[0] for m in MERGES])
def test_helm_merge(base, override, expected):
    before = repr(base)
    assert chart.helm_merge(base, override) == expected
    assert repr(base) == before


def validate(values: dict) -> list[str]:
    """Errors of `values` over the vendored defaults, straight from jsonschema with the chart's schema."""
    validator = jsonschema.Draft7Validator(chart.schema())
    return sorted(error.message for error in validator.iter_errors(chart.helm_merge(chart.defaults(), values)))


def test_the_vendored_defaults_pass_their_own_schema():
    assert chart.schema()["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert validate({}) == []


# id, values the chart must refuse
REFUSED = [
    ("unknown-hub-key", {"hub": {"extraConfigs": {}}}),
    ("cull-timeout-as-text", {"cull": {"timeout": "90m"}}),
    ("services-as-a-list", {"hub": {"services": [{"name": "casabook-prewarm"}]}}),
    ("values-for-the-umbrella-given-to-the-bare-chart", {"jupyterhub": {"hub": {}}}),
]


@pytest.mark.parametrize("values", [r[1] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_the_schema_refuses_what_helm_would_refuse(values):
    assert validate(values)
    assert chart.schema_errors(values)


@pytest.mark.parametrize(("facility", "chart_name"), RENDERINGS, ids=IDS)
def test_rendered_values_pass_the_charts_schema(workshop_root, tmp_path, facility, chart_name):
    assert validate(rendered(workshop_root, facility, chart_name, tmp_path)) == []


# --- the values loaded as the chart's jupyterhub_config.py loads them ------------------------


def load_as_the_chart_does(values: dict, config_d: list[str] = ()) -> Config:
    """What zero-to-jupyterhub 4.4.0's files/hub/jupyterhub_config.py does with hub.* values:
    services and roles from hub.services / hub.loadRoles, hub.config sections into `c`, the
    jupyterhub_config.d files, then each hub.extraConfig snippet in key order."""
    c = Config()
    hub = chart.helm_merge(chart.defaults(), values)["hub"]
    c.JupyterHub.services = [{"name": key, **service, "api_token": "from-the-hub-secret"}
                             for key, service in hub["services"].items()]
    c.JupyterHub.load_roles = [{"name": key, **role} for key, role in hub["loadRoles"].items()]
    for section, settings in hub["config"].items():
        c[section].update(settings)
    namespace = {"c": c, "os": os}
    for source in config_d:
        exec(compile(source, "jupyterhub_config.d", "exec"), namespace)  # noqa: S102 (as the chart does)
    for key, source in sorted(hub["extraConfig"].items()):
        exec(compile(source, f"extraConfig.{key}", "exec"), namespace)  # noqa: S102 (as the chart does)
    return c


@pytest.mark.parametrize(("facility", "chart_name"), RENDERINGS, ids=IDS)
def test_the_chart_loads_the_capped_authenticator(workshop_root, tmp_path, monkeypatch, facility, chart_name):
    chosen = load_hub_facility(REPO, facility)
    c = load_as_the_chart_does(rendered(workshop_root, facility, chart_name, tmp_path))
    cls = c.JupyterHub.authenticator_class
    assert isinstance(cls, type), "extraConfig sets the class itself: the hub image cannot import casabook"
    # The inlined copy of the cap, not casabook's: the hub image has no casabook to import.
    assert cls.__mro__[1].__name__ == "ParticipantCap" and cls.__mro__[1] is not ParticipantCap
    if chosen.authenticator.class_name:
        assert cls.__mro__[2] is coffea_hub_extra.CoffeaOAuthenticator
    authenticator = cls(config=c)
    assert authenticator.client_secret == "from-the-secret"
    # The spawn line, inlined too, around the chart's real KubeSpawner.
    from kubespawner import KubeSpawner

    spawner = c.JupyterHub.spawner_class
    assert issubclass(spawner, KubeSpawner) and spawner.__mro__[1].__name__ == "SpawnLine"
    assert spawner.__mro__[1].__module__ != "casabook.hub.line"
    assert c.SpawnLine.concurrent_spawns == chosen.caps.concurrent_spawns
    assert c.JupyterHub.tornado_settings["slow_spawn_timeout"] == 2
    assert authenticator.participants == chosen.caps.participants
    assert authenticator.allow_all is False
    assert authenticator.waitlist_file == "/srv/jupyterhub/casabook-waitlist.jsonl"
    if chosen.authenticator.kind == "cilogon":
        assert sorted(authenticator.idps) == sorted(chosen.authenticator.allowed_idps)
    else:
        assert authenticator.username_claim == chosen.authenticator.username_claim


@pytest.mark.parametrize(("facility", "chart_name"), RENDERINGS, ids=IDS)
def test_the_chart_runs_the_prewarm_service_and_the_culler_for_a_workshop(workshop_root, tmp_path, facility,
                                                                           chart_name):
    values = rendered(workshop_root, facility, chart_name, tmp_path)
    c = load_as_the_chart_does(values)
    (prewarm,) = [s for s in c.JupyterHub.services if s["name"] == PREWARM_SERVICE]
    assert prewarm == {"name": PREWARM_SERVICE, "api_token": "from-the-hub-secret"}
    (role,) = [r for r in c.JupyterHub.load_roles if PREWARM_SERVICE in r.get("services", [])]
    assert set(role["scopes"]) == set(PREWARM_SCOPES)
    cull = values["cull"]
    # Servers outlive an hour's lunch; users are never culled (that would free their place).
    assert cull["enabled"] is True and cull["timeout"] >= 60 * 60 and cull["users"] is False


def test_organisers_are_admins(workshop_root, tmp_path):
    # Open Data AF: user names are e-mail addresses, so the track's organisers are named admins.
    config = rendered(workshop_root, "coffea-opendata", "z2jh", tmp_path)["hub"]["config"]
    assert set(config["Authenticator"]["admin_users"]) == {"organisers@casabook.example.org",
                                                           "opendata-track@casabook.example.org"}
    # CMS AF: CMS IAM's organisers group makes them admins; no empty list replaces the chart's admins.
    config = rendered(workshop_root, "coffea-casa-cms", "coffea-casa", tmp_path)["hub"]["config"]
    assert config["GenericOAuthenticator"]["admin_groups"] == ["cms/casabook-organisers"]
    assert "admin_users" not in config["Authenticator"]


def test_coffea_casas_deprecated_username_key_is_deleted(workshop_root, tmp_path):
    # coffea-casa's values-prod.yaml sets GenericOAuthenticator.username_key: email; OAuthenticator 17
    # would apply it over username_claim. Merged under casabook's values, Helm deletes it.
    theirs = {"hub": {"config": {"GenericOAuthenticator": {"username_key": "email", "login_service": "CMS SSO"}}}}
    ours = rendered(workshop_root, "coffea-casa-cms", "coffea-casa", tmp_path)
    merged = chart.helm_merge(theirs, ours)["hub"]["config"]["GenericOAuthenticator"]
    assert "username_key" not in merged and merged["username_claim"] == "preferred_username"


def test_coffea_casas_hooks_keep_working_beside_the_cap(workshop_root, tmp_path, monkeypatch):
    monkeypatch.setenv("COFFEA_SECRETS_DIR", str(tmp_path / "secrets"))
    values = rendered(workshop_root, "coffea-casa-cms", "coffea-casa", tmp_path)
    values["hub"]["config"]["ParticipantCap"]["participants"] = 1
    values["hub"]["config"]["CoffeaOAuthenticator"] = {"secrets_dir": str(tmp_path / "secrets")}
    c = load_as_the_chart_does(values, config_d=[coffea_hub_extra.SECRET_CREATION_HOOK])
    authenticator = c.JupyterHub.authenticator_class(config=c)

    async def attendee_arrives(name: str) -> str:
        try:
            allowed = await authenticator.check_allowed(name, {"name": name, "admin": None, "groups": ["cms"],
                                                               "auth_state": {"oauth_user": {"groups": ["cms"]}}})
        except web.HTTPError as error:
            return f"HTTP {error.status_code}"
        user = SimpleNamespace(name=name, get_auth_state=lambda: asyncio.sleep(0, {"access_token": f"tok-{name}"}))
        spawner = SimpleNamespace(user=user)
        await authenticator.pre_spawn_start(user, spawner)  # JupyterHub calls both before a spawn
        c.KubeSpawner.pre_spawn_hook(spawner)
        return "admitted" if allowed else "refused"

    assert asyncio.run(attendee_arrives("alice")) == "admitted"
    assert asyncio.run(attendee_arrives("bob")) == "HTTP 403"  # one place: the cap holds
    secrets = tmp_path / "secrets"
    assert coffea_hub_extra.token_file(secrets, "alice").read_text() == "tok-alice"
    assert coffea_hub_extra.xcache_token(secrets, "alice") == {"user": "alice", "activity": "DOWNLOAD"}
    assert not (secrets / "jupyter-bob").exists()


@pytest.mark.parametrize("chart_name", CHARTS)
def test_the_header_says_where_the_secrets_come_from(workshop_root, tmp_path, chart_name):
    out = tmp_path / "values.yml"
    assert main(["--root", str(workshop_root), "hub", "render", "--facility", "coffea-opendata", "--chart", chart_name,
                 "--output", str(out)]) == 0
    header = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert any("kubectl create secret generic casabook-coffea-opendata-oauth --from-literal=client-secret=" in line
               for line in header)
    # The chart keeps each hub.services token in its Secret under hub.services.<name>.apiToken.
    assert any(r"kubectl get secret hub -o jsonpath='{.data.hub\.services\.casabook-prewarm\.apiToken}'" in line
               for line in header)
