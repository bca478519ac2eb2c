"""A facility's own authenticator class on a real hub: it keeps its behaviour, and the cap holds.

The embedded stack (JupyterHub, configurable-http-proxy, the OIDC provider on loopback) runs a
facility whose authenticator.class_name names the stand-in for coffea-casa's CoffeaOAuthenticator
(tests/coffea_hub_extra.py), which writes each user's token file before their server starts.
Runs on both JupyterHub lines (`make test-hub-image`: the charts' 5.5.0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import coffea_hub_extra
from casabook.testing.hub import LocalHub, LoginRefused
from casabook.testing.workshops import make_workshop

pytestmark = pytest.mark.hub
REPO = Path(__file__).resolve().parents[1]
FACILITY = "local-own-authenticator"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = make_workshop(tmp_path_factory.mktemp("workshop"), commit=False)
    local = (REPO / "hub-config" / "local.yml").read_text()
    assert "  admin_users: [organiser]\n" in local
    (root / "hub-config" / f"{FACILITY}.yml").write_text(local.replace(
        "  admin_users: [organiser]\n",
        # The hub imports the stand-in from tests/ (coffea-casa's chart mounts theirs into oauthenticator/).
        "  admin_users: [organiser]\n  class_name: coffea_hub_extra.CoffeaOAuthenticator\n"))
    shutil.copy(REPO / "hub-config" / "jupyterhub_config.py", root / "hub-config")
    (root / "node_modules").symlink_to(REPO / "node_modules")
    secrets = tmp_path_factory.mktemp("secrets")
    stack = LocalHub(root=root, state_dir=tmp_path_factory.mktemp("hub-state"), facility=FACILITY, participants=1,
                     contact="organisers <organisers@casabook.invalid>",
                     extra_env={"PYTHONPATH": str(REPO / "tests"), "COFFEA_SECRETS_DIR": str(secrets)})
    stack.start()
    try:
        yield stack, secrets
    finally:
        stack.stop()


def test_own_authenticator_writes_its_token_and_the_cap_holds(stack):
    stack, secrets = stack
    stack.login("alice")
    assert stack.api("POST", "users/alice/server").status_code in (201, 202)
    stack.wait_ready("alice")
    # The subclass's own pre-spawn work happened in the real hub, before the server started.
    assert coffea_hub_extra.token_file(secrets, "alice").exists()
    with pytest.raises(LoginRefused) as refused:
        stack.login("bob")
    assert refused.value.status == 403 and "This workshop is full (1 places)" in refused.value.page
    assert stack.cap_status()["admitted"] == ["alice"]
    stack.login("organiser")  # organisers always get in
    assert stack.api("DELETE", "users/alice/server").status_code in (202, 204)
