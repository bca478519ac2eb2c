"""zero-to-jupyterhub Helm values for a facility (`casabook hub render`).

The same pure functions as the local hub build the authenticator and cap settings (hub.config);
the cap mixin goes in hub.extraConfig as the source of casabook.hub.caps, since the chart's hub
image has JupyterHub and OAuthenticator but not casabook. The client secret is referenced from a
Kubernetes Secret through hub.extraEnv, never written into the values.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml
from traitlets.config import Config

from casabook.errors import CasabookError
from casabook.hub import caps
from casabook.hub.config import (
    AUTHENTICATOR_CLASSES,
    DEFAULT_URL,
    apply_authenticator,
    apply_cap,
    organisers_contact,
    section,
)
from casabook.model import Facility, Workshop

# The chart's hub keeps its database on a volume mounted here; the waiting list lives beside it.
HUB_DATA_DIR = "/srv/jupyterhub"
SECRET_KEY = "client-secret"


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


def extra_config(facility: Facility) -> str:
    """The hub.extraConfig snippet: the cap mixin's source, then the capped class and the secret."""
    capped = AUTHENTICATOR_CLASSES[facility.authenticator.kind][1]
    return "\n".join([
        "# casabook: the participant cap (casabook.hub.caps), inlined: the hub image lacks casabook.",
        inspect.getsource(caps).rstrip(),
        "",
        "c.JupyterHub.authenticator_class = " + capped,
        f"c.{section(facility)}.client_secret = os.environ[{facility.authenticator.client_secret_env!r}]",
        "",
    ])


def helm_values(workshop: Workshop, facility: Facility) -> dict[str, Any]:
    if facility.spawner.kind != "kubernetes":
        raise CasabookError("not-kubernetes", f"facility {facility.name!r} runs {facility.spawner.kind} servers; "
                            "Helm values are for kubernetes facilities (run it with `casabook hub`)",
                            file=f"hub-config/{facility.name}.yml", key="spawner.kind")
    c = Config()
    apply_authenticator(c, facility, client_secret=None, class_name="set-in-extraConfig")
    apply_cap(c, facility, contact=organisers_contact(workshop, facility),
              waitlist_file=f"{HUB_DATA_DIR}/casabook-waitlist.jsonl")
    hub_config = {name: _plain(dict(c[name])) for name in (section(facility), "Authenticator", "ParticipantCap")}
    res = facility.resources
    memory = f"{res.memory_gib_per_user:g}G"
    env_name = facility.authenticator.client_secret_env
    return {
        "hub": {
            "config": hub_config,
            "extraConfig": {"casabook-cap": extra_config(facility)},
            "extraEnv": {env_name: {"valueFrom": {"secretKeyRef": {"name": secret_name(facility), "key": SECRET_KEY}}}},
            "activeServerLimit": facility.caps.concurrent_servers,
            "concurrentSpawnLimit": facility.caps.concurrent_spawns,
        },
        "singleuser": {
            "image": _image(facility.spawner.image or ""),
            "cpu": {"limit": float(res.cores_per_user), "guarantee": float(res.cores_per_user)},
            "memory": {"limit": memory, "guarantee": memory},
            "extraEnv": facility.session_environment(workshop.root),
            "defaultUrl": DEFAULT_URL,
            "startTimeout": facility.hub.start_timeout_seconds,
        },
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the extraConfig source) as readable YAML blocks."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                                       style="|" if "\n" in value else None))


def render(workshop: Workshop, facility: Facility) -> str:
    header = (f"# zero-to-jupyterhub values for {facility.title} (hub-config/{facility.name}.yml), "
              "written by `casabook hub render`.\n"
              f"# Before installing: kubectl create secret generic {secret_name(facility)} "
              f"--from-literal={SECRET_KEY}=<the OAuth client secret>\n")
    return header + yaml.dump(helm_values(workshop, facility), Dumper=_BlockDumper, sort_keys=False, width=120)


def write(workshop: Workshop, facility: Facility, output: Path | None) -> str:
    text = render(workshop, facility)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".part")
        tmp.write_text(text)
        tmp.replace(output)
    return text
