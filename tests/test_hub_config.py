"""Each facility file applied to a traitlets Config, asserted key by key, with no hub running."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

from casabook.cli import main
from casabook.errors import CasabookError
from casabook.hub import caps
from casabook.hub.config import (
    Ports,
    apply_authenticator,
    configure,
    load_hub_facility,
    organisers_contact,
    read_client_secret,
)
from casabook.model import load_workshop
import coffea_hub_extra
from casabook.testing.workshops import make_workshop

REPO = Path(__file__).resolve().parents[1]
ISSUER = "http://127.0.0.1:9400"
SECRETS = {"CASABOOK_OIDC_CLIENT_SECRET": "s-local", "CMS_IAM_CLIENT_SECRET": "s-cms",
           "ATLAS_IAM_CLIENT_SECRET": "s-atlas", "CILOGON_CLIENT_SECRET": "s-cilogon",
           "GITHUB_CLIENT_SECRET": "s-github"}
PORTS = Ports(public=18000, hub=18081, proxy_api=18001)


@pytest.fixture(autouse=True)
def coffea_authenticator(monkeypatch):
    """hub-config/coffea-casa-cms.yml names coffea-casa's own authenticator: its stand-in takes its place."""
    coffea_hub_extra.install(monkeypatch)


def build(name: str, state: Path, facility=None) -> Config:
    facility = facility or load_hub_facility(REPO, name)
    return configure(Config(), facility, REPO, contact="Org <org@casabook.invalid>", environ=SECRETS,
                     state_dir=state, ports=PORTS, issuer=ISSUER if facility.is_local else None)


def github_facility():
    local = load_hub_facility(REPO, "local")
    auth = local.authenticator.model_copy(update={"kind": "github", "client_secret_env": "GITHUB_CLIENT_SECRET",
                                                  "allowed_groups": ["casabook-workshop"]})
    return local.model_copy(update={"name": "github-demo", "authenticator": auth})


