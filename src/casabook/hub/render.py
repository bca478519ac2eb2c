"""Helm values for a facility (`casabook hub render`): zero-to-jupyterhub's chart, or coffea-casa's
umbrella chart, which takes the same values nested under `jupyterhub:`.

The same pure functions as the local hub build the authenticator and cap settings (hub.config);
the cap mixin goes in hub.extraConfig as the source of casabook.hub.caps, since the chart's hub
image has JupyterHub and OAuthenticator but not casabook. The client secret is referenced from a
Kubernetes Secret through hub.extraEnv, never written into the values. Before anything is written
the values, merged over the chart's defaults, are checked against the chart's own schema.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml
from traitlets.config import Config

from casabook import atomic
from casabook.errors import CasabookError
from casabook.hub import caps, chart, line, registrants
from casabook.hub.config import (
    DEFAULT_URL,
    SPAWN_PENDING_PAGE_AFTER_SECONDS,
    apply_authenticator,
    apply_cap,
    apply_spawn_line,
    organisers_contact,
    section,
)
from casabook.hub.prewarm import PREWARM_SERVICE, prewarm_role
from casabook.hub.validator import (
    VALIDATOR_SERVICE,
    VALIDATOR_TOKEN_ENV,
    apply_validation_user,
    validation_user_role,
    validator_role,
)
from casabook.model import Facility, Workshop

CHARTS = ("z2jh", "coffea-casa")
# The chart's hub keeps its database on a volume mounted here; the waiting list lives beside it.
HUB_DATA_DIR = "/srv/jupyterhub"
SECRET_KEY = "client-secret"
# The chart's own Secret (named hub while fullnameOverride is ""), where it generates each
# hub.services token and keeps it across upgrades.
HUB_SECRET = "hub"
EXTRA_CONFIG_KEY = "casabook-cap"
# Where the hub pod sees the registration list (a Secret's keys, as files).
REGISTRANTS_DIR = "/srv/casabook-registration"
REGISTRANTS_KEY = "registrants"
MAPPING_KEY = "mapping"
TRACK_KEY = "track-"

# jupyterhub-idle-culler (the chart runs it as a hub service), sized for a workshop day.
CULL = {
    "enabled": True,
    # 90 minutes without activity: longer than a session's breaks (a 30-minute coffee break, an hour's
    # lunch between two sessions of a day), so attendees come back to their server with its kernels
    # and variables; shorter than a night, so the facility's cores come back between days. Run
    # `casabook prewarm` within the hour before a session, or its servers are gone before the people.
    "timeout": 90 * 60,
    # Looked at every 5 minutes: a server outlives its 90 minutes by at most that.
    "every": 5 * 60,
    # A server kept busy by a tab left open or a runaway kernel stops after 12 hours, longer than
    # any workshop day from prewarm to the last session.
    "maxAge": 12 * 60 * 60,
    "concurrency": 10,
    # Never users: culling a user deletes it, and deleting a participant frees their place under
    # the cap, so a newcomer would take the place of someone who only went to lunch.
    "users": False,
    # Organisers hold no place; their idle servers go too.
    "adminUsers": True,
    "removeNamedServers": False,
}


def secret_name(facility: Facility) -> str:
    return f"casabook-{facility.name}-oauth"


def _plain(value: Any) -> Any:
    """Config values as YAML can hold them: sets sorted into lists, nested Configs into dicts."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _image(reference: str) -> dict[str, str]:
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return {"name": reference, "tag": "latest"}
    return {"name": name, "tag": tag}


def authenticator_expression(facility: Facility) -> str:
    """The capped class, as the extraConfig snippet names it (the cap's source defines these)."""
    if facility.authenticator.class_name:
        return f"capped_class({facility.authenticator.class_name!r})"
    return f"Capped{section(facility)}"


def extra_config(facility: Facility) -> str:
    """The hub.extraConfig snippet: the cap mixin's source, then the capped class and the secret.

    It sets the authenticator and its secret only: the chart's other extra config (coffea-casa's
    jupyterhub_config.d hooks on KubeSpawner, loaded before it) stays as it is.
    """
    return "\n".join([
        "# casabook: the participant cap (casabook.hub.caps) and the registration list it reads",
        "# (casabook.hub.registrants), inlined: the hub image lacks casabook.",
        inspect.getsource(registrants).rstrip(),
        "",
        inspect.getsource(caps).rstrip(),
        "",
        f"c.JupyterHub.authenticator_class = {authenticator_expression(facility)}",
        f"c.{section(facility)}.client_secret = os.environ[{facility.authenticator.client_secret_env!r}]",
        "",
        "# casabook: the spawn line (casabook.hub.line), inlined: past SpawnLine.concurrent_spawns attendees",
        "# wait their turn on the progress page; JupyterHub's own limit, which answers with an error page,",
        "# is lifted (hub.concurrentSpawnLimit: 0).",
        inspect.getsource(line).rstrip(),
        "",
        "from kubespawner import KubeSpawner as _KubeSpawner",
        "",
        "c.JupyterHub.spawner_class = in_line(_KubeSpawner)",
        "_settings = dict(c.JupyterHub.tornado_settings) if 'tornado_settings' in c.JupyterHub else {}",
        f"c.JupyterHub.tornado_settings = {{**_settings, 'slow_spawn_timeout': {SPAWN_PENDING_PAGE_AFTER_SECONDS}}}",
        "",
    ])


