"""A stand-in for coffea-casa's own hub extras, written here (no code of theirs is copied).

coffea-casa's chart (github.com/CoffeaTeam/coffea-casa, charts/coffea-casa/files/hub-extra/) gives
its hub two things of its own:

- oauthenticator-coffea.py, mounted into the hub image as oauthenticator/coffea.py: a
  CoffeaOAuthenticator subclass of GenericOAuthenticator whose refresh_user pushes each user's
  fresh access token into that user's Kubernetes Secret;
- secret_creation_hook.py, loaded from jupyterhub_config.d before hub.extraConfig: a
  KubeSpawner.pre_spawn_hook that writes each user's XCache, Dask TLS and HTCondor tokens into that
  Secret and mounts it at /etc/cmsaf-secrets.

Kubernetes Secrets cannot exist here, so the stand-ins write per-user token files into a folder
(`secrets_dir`) instead. The behaviour under test is the same: a per-user token appears before a
server starts and is refreshed with the login, whatever casabook adds to the authenticator.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Unicode, default

MODULE = "oauthenticator.coffea"  # where coffea-casa's chart mounts its authenticator
CLASS_PATH = f"{MODULE}.CoffeaOAuthenticator"


def token_file(secrets_dir: str | Path, username: str) -> Path:
    return Path(secrets_dir) / f"jupyter-{username}" / "access_token"


def write_token(secrets_dir: str | Path, username: str, token: str) -> None:
    path = token_file(secrets_dir, username)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token)


class CoffeaOAuthenticator(GenericOAuthenticator):
    """Stands for coffea-casa's CoffeaOAuthenticator: keeps a per-user token where sessions read it."""

    secrets_dir = Unicode(config=True, help="Where the per-user token folders go (a Kubernetes Secret each, in "
                                            "coffea-casa); default $COFFEA_SECRETS_DIR.")

    @default("secrets_dir")
    def _secrets_dir_from_environment(self):
        return os.environ.get("COFFEA_SECRETS_DIR", "")

    async def pre_spawn_start(self, user, spawner):
        # Before the server starts, the user's token is in place (coffea-casa's secret at /etc/cmsaf-secrets).
        auth_state = await user.get_auth_state() or {}
        write_token(self.secrets_dir, user.name, auth_state.get("access_token", ""))

    async def refresh_user(self, user, handler=None):
        refreshed = await super().refresh_user(user, handler)
        if isinstance(refreshed, dict) and (refreshed.get("auth_state") or {}).get("access_token"):
            write_token(self.secrets_dir, user.name, refreshed["auth_state"]["access_token"])
        return refreshed


# Stands for secret_creation_hook.py: exec'd with the chart's `c` before hub.extraConfig.
SECRET_CREATION_HOOK = '''
import json, os

def pre_spawn_hook(spawner):
    folder = os.path.join(os.environ["COFFEA_SECRETS_DIR"], "jupyter-" + spawner.user.name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "xcache_token"), "w") as out:
        out.write(json.dumps({"user": spawner.user.name, "activity": "DOWNLOAD"}))

c.KubeSpawner.pre_spawn_hook = pre_spawn_hook
'''


def xcache_token(secrets_dir: str | Path, username: str) -> dict:
    return json.loads((Path(secrets_dir) / f"jupyter-{username}" / "xcache_token").read_text())


def install(monkeypatch) -> None:
    """Make `oauthenticator.coffea` importable, as coffea-casa's chart mounts it into the hub image."""
    module = types.ModuleType(MODULE)
    module.CoffeaOAuthenticator = CoffeaOAuthenticator
    monkeypatch.setitem(sys.modules, MODULE, module)