# (facility, config section, key, expected); "{state}" stands for the state folder.
CASES = [
    # the embedded default: the local OIDC provider, local processes, loopback
    ("local", "JupyterHub", "authenticator_class", "casabook.hub.caps.CappedGenericOAuthenticator"),
    ("local", "GenericOAuthenticator", "authorize_url", f"{ISSUER}/oauth2/authorize"),
    ("local", "GenericOAuthenticator", "token_url", f"{ISSUER}/oauth2/token"),
    ("local", "GenericOAuthenticator", "userdata_url", f"{ISSUER}/userinfo"),
    ("local", "GenericOAuthenticator", "client_id", "casabook-local"),
    ("local", "GenericOAuthenticator", "client_secret", "s-local"),
    ("local", "GenericOAuthenticator", "username_claim", "preferred_username"),
    ("local", "GenericOAuthenticator", "oauth_callback_url", "http://127.0.0.1:18000/hub/oauth_callback"),
    ("local", "Authenticator", "admin_users", {"organiser"}),
    ("local", "Authenticator", "allow_all", False),
    ("local", "ParticipantCap", "open_to_any_identity", True),
    ("local", "ParticipantCap", "participants", 100),
    ("local", "ParticipantCap", "waitlist_file", "{state}/waitlist.jsonl"),
    ("local", "JupyterHub", "active_server_limit", 100),
    ("local", "JupyterHub", "concurrent_spawn_limit", 0),
    ("local", "SpawnLine", "concurrent_spawns", 20),
    ("local", "JupyterHub", "tornado_settings", {"slow_spawn_timeout": 2}),
    ("local", "JupyterHub", "bind_url", "http://127.0.0.1:18000"),
    ("local", "JupyterHub", "hub_bind_url", "http://127.0.0.1:18081"),
    ("local", "ConfigurableHTTPProxy", "api_url", "http://127.0.0.1:18001"),
    ("local", "JupyterHub", "db_url", "sqlite:///{state}/jupyterhub.sqlite"),
    ("local", "JupyterHub", "spawner_class", "casabook.hub.spawner.LocalSessionSpawner"),
    ("local", "SimpleLocalProcessSpawner", "home_dir_template", "{state}/homes/{username}"),
    ("local", "Spawner", "start_timeout", 120),
    ("local", "Spawner", "ip", "127.0.0.1"),
    ("local", "Spawner", "default_url", "/lab"),
    # CMS AF: CMS IAM (INDIGO IAM endpoints under the issuer), CMS members, organisers by group
    # coffea-casa's own authenticator (its stand-in here), capped
    ("coffea-casa-cms", "JupyterHub", "authenticator_class", caps.capped(coffea_hub_extra.CoffeaOAuthenticator)),
    ("coffea-casa-cms", "GenericOAuthenticator", "authorize_url", "https://cms-auth.web.cern.ch/authorize"),
    ("coffea-casa-cms", "GenericOAuthenticator", "token_url", "https://cms-auth.web.cern.ch/token"),
    ("coffea-casa-cms", "GenericOAuthenticator", "userdata_url", "https://cms-auth.web.cern.ch/userinfo"),
    ("coffea-casa-cms", "GenericOAuthenticator", "client_secret", "s-cms"),
    ("coffea-casa-cms", "GenericOAuthenticator", "oauth_callback_url", "https://coffea.casa/hub/oauth_callback"),
    ("coffea-casa-cms", "GenericOAuthenticator", "manage_groups", True),
    ("coffea-casa-cms", "GenericOAuthenticator", "auth_state_groups_key", "oauth_user.groups"),
    ("coffea-casa-cms", "GenericOAuthenticator", "allowed_groups", {"cms"}),
    ("coffea-casa-cms", "GenericOAuthenticator", "admin_groups", {"cms/casabook-organisers"}),
    ("coffea-casa-cms", "ParticipantCap", "open_to_any_identity", False),
    ("coffea-casa-cms", "ParticipantCap", "participants", 60),
    ("coffea-casa-cms", "JupyterHub", "spawner_class", "casabook.hub.line.KubeSpawnerInLine"),
    ("coffea-casa-cms", "KubeSpawner", "image", "coffeateam/coffea-casa:2026.9.0"),
    ("coffea-casa-cms", "Spawner", "cpu_limit", 2.0),
    ("coffea-casa-cms", "Spawner", "mem_limit", 6 * 1024**3),
    ("coffea-casa-cms", "Spawner", "start_timeout", 600),
    ("coffea-casa-cms", "JupyterHub", "bind_url", "http://0.0.0.0:18000"),
    # ATLAS AF: ATLAS IAM
    ("atlas-af", "GenericOAuthenticator", "authorize_url", "https://atlas-auth.web.cern.ch/authorize"),
    ("atlas-af", "GenericOAuthenticator", "allowed_groups", {"atlas"}),
    ("atlas-af", "GenericOAuthenticator", "client_secret", "s-atlas"),
    ("atlas-af", "KubeSpawner", "image", "hub.opensciencegrid.org/usatlas/ml-platform:2026.9"),
    ("atlas-af", "Spawner", "mem_limit", 8 * 1024**3),
    # Open Data AF: CILogon with its identity providers
    ("coffea-opendata", "JupyterHub", "authenticator_class", "casabook.hub.caps.CappedCILogonOAuthenticator"),
    ("coffea-opendata", "CILogonOAuthenticator", "client_id", "cilogon:/client_id/casabook-opendata"),
    ("coffea-opendata", "CILogonOAuthenticator", "client_secret", "s-cilogon"),
    ("coffea-opendata", "Authenticator", "admin_users", {"organisers@casabook.example.org"}),
    ("coffea-opendata", "ParticipantCap", "open_to_any_identity", False),
    ("coffea-opendata", "ParticipantCap", "participants", 100),
    ("coffea-opendata", "JupyterHub", "active_server_limit", 100),
    ("coffea-opendata", "JupyterHub", "concurrent_spawn_limit", 0),
    ("coffea-opendata", "SpawnLine", "concurrent_spawns", 30),
    # a GitHub facility: organisations are its groups
    ("github-demo", "JupyterHub", "authenticator_class", "casabook.hub.caps.CappedGitHubOAuthenticator"),
    ("github-demo", "GitHubOAuthenticator", "allowed_organizations", {"casabook-workshop"}),
    ("github-demo", "GitHubOAuthenticator", "username_claim", "login"),
    ("github-demo", "ParticipantCap", "open_to_any_identity", False),
]


@pytest.mark.parametrize(("facility", "section", "key", "expected"), CASES,
                         ids=[f"{f}-{s}.{k}" for f, s, k, _ in CASES])
def test_facility_config_key(tmp_path, facility, section, key, expected):
    c = build(facility, tmp_path, github_facility() if facility == "github-demo" else None)
    if isinstance(expected, str):
        expected = expected.replace("{state}", str(tmp_path))
    assert key in c[section], f"{section}.{key} not set"
    assert c[section][key] == expected


def test_cilogon_identity_providers_use_oauthenticator_17_shape(tmp_path):
    idps = build("coffea-opendata", tmp_path).CILogonOAuthenticator.idps
    assert sorted(idps) == sorted(load_hub_facility(REPO, "coffea-opendata").authenticator.allowed_idps)
    for idp in idps.values():
        assert idp == {"username_derivation": {"username_claim": "email"}, "allow_all": True}


@pytest.mark.parametrize("facility", ["local", "coffea-casa-cms", "atlas-af", "coffea-opendata"])
def test_session_sees_the_facility_environment(tmp_path, facility):
    env = build(facility, tmp_path).Spawner.environment
    expected = load_hub_facility(REPO, facility).session_environment(REPO)
    assert env == expected
    assert env["CASABOOK_FACILITY"] == facility


