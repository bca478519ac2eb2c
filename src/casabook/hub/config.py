"""Facility -> traitlets Config, by pure functions (as The Littlest JupyterHub does).

Each `apply_*` function sets keys on a Config and never appends, so calling it twice is safe and a
test can build a Config and assert on it without starting a hub. hub-config/jupyterhub_config.py
calls `configure` with the facility named by CASABOOK_FACILITY.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from traitlets.config import Config

from casabook.errors import CasabookError
from casabook.model import FACILITIES_DIR, Facility, Track, Workshop, load_facility

CAPS_MODULE = "casabook.hub.caps"
# Each kind's stock OAuthenticator; casabook.hub.caps holds it capped as Capped<name>.
AUTHENTICATOR_CLASSES = {
    "generic-oidc": "oauthenticator.generic.GenericOAuthenticator",
    "local-oidc": "oauthenticator.generic.GenericOAuthenticator",
    "cilogon": "oauthenticator.cilogon.CILogonOAuthenticator",
    "github": "oauthenticator.github.GitHubOAuthenticator",
}
KUBESPAWNER_CLASS = "casabook.hub.line.KubeSpawnerInLine"
LOCAL_SPAWNER_CLASS = "casabook.hub.spawner.LocalSessionSpawner"
ORGANISER_SERVICE = "casabook-organiser"
DEFAULT_URL = "/lab"
SESSION_MODULE = "casabook.hub.session"
SESSION_EXTENSIONS_OFF = ("jupyter_lsp", "notebook_shim")
SPAWN_PENDING_PAGE_AFTER_SECONDS = 2


@dataclass(frozen=True)
class Ports:
    """Where the local stack listens: the public proxy, the hub's API, the proxy's API."""

    public: int = 8000
    hub: int = 8081
    proxy_api: int = 8001


def section(facility: Facility) -> str:
    """The Config section of the facility's stock authenticator (the capped class inherits it)."""
    return AUTHENTICATOR_CLASSES[facility.authenticator.kind].rsplit(".", 1)[1]


def authenticator_class(facility: Facility) -> str | type:
    """casabook's capped stock class (by name), or the facility's own class with the cap mixed in."""
    if facility.authenticator.class_name:
        return own_authenticator_class(facility)
    return f"{CAPS_MODULE}.Capped{section(facility)}"


def own_authenticator_class(facility: Facility) -> type:
    """The facility's authenticator.class_name, imported and capped. It must subclass the kind's
    stock class: that class's Config section is where casabook sets the identity provider."""
    from traitlets.utils.importstring import import_item

    from casabook.hub.caps import capped_class

    auth = facility.authenticator
    where = {"file": f"hub-config/{facility.name}.yml", "key": "authenticator.class_name"}
    try:
        cls = capped_class(auth.class_name)
    except (ImportError, AttributeError, TypeError) as error:
        raise CasabookError("unknown-authenticator-class", f"cannot use {auth.class_name!r} as the authenticator "
                            f"here: {error}", **where) from None
    stock = import_item(AUTHENTICATOR_CLASSES[auth.kind])
    if not issubclass(cls, stock):
        raise CasabookError("authenticator-class-kind", f"{auth.class_name!r} is not a subclass of {section(facility)} "
                            f"(kind {auth.kind}), so the {section(facility)} settings would not reach it", **where)
    return cls


def read_client_secret(facility: Facility, environ: Mapping[str, str] = os.environ) -> str:
    """The OAuth client secret, from the environment variable the facility names (never from git)."""
    name = facility.authenticator.client_secret_env
    secret = environ.get(name, "")
    if not secret:
        raise CasabookError(
            "missing-client-secret",
            f"environment variable {name} is not set: it must hold the OAuth client secret registered "
            f"for client {facility.authenticator.client_id!r} (the secret is never kept in the repository)",
            file=f"hub-config/{facility.name}.yml", key="authenticator.client_secret_env")
    return secret


