"""The validation user: a hub user of its own that `casabook validate --hub` runs notebooks as,
created by the hub's config and never counted under the participant cap.

Two roles do it. One names the user, which makes JupyterHub create it when the hub starts (a role's
users are created if missing); the cap's `uncounted_users` keeps it out of the count. The other is
the `casabook-validator` service's, whose token holds the least `validate --hub` needs, and only on
that one user: start and stop its server and read its progress (servers), and reach the server
(access:servers: nbgitpuller's git-pull, the kernels and contents APIs). It cannot create users,
read anyone else's, or reach a participant's server.

    apply_validation_user(c)                 # always: the user exists and takes no place
    apply_validator_service(c, token)        # with the token from $CASABOOK_VALIDATOR_TOKEN

On a Kubernetes facility the same roles and service go in the Helm values (hub.loadRoles,
hub.services), as `casabook hub render` writes them; an organiser behind SSO can instead issue a
token with the same scopes on the hub's token page (/hub/token).
"""

from __future__ import annotations

from typing import Any

VALIDATOR_SERVICE = "casabook-validator"
VALIDATOR_USER = "casabook-validator"
VALIDATOR_TOKEN_ENV = "CASABOOK_VALIDATOR_TOKEN"
VALIDATOR_USER_ENV = "CASABOOK_VALIDATOR_USER"
USER_ROLE = "casabook-validation-user"
SERVICE_ROLE = "casabook-validator"
# Each filtered to the validation user (`!user=<name>`): what the run needs, and where.
BASE_SCOPES = ("servers", "access:servers")


def validator_scopes(user: str = VALIDATOR_USER) -> list[str]:
    """servers: start, stop and follow the server; access:servers: nbgitpuller, kernels, contents."""
    return [f"{scope}!user={user}" for scope in BASE_SCOPES]


def validation_user_role(user: str = VALIDATOR_USER) -> dict[str, Any]:
    # No scopes of its own: the role is there to make the hub create the user (default roles still apply).
    return {"name": USER_ROLE, "description": "casabook's validation user: created by the hub, takes no place",
            "scopes": [], "users": [user]}


def validator_role(user: str = VALIDATOR_USER) -> dict[str, Any]:
    return {"name": SERVICE_ROLE, "description": f"casabook validate --hub: run notebooks in {user}'s server",
            "scopes": validator_scopes(user), "services": [VALIDATOR_SERVICE]}


def is_participant(user: dict[str, Any]) -> bool:
    """A hub user model (REST API) of a participant: not an organiser, not a validation user
    (known by its role, or by the default name where the token cannot read roles)."""
    return not user.get("admin") and USER_ROLE not in (user.get("roles") or []) and user.get("name") != VALIDATOR_USER


def _replace(existing: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {entry["name"] for entry in entries}
    return [*(e for e in existing if e.get("name") not in names), *entries]


def _hub_list(c: Any, key: str) -> list[dict[str, Any]]:
    # An unset key of a traitlets Config section reads as a lazy placeholder, not as a list.
    return list(c.JupyterHub[key]) if key in c.JupyterHub else []


def apply_validation_user(c: Any, user: str = VALIDATOR_USER) -> None:
    """The validation user exists on the hub and is never one of the participants. Safe to call twice."""
    c.JupyterHub.load_roles = _replace(_hub_list(c, "load_roles"), [validation_user_role(user)])
    uncounted = set(c.ParticipantCap.uncounted_users) if "uncounted_users" in c.ParticipantCap else set()
    c.ParticipantCap.uncounted_users = uncounted | {user}


def apply_validator_service(c: Any, token: str, user: str = VALIDATOR_USER) -> None:
    """The casabook-validator service with its narrow role, keeping the services already configured."""
    c.JupyterHub.services = _replace(_hub_list(c, "services"), [{"name": VALIDATOR_SERVICE, "api_token": token}])
    c.JupyterHub.load_roles = _replace(_hub_list(c, "load_roles"), [validator_role(user)])