def test_local_data_root_is_absolute_and_servers_run_from_this_environment(tmp_path):
    c = build("local", tmp_path)
    assert c.Spawner.environment["CASABOOK_DATA_ROOT"] == str((REPO / ".casabook/data").resolve())
    assert c.Spawner.cmd == [sys.executable, "-m", "casabook.hub.session"]
    assert "--ServerApp.allow_root=True" in c.Spawner.args
    assert "--ServerApp.jpserver_extensions={'jupyter_lsp': False, 'notebook_shim': False}" in c.Spawner.args


@pytest.mark.parametrize("facility", ["local", "coffea-casa-cms", "atlas-af", "coffea-opendata"])
def test_configure_twice_gives_the_same_config(tmp_path, facility):
    once = build(facility, tmp_path)
    twice = build(facility, tmp_path)
    configure(twice, load_hub_facility(REPO, facility), REPO, contact="Org <org@casabook.invalid>",
              environ=SECRETS, state_dir=tmp_path, ports=PORTS, issuer=ISSUER)
    def plain(value):
        return sorted(value) if isinstance(value, (set, frozenset)) else repr(value)

    assert json.dumps(once, default=plain, sort_keys=True) == json.dumps(twice, default=plain, sort_keys=True)


@pytest.mark.parametrize("facility", ["local", "coffea-casa-cms", "coffea-opendata", "github-demo"])
def test_config_is_accepted_by_the_real_authenticator_class(tmp_path, facility):
    c = build(facility, tmp_path, github_facility() if facility == "github-demo" else None)
    named = c.JupyterHub.authenticator_class
    cls = import_item(named) if isinstance(named, str) else named
    authenticator = cls(config=c)
    assert isinstance(authenticator, caps.ParticipantCap)
    assert authenticator.allow_all is False
    assert authenticator.participants == c.ParticipantCap.participants
    assert authenticator.client_secret == SECRETS[load_hub_facility(REPO, "local").authenticator.client_secret_env
                                                  if facility == "local" else
                                                  {"coffea-casa-cms": "CMS_IAM_CLIENT_SECRET",
                                                   "coffea-opendata": "CILOGON_CLIENT_SECRET",
                                                   "github-demo": "GITHUB_CLIENT_SECRET"}[facility]]


def test_missing_client_secret_is_a_clear_error():
    facility = load_hub_facility(REPO, "coffea-casa-cms")
    with pytest.raises(CasabookError) as error:
        read_client_secret(facility, {})
    assert error.value.code == "missing-client-secret"
    assert "CMS_IAM_CLIENT_SECRET" in error.value.render()
    assert error.value.file == "hub-config/coffea-casa-cms.yml"


def test_local_oidc_needs_the_issuer_at_start():
    with pytest.raises(CasabookError) as error:
        apply_authenticator(Config(), load_hub_facility(REPO, "local"), client_secret="s")
    assert error.value.code == "no-issuer"


def test_unknown_facility_names_the_known_ones():
    with pytest.raises(CasabookError) as error:
        load_hub_facility(REPO, "nowhere")
    assert error.value.code == "unknown-facility" and "coffea-casa-cms" in error.value.message


def test_contact_is_the_organisers_of_the_tracks_on_the_facility(tmp_path):
    workshop = load_workshop(make_workshop(tmp_path, commit=False))
    assert organisers_contact(workshop, workshop.facilities["coffea-casa-cms"]) == \
        "casabook CMS track organisers <cms-track@casabook.example.org>"
    # No track names the embedded default: it runs the whole workshop, so every track's organisers.
    local = organisers_contact(workshop, workshop.facilities["local"])
    assert all(t.organisers[0].email in local for t in workshop.tracks.values())