def registrants_secret(facility: Facility) -> str:
    return f"casabook-{facility.name}-registrants"


def registration_values(workshop: Workshop, facility: Facility) -> dict[str, Any]:
    """The registration list on the chart's hub: a Kubernetes Secret the organisers create from the
    file (never the values), mounted read-only. Kubernetes swaps a mounted Secret's files when the
    Secret changes, which the cap sees as a new modification time and reads again."""
    registration = facility.registration
    if registration is None:
        return {}
    cap = {"registrants_file": f"{REGISTRANTS_DIR}/{REGISTRANTS_KEY}", "match_claim": registration.match_claim,
           "walk_ins": registration.walk_ins, "admissions_file": f"{HUB_DATA_DIR}/casabook-admissions.jsonl"}
    if not registration.file_env:
        cap["registrants_file"] = ""
    if registration.mapping_env:
        cap["registrants_mapping_file"] = f"{REGISTRANTS_DIR}/{MAPPING_KEY}"
    tracks = registration_tracks(workshop, facility)
    if tracks:
        cap["track_registrants_files"] = {name: f"{REGISTRANTS_DIR}/{TRACK_KEY}{name}" for name in tracks}
    volume = "casabook-registrants"
    return {"config": {"ParticipantCap": cap},
            "extraVolumes": [{"name": volume, "secret": {"secretName": registrants_secret(facility)}}],
            "extraVolumeMounts": [{"name": volume, "mountPath": REGISTRANTS_DIR, "readOnly": True}]}


def registration_tracks(workshop: Workshop, facility: Facility) -> list[str]:
    """The tracks on the facility that name a registration list of their own."""
    return [t.name for t in workshop.tracks.values() if t.facility == facility.name and t.registration_env]


def organiser_admins(workshop: Workshop, facility: Facility) -> list[str]:
    """The facility's admin_users, and where user names are e-mail addresses the organisers of the
    tracks on it. Elsewhere the identity provider's admin_groups make the organisers admins."""
    names = set(facility.authenticator.admin_users)
    if facility.authenticator.username_claim == "email":
        names |= {person.email for track in workshop.tracks.values() if track.facility == facility.name
                  for person in track.organisers}
    return sorted(names)


def hub_values(workshop: Workshop, facility: Facility) -> dict[str, Any]:
    c = Config()
    apply_authenticator(c, facility, client_secret=None, class_name="set-in-extraConfig")
    apply_cap(c, facility, contact=organisers_contact(workshop, facility),
              waitlist_file=f"{HUB_DATA_DIR}/casabook-waitlist.jsonl")
    apply_validation_user(c)
    apply_spawn_line(c, facility)
    config = {name: _plain(dict(c[name])) for name in (section(facility), "Authenticator", "ParticipantCap",
                                                        "SpawnLine")}
    # Helm replaces lists: an empty list would take away the admins a facility's own values name.
    config["Authenticator"].pop("admin_users", None)
    if admins := organiser_admins(workshop, facility):
        config["Authenticator"]["admin_users"] = admins
    env_name = facility.authenticator.client_secret_env
    registration = registration_values(workshop, facility)
    config["ParticipantCap"].update(registration.pop("config", {}).get("ParticipantCap", {}))
    return {
        **registration,
        "config": config,
        "extraConfig": {EXTRA_CONFIG_KEY: extra_config(facility)},
        "extraEnv": {env_name: {"valueFrom": {"secretKeyRef": {"name": secret_name(facility), "key": SECRET_KEY}}}},
        "activeServerLimit": facility.caps.concurrent_servers,
        # The spawn line keeps the limit (config.SpawnLine); JupyterHub's own would answer 429.
        "concurrentSpawnLimit": 0,
        # No apiToken: the chart generates the prewarm service's token into its own Secret.
        "services": {PREWARM_SERVICE: {}, **validator_services()},
        "loadRoles": {prewarm_role()["name"]: prewarm_role(), **validator_roles()},
    }


def validator_services() -> dict[str, Any]:
    """`casabook validate --hub`'s service; the chart generates its token as it does the prewarm's."""
    return {VALIDATOR_SERVICE: {}}


def validator_token_line() -> str:
    """The header's line that reads `casabook validate --hub`'s token from the chart's Secret."""
    key = f"hub.services.{VALIDATOR_SERVICE}.apiToken".replace(".", "\\.")
    return (f"# And validate --hub's: export {VALIDATOR_TOKEN_ENV}=$(kubectl get secret {HUB_SECRET} -o jsonpath="
            f"'{{.data.{key}}}' | base64 -d)")