def oidc_endpoints(facility: Facility, issuer: str | None) -> dict[str, str]:
    """authorize/token/userinfo URLs: INDIGO IAM (CMS IAM, ATLAS IAM) layout, or the local provider's."""
    auth = facility.authenticator
    if auth.kind == "local-oidc":
        if not issuer:
            raise CasabookError("no-issuer", "local-oidc needs the local identity provider's URL at start "
                                "(casabook hub starts it and passes CASABOOK_OIDC_ISSUER)",
                                file=f"hub-config/{facility.name}.yml", key="authenticator.issuer")
        base = issuer.rstrip("/")
        return {"authorize_url": f"{base}/oauth2/authorize", "token_url": f"{base}/oauth2/token",
                "userdata_url": f"{base}/userinfo"}
    # The facility's issuer; `issuer` (known at start) is for the local provider only.
    base = (auth.issuer or "").rstrip("/")
    return {"authorize_url": f"{base}/authorize", "token_url": f"{base}/token", "userdata_url": f"{base}/userinfo"}


def apply_authenticator(c: Config, facility: Facility, *, client_secret: str | None,
                        issuer: str | None = None, hub_url: str | None = None,
                        class_name: str | None = None) -> None:
    """Set the authenticator for a facility. Sets keys, never appends: safe to call twice.

    client_secret=None leaves the secret out (the Helm values reference it instead); hub_url
    overrides the facility's URL (the local hub's port is chosen at start).
    """
    auth = facility.authenticator
    name = section(facility)
    c.JupyterHub.authenticator_class = class_name or authenticator_class(facility)
    s = c[name]
    s.client_id = auth.client_id
    if client_secret is not None:
        s.client_secret = client_secret
    s.oauth_callback_url = f"{(hub_url or facility.hub.url).rstrip('/')}/hub/oauth_callback"
    # One identity provider per facility: send attendees straight to it.
    c.Authenticator.auto_login = True
    c.Authenticator.admin_users = set(auth.admin_users)
    # Never allow_all: the cap lives in check_allowed, which allow_all would skip.
    c.Authenticator.allow_all = False
    c.ParticipantCap.open_to_any_identity = not (auth.allowed_groups or auth.kind == "cilogon")

    if auth.kind in ("generic-oidc", "local-oidc"):
        for key, url in oidc_endpoints(facility, issuer).items():
            s[key] = url
        s.scope = list(auth.scopes)
        s.username_claim = (ClaimOrSubject(auth.username_claim) if auth.kind == "local-oidc"
                            else auth.username_claim)
        s.login_service = ("casabook (local identity provider)" if auth.kind == "local-oidc"
                           else urlsplit(auth.issuer or "").hostname or "OIDC")
    elif auth.kind == "cilogon":
        # OAuthenticator 17.4 takes the identity providers as `idps` (allowed_idps is its deprecated
        # alias): each entry says which claim becomes the user name and that its users are eligible.
        s.idps = {idp: {"username_derivation": {"username_claim": auth.username_claim}, "allow_all": True}
                  for idp in auth.allowed_idps}
        s.scope = sorted({*auth.scopes, "openid", "org.cilogon.userinfo"})
    elif auth.kind == "github":
        s.username_claim = "login" if auth.username_claim == "preferred_username" else auth.username_claim
        s.allowed_organizations = set(auth.allowed_groups)

    if auth.kind in ("generic-oidc", "local-oidc") and (auth.allowed_groups or auth.admin_groups):
        s.manage_groups = True
        s.auth_state_groups_key = f"oauth_user.{auth.groups_claim or 'groups'}"
        s.allowed_groups = set(auth.allowed_groups)
        s.admin_groups = set(auth.admin_groups)


class ClaimOrSubject(str):
    """OAuthenticator's username_claim as a callable: the user name from this claim, else the OIDC
    subject. The local identity provider holds no claims for a name typed on its page that nobody
    registered: it sends that name as `sub` alone. A str still, the claim's name, so that the page
    for an identity without either names the claim as before."""

    def __call__(self, user_info: Mapping[str, object]) -> object:
        return user_info.get(str(self)) or user_info.get("sub")


def organisers_contact(workshop: Workshop, facility: Facility) -> str:
    """The organisers of the tracks on this facility; every track's for a facility no track names
    (the embedded default runs the whole workshop)."""
    tracks = [t for t in workshop.tracks.values() if t.facility == facility.name] or list(workshop.tracks.values())
    seen: dict[str, str] = {}
    for track in tracks:
        for person in track.organisers:
            seen.setdefault(person.email, f"{person.name} <{person.email}>")
    return ", ".join(seen.values())