def test_the_thin_config_file_applies_the_facility_named_in_the_environment(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CASABOOK_ROOT", str(REPO))
    monkeypatch.setenv("CASABOOK_FACILITY", "coffea-casa-cms")
    monkeypatch.setenv("CASABOOK_STATE", str(tmp_path))
    monkeypatch.setenv("CASABOOK_CONTACT", "Org <org@casabook.invalid>")
    c = PyFileConfigLoader("jupyterhub_config.py", path=str(REPO / "hub-config")).load_config()
    assert c.GenericOAuthenticator.authorize_url == "https://cms-auth.web.cern.ch/authorize"
    assert c.ParticipantCap.contact == "Org <org@casabook.invalid>"
    assert c.KubeSpawner.image == "coffeateam/coffea-casa:2026.9.0"


# --- Helm values for the kubernetes facilities (casabook hub render) --------------------------

KUBERNETES = ["coffea-casa-cms", "atlas-af", "coffea-opendata"]


@pytest.fixture(scope="module")
def rendered_workshop(tmp_path_factory):
    return make_workshop(tmp_path_factory.mktemp("workshop"))


def render_values(workshop_root: Path, facility: str, tmp_path: Path) -> tuple[dict, str]:
    out = tmp_path / "values.yml"
    assert main(["--root", str(workshop_root), "hub", "render", "--facility", facility, "--output", str(out)]) == 0
    text = out.read_text()
    return yaml.safe_load(text), text


@pytest.mark.parametrize("facility", KUBERNETES)
def test_helm_values_carry_the_facility(rendered_workshop, tmp_path, facility):
    values, text = render_values(rendered_workshop, facility, tmp_path)
    chosen = load_hub_facility(REPO, facility)
    hub, singleuser = values["hub"], values["singleuser"]
    auth_section = {"coffea-opendata": "CILogonOAuthenticator"}.get(facility, "GenericOAuthenticator")
    assert hub["config"][auth_section]["client_id"] == chosen.authenticator.client_id
    assert hub["config"]["ParticipantCap"]["participants"] == chosen.caps.participants
    assert "@casabook.example.org" in hub["config"]["ParticipantCap"]["contact"]
    assert hub["config"]["Authenticator"]["allow_all"] is False
    assert hub["activeServerLimit"] == chosen.caps.concurrent_servers
    # The spawn line keeps the limit; JupyterHub's own, which answers with an error page, is lifted.
    assert hub["concurrentSpawnLimit"] == 0
    assert hub["config"]["SpawnLine"]["concurrent_spawns"] == chosen.caps.concurrent_spawns
    assert f"{singleuser['image']['name']}:{singleuser['image']['tag']}" == chosen.spawner.image
    assert singleuser["cpu"]["limit"] == chosen.resources.cores_per_user
    assert singleuser["memory"]["limit"] == f"{chosen.resources.memory_gib_per_user:g}G"
    assert singleuser["extraEnv"] == chosen.session_environment(rendered_workshop)
    assert singleuser["defaultUrl"] == "/lab"


@pytest.mark.parametrize("facility", KUBERNETES)
def test_helm_values_reference_the_secret_and_never_inline_it(rendered_workshop, tmp_path, facility, monkeypatch):
    env_name = load_hub_facility(REPO, facility).authenticator.client_secret_env
    monkeypatch.setenv(env_name, "a-real-secret-value")
    values, text = render_values(rendered_workshop, facility, tmp_path)
    assert "a-real-secret-value" not in text
    assert all("client_secret" not in section for section in values["hub"]["config"].values())
    ref = values["hub"]["extraEnv"][env_name]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"casabook-{facility}-oauth", "key": "client-secret"}


def test_render_refuses_a_local_facility(rendered_workshop, capsys):
    assert main(["--root", str(rendered_workshop), "hub", "render", "--facility", "local"]) == 2
    assert "[not-kubernetes]" in capsys.readouterr().err


def test_organiser_token_gets_a_role_with_the_admin_powers(tmp_path):
    c = configure(Config(), load_hub_facility(REPO, "local"), REPO, contact="x", environ=SECRETS, state_dir=tmp_path,
                  ports=PORTS, issuer=ISSUER, organiser_token="t0ken")
    assert c.JupyterHub.services == [{"name": "casabook-organiser", "api_token": "t0ken"}]
    (role,) = [r for r in c.JupyterHub.load_roles if r.get("services")]  # beside it: the validation user's role
    assert role["services"] == ["casabook-organiser"] and role["name"] != "admin"
    assert {"admin:users", "admin:servers", "tokens"} <= set(role["scopes"])


def test_casabook_hub_runs_only_local_facilities(rendered_workshop, capsys):
    assert main(["--root", str(rendered_workshop), "hub", "--facility", "coffea-casa-cms"]) == 2
    err = capsys.readouterr().err
    assert "[not-a-local-facility]" in err and "casabook hub render --facility coffea-casa-cms" in err
    assert main(["--root", str(rendered_workshop), "hub", "--facility", "nowhere"]) == 2
    assert "[unknown-facility]" in capsys.readouterr().err


def test_own_authenticator_class_must_be_a_dotted_path(tmp_path):
    from casabook.model import load_facility

    text = (REPO / "hub-config" / "coffea-casa-cms.yml").read_text()
    path = tmp_path / "hub-config" / "coffea-casa-cms.yml"
    path.parent.mkdir()
    path.write_text(text.replace("class_name: oauthenticator.coffea.CoffeaOAuthenticator", "class_name: Coffea OAuth"))
    with pytest.raises(CasabookError) as error:
        load_facility(path, tmp_path)
    assert "authenticator.class_name" in error.value.render() and "dotted path" in error.value.render()