def validator_roles() -> dict[str, Any]:
    """The role that creates the validation user, and its service's narrow role."""
    return {role["name"]: role for role in (validation_user_role(), validator_role())}


def singleuser_values(workshop: Workshop, facility: Facility) -> dict[str, Any]:
    res = facility.resources
    memory = f"{res.memory_gib_per_user:g}G"
    return {
        "image": _image(facility.spawner.image or ""),
        "cpu": {"limit": float(res.cores_per_user), "guarantee": float(res.cores_per_user)},
        "memory": {"limit": memory, "guarantee": memory},
        "extraEnv": facility.session_environment(workshop.root),
        "defaultUrl": DEFAULT_URL,
        "startTimeout": facility.hub.start_timeout_seconds,
    }


def helm_values(workshop: Workshop, facility: Facility, chart_name: str = "z2jh") -> dict[str, Any]:
    if facility.spawner.kind != "kubernetes":
        raise CasabookError("not-kubernetes", f"facility {facility.name!r} runs {facility.spawner.kind} servers; "
                            "Helm values are for kubernetes facilities (run it with `casabook hub`)",
                            file=f"hub-config/{facility.name}.yml", key="spawner.kind")
    values = {"hub": hub_values(workshop, facility), "singleuser": singleuser_values(workshop, facility),
              "cull": dict(CULL)}
    if chart_name == "coffea-casa" and section(facility) == "GenericOAuthenticator":
        # coffea-casa's values-prod.yaml names the user-name claim with OAuthenticator's deprecated
        # username_key (email), which OAuthenticator 17 applies over username_claim: a null deletes it.
        values["hub"]["config"]["GenericOAuthenticator"]["username_key"] = None
    problems = chart.schema_errors(values)
    if problems:
        raise CasabookError("refused-by-chart", "zero-to-jupyterhub's schema refuses these values: "
                            + "; ".join(problems), file=f"hub-config/{facility.name}.yml")
    return {"jupyterhub": values} if chart_name == "coffea-casa" else values


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the extraConfig source) as readable YAML blocks."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                                       style="|" if "\n" in value else None))


def render(workshop: Workshop, facility: Facility, chart_name: str = "z2jh") -> str:
    if chart_name not in CHARTS:
        raise CasabookError("unknown-chart", f"no chart {chart_name!r}; expected one of: {', '.join(CHARTS)}",
                            key="--chart")
    values = helm_values(workshop, facility, chart_name)
    secret_key = f"hub.services.{PREWARM_SERVICE}.apiToken".replace(".", "\\.")
    header = (f"# {'coffea-casa' if chart_name == 'coffea-casa' else 'zero-to-jupyterhub'} values for "
              f"{facility.title} (hub-config/{facility.name}.yml), written by `casabook hub render`.\n"
              f"# Before installing: kubectl create secret generic {secret_name(facility)} "
              f"--from-literal={SECRET_KEY}=<the OAuth client secret>\n"
              f"# After: the prewarm token, generated by the chart: export CASABOOK_PREWARM_TOKEN=$(kubectl get secret "
              f"{HUB_SECRET} -o jsonpath='{{.data.{secret_key}}}' | base64 -d)\n"
              f"{validator_token_line()}\n")
    if facility.authenticator.class_name:
        header += (f"# The hub imports {facility.authenticator.class_name} (authenticator.class_name): the hub image "
                   "must have it (coffea-casa's chart mounts its CoffeaOAuthenticator as oauthenticator.coffea).\n")
    if facility.registration:
        files = [f" --from-file={REGISTRANTS_KEY}=<the list>"] if facility.registration.file_env else []
        files += [f" --from-file={TRACK_KEY}{name}=<track {name}'s list>"
                  for name in registration_tracks(workshop, facility)]
        files += [f" --from-file={MAPPING_KEY}=<the mapping file>"] if facility.registration.mapping_env else []
        header += (f"# The registration list (personal data: never in these values): kubectl create secret generic "
                   f"{registrants_secret(facility)}{''.join(files)}; update it "
                   "the same way (--dry-run=client -o yaml | kubectl apply -f -) and the hub reads it again.\n"
                   "# hub.extraVolumes and hub.extraVolumeMounts are lists: Helm replaces yours with them; merge "
                   "by hand if your values have some.\n")
    header += "# Give this file last to helm (-f yours.yaml -f this.yaml): its settings win over the facility's own.\n"
    return header + yaml.dump(values, Dumper=_BlockDumper, sort_keys=False, width=120)


def write(workshop: Workshop, facility: Facility, output: Path | None, chart_name: str = "z2jh") -> str:
    text = render(workshop, facility, chart_name)
    if output is not None:
        atomic.write_text(output, text)
    return text