def apply_cap(c: Config, facility: Facility, *, contact: str, waitlist_file: str,
              participants: int | None = None) -> None:
    """The participant cap (casabook.hub.caps.ParticipantCap) and the server limits."""
    c.ParticipantCap.participants = participants or facility.caps.participants
    c.ParticipantCap.contact = contact
    c.ParticipantCap.waitlist_file = waitlist_file
    c.JupyterHub.active_server_limit = facility.caps.concurrent_servers


def apply_registration(c: Config, facility: Facility, root: Path, *, state_dir: Path | str,
                       environ: Mapping[str, str] = os.environ, tracks: Iterable[Track] = ()) -> None:
    """Places go to the people on the registration lists, the facility's and its tracks'
    (casabook.hub.caps reads each again when it changes)."""
    from casabook.hub.registration import paths, read

    # Every participant's logins, registration or not: `casabook stats` counts connections per day from them.
    c.ParticipantCap.admissions_file = f"{state_dir}/admissions.jsonl"
    registration = facility.registration
    where = paths(facility, tracks, root, environ)
    if registration is None or where is None:
        c.ParticipantCap.registrants_file = ""
        return
    read(facility, root, environ, tracks)  # a list the hub cannot read is a mistake now, not at the first login
    c.ParticipantCap.registrants_file = str(where.facility or "")
    c.ParticipantCap.track_registrants_files = {name: str(path) for name, path in where.tracks.items()}
    c.ParticipantCap.registrants_mapping_file = str(where.mapping or "")
    c.ParticipantCap.match_claim = registration.match_claim
    c.ParticipantCap.walk_ins = registration.walk_ins


def apply_spawner(c: Config, facility: Facility, root: Path, *, state_dir: Path | None = None,
                  lean_session: bool = True) -> None:
    """Where and how attendees' servers run, what they see, and where they land (JupyterLab)."""
    res = facility.resources
    c.Spawner.start_timeout = facility.hub.start_timeout_seconds
    c.Spawner.http_timeout = min(facility.hub.start_timeout_seconds, 120)
    c.Spawner.default_url = DEFAULT_URL
    c.Spawner.environment = facility.session_environment(root)
    c.Spawner.cpu_limit = float(res.cores_per_user)
    c.Spawner.mem_limit = _bytes(res.memory_gib_per_user)
    if facility.spawner.kind == "kubernetes":
        c.JupyterHub.spawner_class = KUBESPAWNER_CLASS
        c.KubeSpawner.image = facility.spawner.image
        c.KubeSpawner.cpu_guarantee = float(res.cores_per_user)
        c.KubeSpawner.mem_guarantee = _bytes(res.memory_gib_per_user)
        # The user image ships nbgitpuller (hub-config packages); it enables itself there.
        return
    if state_dir is None:
        raise ValueError("the local-process spawner needs a state folder for the homes")
    c.JupyterHub.spawner_class = LOCAL_SPAWNER_CLASS
    c.Spawner.ip = "127.0.0.1"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state_dir / "homes" / "{username}")
    # The hub's own environment is the attendees' environment: its Python runs their servers.
    # lean_session: jupyterhub-singleuser without start-up work attendees never use (see
    # casabook.hub.session); False runs the stock command, for benchmarks/bench_hub.py to compare.
    c.Spawner.cmd = ([sys.executable, "-m", SESSION_MODULE] if lean_session
                     else [str(Path(sys.executable).parent / "jupyterhub-singleuser")])
    # Local processes run as the hub's user, which is root in CI and containers.
    c.Spawner.args = ["--ServerApp.allow_root=True"]
    if lean_session:
        # The language-server bridge (no language server is installed) and the classic-notebook
        # shim cost about 0.2 CPU-s per start and serve nothing here; JupyterLab, nbgitpuller and
        # terminals stay.
        disabled = ", ".join(f"{name!r}: False" for name in SESSION_EXTENSIONS_OFF)
        c.Spawner.args = [*c.Spawner.args, f"--ServerApp.jpserver_extensions={{{disabled}}}"]


def apply_spawn_line(c: Config, facility: Facility) -> None:
    """Past concurrent_spawns, attendees wait in line on the progress page (casabook.hub.line):
    the spawner keeps the limit, and JupyterHub's own, which answers with an error page, is lifted."""
    c.JupyterHub.concurrent_spawn_limit = 0
    c.SpawnLine.concurrent_spawns = facility.caps.concurrent_spawns
    # JupyterHub holds the attendee's click this long before showing the spawn-pending page
    # (default 10 s, a blank wait); the page is where the line tells them their place.
    settings = dict(c.JupyterHub.tornado_settings) if "tornado_settings" in c.JupyterHub else {}
    c.JupyterHub.tornado_settings = {**settings, "slow_spawn_timeout": SPAWN_PENDING_PAGE_AFTER_SECONDS}


def apply_network(c: Config, facility: Facility, *, ports: Ports, state_dir: Path | None = None,
                  proxy_command: list[str] | None = None) -> None:
    """Listen where the facility says (loopback unless it says otherwise)."""
    c.JupyterHub.bind_url = f"http://{facility.hub.bind_ip}:{ports.public}"
    if not facility.is_local:
        return
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{ports.hub}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{ports.proxy_api}"
    if proxy_command:
        c.ConfigurableHTTPProxy.command = list(proxy_command)
    if state_dir is not None:
        c.JupyterHub.db_url = f"sqlite:///{state_dir / 'jupyterhub.sqlite'}"
        c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")
        c.JupyterHub.pid_file = str(state_dir / "jupyterhub.pid")
        c.ConfigurableHTTPProxy.pid_file = str(state_dir / "proxy.pid")


def apply_organiser_token(c: Config, token: str) -> None:
    """An API token with the admin role's powers, for `casabook` itself and the rehearsal."""
    from jupyterhub.roles import get_default_roles

    # A role of its own: JupyterHub warns when the admin role is configured beside admin_users.
    admin_scopes = next(role["scopes"] for role in get_default_roles() if role["name"] == "admin")
    c.JupyterHub.services = [{"name": ORGANISER_SERVICE, "api_token": token}]
    c.JupyterHub.load_roles = [{"name": ORGANISER_SERVICE, "description": "casabook's organiser tools",
                                "scopes": list(admin_scopes), "services": [ORGANISER_SERVICE]}]


def load_hub_facility(root: Path, name: str) -> Facility:
    """One facility file, without the tracks: a hub needs no notebook to exist."""
    path = root / FACILITIES_DIR / f"{name}.yml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (root / FACILITIES_DIR).glob("*.yml")))
        raise CasabookError("unknown-facility", f"no facility {name!r}; known: {known}", key="--facility")
    return load_facility(path, root)


def configure(c: Config, facility: Facility, root: Path, *, contact: str,
              environ: Mapping[str, str] = os.environ, state_dir: Path, ports: Ports = Ports(),
              issuer: str | None = None, participants: int | None = None,
              proxy_command: list[str] | None = None, organiser_token: str | None = None,
              lean_session: bool = True, validator_token: str | None = None,
              validator_user: str | None = None, tracks: Iterable[Track] = ()) -> Config:
    """Everything a facility's hub needs, in one Config."""
    hub_url = f"http://{facility.hub.bind_ip}:{ports.public}" if facility.is_local else None
    apply_authenticator(c, facility, client_secret=read_client_secret(facility, environ), issuer=issuer,
                        hub_url=hub_url)
    apply_cap(c, facility, contact=contact,
              waitlist_file=str(state_dir / "waitlist.jsonl"), participants=participants)
    apply_registration(c, facility, root, state_dir=state_dir, environ=environ, tracks=tracks)
    apply_spawner(c, facility, root, state_dir=state_dir, lean_session=lean_session)
    apply_spawn_line(c, facility)
    apply_network(c, facility, ports=ports, state_dir=state_dir, proxy_command=proxy_command)
    if organiser_token:
        apply_organiser_token(c, organiser_token)
    apply_validation(c, validator_token, validator_user)
    return c


def apply_validation(c: Config, token: str | None, user: str | None) -> None:
    """The validation user (casabook.hub.validator), and its service when the hub is given its token."""
    from casabook.hub.validator import VALIDATOR_USER, apply_validation_user, apply_validator_service

    apply_validation_user(c, user or VALIDATOR_USER)
    if token:
        apply_validator_service(c, token, user or VALIDATOR_USER)


def _bytes(gib: float) -> int:
    return int(gib * 1024**3)
